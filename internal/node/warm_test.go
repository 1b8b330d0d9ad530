package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

// TestWarmStart: a node whose first sync is held open (the warm-up, forced
// at this small count) serves every name from the store as the sync will:
// with its stored certificate (its own, or the uploaded one), a suspended
// project's as 503, an unverified domain's and an unknown name refused; a
// service changed or deleted during the warm-up is served changed or
// dropped, one created is served with its new certificate; not ready until
// the sync is applied, then everything comes from the route table.
func TestWarmStart(t *testing.T) {
	for _, sc := range storeCases(t) { // PostgreSQL's look-up reads in parallel (WarmConfig.Parallel)
		t.Run(sc.name, func(t *testing.T) { testWarmStart(t, sc.dsn) })
	}
}

func testWarmStart(t *testing.T, dsn string) {
	dir := t.TempDir()
	ctx := context.Background()
	body := func(s string) string {
		return upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, s) })
	}
	upOne, upTwo := body("one"), body("two")
	pki := pkitest.NewRoot("Customer Root")
	leaf := pki.Issue(pkitest.Leaf{CommonName: "byo.localhost", DNSNames: []string{"byo.localhost"}})

	// The store, with every kind of name, served once by a node that
	// waits for its first sync (the certificates issued and stored).
	a := startNode(t, dir, dsn)
	admin := adminClient(t, a, dir)
	for _, s := range []client.ServiceCreate{
		{Name: "multi", Hosts: []string{"a.localhost", "b.localhost"}, Upstreams: []string{upOne}},
		{Name: "changed", Upstreams: []string{upOne}},
		{Name: "gone", Upstreams: []string{upOne}},
		{Name: "byo", Upstreams: []string{upOne}},
	} {
		if _, err := admin.CreateService(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.UploadCertificate(ctx, "byo.localhost", client.CertificateUpload{Certificate: string(leaf.ChainPEM), PrivateKey: string(leaf.KeyPEM), Root: string(pki.RootPEM())}); err != nil {
		t.Fatal(err)
	}
	tenant := func(name, domain string) {
		pc, err := admin.CreateProject(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Platform().AddDomain(ctx, pc.ID, domain, true); err != nil {
			t.Fatal(err)
		}
		if _, err := client.New("http://"+a.APIAddr(), pc.Token).CreateService(ctx, client.ServiceCreate{Name: "web", Upstreams: []string{upOne}}); err != nil {
			t.Fatal(err)
		}
	}
	tenant("suspended", "suspended.test")
	tenant("unverified", "unverified.test")
	served := []string{"hello.localhost", "a.localhost", "b.localhost", "changed.localhost", "gone.localhost", "web.suspended.test", "web.unverified.test"}
	serials := map[string]string{}
	for _, h := range served {
		poll.Until(t, h+" served", waitTimeout, func() error {
			resp, _, err := httpsGet(t, a, h, "/")
			if err != nil {
				return err
			}
			serials[h] = resp.TLS.PeerCertificates[0].SerialNumber.String()
			return nil
		})
	}
	if _, err := admin.SuspendProject(ctx, "suspended"); err != nil {
		t.Fatal(err)
	}
	d, err := a.db.GetDomain(ctx, "unverified.test")
	if err != nil {
		t.Fatal(err)
	}
	d.Status = store.DomainPending
	if err := a.db.UpdateDomain(ctx, d); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the unverified domain's name refused", waitTimeout, func() error {
		if _, _, err := httpsGet(t, a, "web.unverified.test", "/"); err == nil {
			return errors.New("still served")
		}
		return nil
	})
	a.Close(ctx)

	// The same store, warm: the first sync waits for release.
	release := make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	b, err := start(ctx, config.Config{
		DataDir: dir, Store: dsn, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, warmUpHook{above: -1, hold: func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	if b.syncer.Synced() || b.ready(ctx) == nil {
		t.Fatal("ready before the first sync is applied")
	}
	if b.edge.Has("a.localhost") {
		t.Fatal("the route table holds a name before the first sync and before any connection")
	}
	get := func(host string) (int, string, string, error) {
		resp, body, err := httpsGet(t, b, host, "/")
		if err != nil {
			return 0, "", "", err
		}
		return resp.StatusCode, body, resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
	}
	check := func(phase string) {
		t.Helper()
		for _, h := range []string{"hello.localhost", "a.localhost", "b.localhost", "changed.localhost"} {
			if code, _, serial, err := get(h); err != nil || code != 200 || serial != serials[h] {
				t.Errorf("%s: %s: %d, certificate %s (stored: %s), %v; want 200 with the stored certificate", phase, h, code, serial, serials[h], err)
			}
		}
		if code, body, serial, err := get("web.suspended.test"); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "suspended") || serial != serials["web.suspended.test"] {
			t.Errorf("%s: a suspended project's name: %d %q, certificate %s, %v; want 503 with its stored certificate", phase, code, body, serial, err)
		}
		chain, err := handshake(t, b, "byo.localhost", pki.Pool())
		if err != nil || !chain[0].Equal(leaf.Cert) {
			t.Errorf("%s: the uploaded certificate not served: %v", phase, err)
		}
		for _, h := range []string{"web.unverified.test", "nothing.localhost", "UPPER..localhost"} {
			if _, _, _, err := get(h); err == nil {
				t.Errorf("%s: %s served", phase, h)
			}
		}
	}
	check("warm-up")
	if b.syncer.Synced() {
		t.Fatal("the first sync was applied while held")
	}
	if st := b.edge.WarmStats(); !st.Active || st.Routed == 0 || st.Unrouted == 0 || st.Refused == 0 {
		t.Errorf("warm-up counts %+v: want routed, unrouted and refused names", st)
	}

	// Changes during the warm-up.
	adminB := adminClient(t, b, dir)
	if _, err := adminB.UpdateService(ctx, "changed", client.ServiceUpdate{Upstreams: []string{upTwo}}); err != nil {
		t.Fatal(err)
	}
	if err := adminB.DeleteService(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := adminB.CreateService(ctx, client.ServiceCreate{Name: "new", Upstreams: []string{upTwo}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the change served during the warm-up", waitTimeout, func() error {
		if _, body, _, err := get("changed.localhost"); err != nil || body != "two" {
			return fmt.Errorf("%q, %v", body, err)
		}
		return nil
	})
	poll.Until(t, "the deleted service refused during the warm-up", waitTimeout, func() error {
		if _, _, _, err := get("gone.localhost"); err == nil {
			return errors.New("still served")
		}
		return nil
	})
	// A new name is routed (plain HTTP redirects it to HTTPS) and gets its
	// certificate before the sync: the warm-up hands the certificate
	// manager a served name that has none stored.
	if code := redirectStatus(t, b, "new.localhost"); code != http.StatusPermanentRedirect {
		t.Errorf("a service created during the warm-up: plain HTTP %d, want 308", code)
	}
	poll.Until(t, "the new service served over HTTPS during the warm-up", waitTimeout, func() error {
		if _, body, _, err := get("new.localhost"); err != nil || body != "two" {
			return fmt.Errorf("%q, %v", body, err)
		}
		return nil
	})
	if b.syncer.Synced() {
		t.Fatal("the first sync was applied while held")
	}

	close(release)
	released = true
	poll.Until(t, "ready after the first sync", waitTimeout, func() error { return b.ready(ctx) })
	if st := b.edge.WarmStats(); st.Active {
		t.Error("the warm-up is still on after the first sync")
	}
	for _, h := range []string{"hello.localhost", "a.localhost", "b.localhost", "changed.localhost", "web.suspended.test", "byo.localhost", "new.localhost"} {
		if !b.edge.Has(h) {
			t.Errorf("%s not in the route table after the first sync", h)
		}
	}
	for _, h := range []string{"gone.localhost", "web.unverified.test"} {
		if b.edge.Has(h) {
			t.Errorf("%s in the route table after the first sync", h)
		}
	}
	routed := b.edge.WarmStats().Routed
	check("after the sync")
	if code, body, _, err := get("changed.localhost"); err != nil || body != "two" {
		t.Errorf("the changed service after the sync: %d %q %v", code, body, err)
	}
	poll.Until(t, "the new service served over HTTPS", waitTimeout, func() error {
		if _, body, _, err := get("new.localhost"); err != nil || body != "two" {
			return fmt.Errorf("%q, %v", body, err)
		}
		return nil
	})
	if got := b.edge.WarmStats().Routed; got != routed {
		t.Errorf("%d names read from the store after the first sync", got-routed)
	}
	m := scrape(t, b.APIAddr())
	if m["spine_warmup_lookups_routed_total"] == 0 || m["spine_first_sync_seconds"] == 0 {
		t.Errorf("metrics: routed %v, first sync %v s", m["spine_warmup_lookups_routed_total"], m["spine_first_sync_seconds"])
	}
	// Every read timed: those routed and unrouted at least (refused ones are not read).
	if n, reads := m["spine_warmup_lookup_duration_seconds_count"], m["spine_warmup_lookups_routed_total"]+m["spine_warmup_lookups_unrouted_total"]; n < reads {
		t.Errorf("metrics: %v warm-up reads timed, want at least the %v routed and unrouted", n, reads)
	}
}

// redirectStatus is the status of a plain-HTTP GET for host on n.
func redirectStatus(t *testing.T, n *Node, host string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+n.HTTPAddr()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
