package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/poll"
)

// issuedFor counts the internal CA's certificates for host.
func issuedFor(t *testing.T, n *Node, host string) int {
	t.Helper()
	ctx := context.Background()
	keys, err := n.db.ListKeys(ctx, ca.IssuedPrefix, false)
	if err != nil {
		return 0
	}
	count := 0
	for _, k := range keys {
		b, err := n.db.GetKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		var rec ca.IssuedRecord
		if json.Unmarshal(b, &rec) == nil && slices.Contains(rec.Names, host) {
			count++
		}
	}
	return count
}

// A project suspended by the operator: its service answers 503 with a page
// over HTTPS, with the certificate it had, which is not renewed when it
// comes due (while a control service's is); its token reads but changes
// nothing. Resumed, it is served again. Deleted, its hostname is served no
// more, its token is refused and its domain is free.
func TestSuspendResumeDeleteProject(t *testing.T) {
	const lifetime = time.Hour
	dir := t.TempDir()
	ctx := context.Background()
	n, err := Start(ctx, config.Config{
		DataDir: dir, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Version: "test", LeafLifetime: lifetime,
		// Certificates come due 20 s after issuance (the CA backdates by a minute).
		ACME:   certs.ACMEConfig{RenewalWindowRatio: 3580.0 / 3660, RenewCheckInterval: time.Second},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	admin := adminClient(t, n, dir)
	var hits atomic.Int64
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1); io.WriteString(w, "tenant upstream") })

	pc, err := admin.CreateProject(ctx, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Platform().AddDomain(ctx, pc.ID, "tenant.test", true); err != nil {
		t.Fatal(err)
	}
	tenant := client.New("http://"+n.APIAddr(), pc.Token)
	const host = "web.tenant.test"
	if _, err := tenant.CreateService(ctx, client.ServiceCreate{Name: "web", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	var serial string
	poll.Until(t, host+" served", waitTimeout, func() error {
		resp, body, err := httpsGet(t, n, host, "/")
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || body != "tenant upstream" {
			return fmt.Errorf("%d %q", resp.StatusCode, body)
		}
		serial = resp.TLS.PeerCertificates[0].SerialNumber.String()
		return nil
	})

	if _, err := admin.SuspendProject(ctx, "tenant"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, host+" suspended", waitTimeout, func() error {
		resp, body, err := httpsGet(t, n, host, "/")
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "suspended") {
			return fmt.Errorf("%d %q", resp.StatusCode, body)
		}
		if s := resp.TLS.PeerCertificates[0].SerialNumber.String(); s != serial {
			return fmt.Errorf("served with another certificate (%s, was %s)", s, serial)
		}
		return nil
	})
	before := hits.Load()
	// Reads work; changes are refused, naming the suspension.
	if _, err := tenant.Services(ctx); err != nil {
		t.Errorf("a suspended project's read: %v", err)
	}
	for _, err := range []error{
		tenant.DeleteService(ctx, "web"),
		func() error { _, err := tenant.AddDomain(ctx, "more.test"); return err }(),
		func() error { _, err := tenant.CreateToken(ctx, client.TokenCreate{Name: "x"}); return err }(),
	} {
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 403 || e.Code != "project_suspended" {
			t.Errorf("a suspended project's change: %v, want 403 project_suspended", err)
		}
	}

	// Not renewed: a control service issued after the suspension comes due
	// later and is renewed; by then the suspended one is past due and not.
	other := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "control") })
	if _, err := admin.CreateService(ctx, client.ServiceCreate{Name: "control", Upstreams: []string{other}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "control served", waitTimeout, func() error { _, _, err := httpsGet(t, n, "control.localhost", "/"); return err })
	poll.Until(t, "the control certificate renewed", waitTimeout, func() error {
		if n := issuedFor(t, n, "control.localhost"); n < 2 {
			return fmt.Errorf("%d issued", n)
		}
		return nil
	})
	if got := issuedFor(t, n, host); got != 1 {
		t.Errorf("%d certificates issued for the suspended %s, want 1 (no renewal)", got, host)
	}
	if hits.Load() != before {
		t.Errorf("the suspended service's upstream got %d requests", hits.Load()-before)
	}

	if _, err := admin.ResumeProject(ctx, "tenant"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, host+" served again", waitTimeout, func() error {
		resp, body, err := httpsGet(t, n, host, "/")
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || body != "tenant upstream" {
			return fmt.Errorf("%d %q", resp.StatusCode, body)
		}
		return nil
	})

	if err := admin.DeleteProject(ctx, "tenant"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, host+" no longer served", waitTimeout, func() error {
		if resp, body, err := httpsGet(t, n, host, "/"); err == nil {
			return fmt.Errorf("still answers: %d %q", resp.StatusCode, body)
		}
		return nil
	})
	if _, err := tenant.Services(ctx); !client.IsCode(err, "unauthorized") {
		t.Errorf("the deleted project's token: %v, want unauthorized", err)
	}
	if _, err := admin.AddDomain(ctx, "tenant.test"); err != nil {
		t.Errorf("the deleted project's domain is not free: %v", err)
	}
	if ps, err := admin.Projects(ctx); err != nil || len(ps) != 1 || ps[0].ID != "default" {
		t.Errorf("projects after the delete: %+v, %v", ps, err)
	}
}
