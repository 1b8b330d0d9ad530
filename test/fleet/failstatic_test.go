package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/poll"
)

// load sends HTTPS requests (each on a new connection, so each does a
// handshake) for every host to every node until stopped, and counts
// failures.
type load struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup

	mu     sync.Mutex
	errors []string
}

func startLoad(f *fleet, hosts []string, want string) *load {
	l := &load{stop: make(chan struct{})}
	for _, nd := range f.nodes {
		for _, host := range hosts {
			l.wg.Go(func() {
				for {
					select {
					case <-l.stop:
						return
					default:
					}
					began := time.Now()
					if err := nd.serves(f.root, host, want); err != nil {
						l.failed.Add(1)
						l.mu.Lock()
						if len(l.errors) < 10 {
							l.errors = append(l.errors, began.Format("15:04:05.000")+" "+err.Error())
						}
						l.mu.Unlock()
					} else {
						l.ok.Add(1)
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
		}
	}
	return l
}

func (l *load) finish(t *testing.T) {
	close(l.stop)
	l.wg.Wait()
	t.Logf("load: %d requests served, %d failed", l.ok.Load(), l.failed.Load())
	if l.failed.Load() != 0 {
		t.Errorf("%d requests failed on a known host, for example:\n%s", l.failed.Load(), strings.Join(l.errors, "\n"))
	}
	if l.ok.Load() == 0 {
		t.Error("no request was served")
	}
}

// createWhenBack creates a service through nd, retrying while the store is
// still coming back (503).
func createWhenBack(t *testing.T, nd *node, in client.ServiceCreate) {
	t.Helper()
	c := nd.client()
	poll.Until(t, "a write after PostgreSQL returned", 2*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := c.CreateService(ctx, in)
		var ae *client.Error
		if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable) {
			return poll.Stop(err)
		}
		return err
	})
}

// With PostgreSQL stopped under steady HTTPS load on three hosts, every
// node keeps serving them (no failed request) with the certificates it had;
// API writes answer 503 with a clear message, reads answer from the last
// known state marked stale, /v1/nodes lists the fleet as not connected,
// /readyz says the store is unreachable. The outage outlasts the heartbeat
// staleness (15 s), the lock lease (15 s) and several resyncs (5 s here), and
// the certificates come due for renewal during it: nothing is issued until
// PostgreSQL is back, then each is renewed once. A service created after
// PostgreSQL returned is served fleet-wide.
func TestStoreDownKeepsServing(t *testing.T) {
	const (
		// The internal CA backdates NotBefore by a minute: a one-hour
		// certificate (the shortest `spine serve` accepts) lives 3660 s,
		// and with a renewal window of all but its first 80 s, it comes
		// due 20 s after it is issued. certmagic waits a minute after a
		// failed renewal before it tries again, so the renewal after the
		// outage comes about 80 s after the issuance.
		lifetime = time.Hour
		ratio    = 3580.0 / 3660
		minDown  = 20 * time.Second
		resync   = 5 * time.Second
	)
	pg := newPGCluster(t)
	f := newFleetArgs(t, pg.DSN(), 3, []string{"--cert-lifetime", lifetime.String(),
		"--resync-interval", resync.String(), "--renew-check-interval", "1s", "--renewal-window-ratio", fmt.Sprint(ratio)})
	up := upstream(t, "steady-upstream")
	c1 := f.nodes[0].client()
	ctx := ctxT(t)
	var hosts []string
	for _, name := range []string{"steady-a", "steady-b", "steady-c"} {
		if _, err := c1.CreateService(ctx, client.ServiceCreate{Name: name, Upstreams: []string{up}}); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, name+"."+Domain)
	}
	// The certificates every node serves, and when they come due.
	serials := map[string]string{}
	var due time.Time
	for _, host := range hosts {
		for _, nd := range f.nodes {
			poll.Until(t, host+" served by "+nd.name, time.Minute, func() error { return nd.serves(f.root, host, "steady-upstream") })
			leaf, err := nd.leaf(f.root, host)
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := serials[host]; ok && s != leaf.SerialNumber.String() {
				t.Fatalf("%s serves another certificate for %s than node1", nd.name, host)
			}
			serials[host] = leaf.SerialNumber.String()
			d := leaf.NotAfter.Add(-time.Duration(ratio * float64(leaf.NotAfter.Sub(leaf.NotBefore))))
			if d.After(due) {
				due = d
			}
		}
		if n := issuedFor(t, pg.DSN(), host); n != 1 {
			t.Fatalf("%d certificates signed for %s before the outage, want 1", n, host)
		}
	}
	if _, err := c1.Services(ctx); err != nil { // node 1 has read the services once
		t.Fatal(err)
	}
	for _, nd := range f.nodes { // and every node the node list
		poll.Until(t, nd.name+" lists three connected nodes", time.Minute, func() error { return connectedNodes(nd, 3) })
	}

	l := startLoad(f, hosts, "steady-upstream")
	poll.Until(t, "load on every node", time.Minute, func() error {
		if n := l.ok.Load(); n < int64(3*len(hosts)*len(f.nodes)) {
			return fmt.Errorf("%d requests served", n)
		}
		return nil
	})
	marks := make([]int, len(f.nodes))
	for i, nd := range f.nodes {
		marks[i] = len(nd.logs())
	}
	pg.Stop()
	stopped := time.Now()
	t.Log("PostgreSQL stopped")
	if !due.After(stopped) {
		t.Fatalf("the certificates came due (%v) before PostgreSQL was stopped: the test is too slow for its lifetimes", due.Format(time.TimeOnly))
	}

	// Writes: 503 with a message that says what happened.
	for _, nd := range f.nodes {
		_, err := nd.client().CreateService(ctx, client.ServiceCreate{Name: "refused", Upstreams: []string{up}})
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Code != "store_unavailable" || !strings.Contains(ae.Message, "store cannot be reached") {
			t.Errorf("%s: write with PostgreSQL down: %v, want 503 store_unavailable", nd.name, err)
		}
	}
	// Reads: the last known state, marked stale.
	resp, body := apiGet(t, f.nodes[0], "/v1/services")
	if resp.StatusCode != 200 || !strings.Contains(body, hosts[0]) || resp.Header.Get("Warning") != client.StaleWarning {
		t.Errorf("read with PostgreSQL down: %d, Warning %q, body %s; want 200, the stale warning and the services", resp.StatusCode, resp.Header.Get("Warning"), body)
	}
	checkNodesWhileDown := func() {
		t.Helper()
		for _, nd := range f.nodes {
			resp, body := apiGet(t, nd, "/v1/nodes")
			var list struct{ Nodes []client.Node }
			json.Unmarshal([]byte(body), &list)
			connected := 0
			for _, n := range list.Nodes {
				if n.StoreConnected {
					connected++
				}
			}
			if resp.StatusCode != 200 || resp.Header.Get("Warning") != client.StaleWarning || len(list.Nodes) != 3 || connected != 0 || !strings.Contains(body, `"self": true`) {
				t.Errorf("%s: /v1/nodes with PostgreSQL down: %d, Warning %q, body %s; want the three nodes, none connected, marked stale", nd.name, resp.StatusCode, resp.Header.Get("Warning"), body)
			}
		}
	}
	checkNodesWhileDown()
	resp, body = apiGet(t, f.nodes[1], "/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "store") {
		t.Errorf("/readyz with PostgreSQL down: %d %s, want 503 naming the store", resp.StatusCode, body)
	}

	// Steady load while the store stays away, past the windows and past
	// the certificates' renewal time.
	time.Sleep(time.Until(later(stopped.Add(minDown), due.Add(3*time.Second))))
	checkNodesWhileDown()
	for _, host := range hosts {
		for _, nd := range f.nodes {
			leaf, err := nd.leaf(f.root, host)
			if err != nil {
				t.Errorf("at the end of the outage: %v", err)
			} else if leaf.SerialNumber.String() != serials[host] {
				t.Errorf("%s serves a new certificate for %s with PostgreSQL down", nd.name, host)
			}
		}
	}
	tried := 0
	for i, nd := range f.nodes {
		down := nd.logsSince(marks[i])
		tried += len(logLines(down, "attempting certificate renewal"))
		if len(logLines(down, "store snapshot failed; serving the last known routes")) == 0 {
			t.Errorf("%s logged no failed resync during the outage", nd.name)
		}
		// certmagic logs these under the name's lock, before it asks an issuer.
		for _, what := range []string{`"msg":"renewing certificate"`, `"msg":"obtaining certificate"`} {
			if lines := logLines(down, what, `"logger":"certmagic`); len(lines) > 0 {
				t.Errorf("%s went on with an issuance with PostgreSQL down:\n%s", nd.name, strings.Join(lines, "\n"))
			}
		}
	}
	if tried == 0 {
		t.Error("no node tried to renew during the outage: the certificates did not come due in it")
	}

	pg.Start()
	outage := time.Since(stopped)
	t.Logf("PostgreSQL started after %.1f s (renewals came due %.1f s into the outage; %d renewal attempts refused meanwhile)", outage.Seconds(), due.Sub(stopped).Seconds(), tried)
	createWhenBack(t, f.nodes[1], client.ServiceCreate{Name: "after", Upstreams: []string{up}})
	for _, nd := range f.nodes {
		poll.Until(t, "new service served by "+nd.name, 2*time.Minute, func() error { return nd.serves(f.root, "after."+Domain, "steady-upstream") })
	}
	// The fleet lists itself, connected again.
	for _, nd := range f.nodes {
		poll.Until(t, nd.name+" lists every node connected", time.Minute, func() error { return connectedNodes(nd, 3) })
	}
	// Nothing was signed during the outage to be stored now: certmagic's
	// retry of the refused renewals is still a minute away.
	for _, host := range hosts {
		if n := issuedFor(t, pg.DSN(), host); n != 1 {
			t.Errorf("%d certificates signed for %s when PostgreSQL returned, want still 1", n, host)
		}
	}

	// Renewed once each, after PostgreSQL returned, and served by every node.
	for _, host := range hosts {
		for _, nd := range f.nodes {
			poll.Until(t, host+" renewed on "+nd.name, 2*time.Minute, func() error {
				leaf, err := nd.leaf(f.root, host)
				if err != nil {
					return err
				}
				if leaf.SerialNumber.String() == serials[host] {
					return errors.New("still the certificate from before the outage")
				}
				return nil
			})
		}
		if n := issuedFor(t, pg.DSN(), host); n != 2 {
			t.Errorf("%d certificates signed for %s, want 2 (the first and one renewal)", n, host)
		}
	}
	t.Logf("renewed %.1f s after PostgreSQL returned", time.Since(stopped.Add(outage)).Seconds())
	l.finish(t)
}

// connectedNodes reports nil if nd's /v1/nodes lists want nodes, each
// connected to the store with a heartbeat, version and address.
func connectedNodes(nd *node, want int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	nodes, err := nd.client().Nodes(ctx)
	if err != nil {
		return err
	}
	connected := 0
	for _, n := range nodes {
		if n.StoreConnected && n.LastHeartbeat != nil && n.Version != "" && n.HTTPSAddr != "" {
			connected++
		}
	}
	if connected != want || len(nodes) != want {
		return fmt.Errorf("%d of %d nodes connected: %+v", connected, len(nodes), nodes)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// A node restarted while PostgreSQL is down serves its known hosts from the
// snapshot in its data folder, and joins the fleet again when PostgreSQL
// returns.
func TestRestartWhileStoreDown(t *testing.T) {
	pg := newPGCluster(t)
	f := newFleet(t, pg.DSN(), 2)
	up := upstream(t, "known-upstream")
	host := "known." + Domain
	ctx := ctxT(t)
	if _, err := f.nodes[0].client().CreateService(ctx, client.ServiceCreate{Name: "known", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	n2 := f.nodes[1]
	poll.Until(t, "served by node2", time.Minute, func() error { return n2.serves(f.root, host, "known-upstream") })
	poll.Until(t, "node2's snapshot holds the certificate", time.Minute, func() error { return snapshotHas(n2, host) })

	pg.Stop()
	n2.stop()
	n2.start()
	n2.waitReady()
	poll.Until(t, "node2 serves from its snapshot", time.Minute, func() error { return n2.serves(f.root, host, "known-upstream") })
	if !strings.Contains(n2.logs(), "serving the last known snapshot") {
		t.Error("node2 did not say it serves from its snapshot")
	}
	resp, _ := apiGet(t, n2, "/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz of a node without its store: %d, want 503", resp.StatusCode)
	}
	// Its API answers reads from the snapshot, marked stale: the snapshot
	// keeps the hashes of the tokens it answered, never the tokens.
	resp, body := apiGet(t, n2, "/v1/services")
	if resp.StatusCode != 200 || !strings.Contains(body, host) || resp.Header.Get("Warning") != client.StaleWarning {
		t.Errorf("GET /v1/services on a node started from its snapshot: %d, Warning %q, body %s; want 200, the stale warning and the service", resp.StatusCode, resp.Header.Get("Warning"), body)
	}
	tok, _ := os.ReadFile(filepath.Join(n2.dataDir, "admin.token"))
	if snap, err := snapshotBytes(n2); err != nil || len(snap) == 0 || len(bytes.TrimSpace(tok)) == 0 || bytes.Contains(snap, bytes.TrimSpace(tok)) {
		t.Error("the snapshot holds the admin token itself")
	}

	pg.Start()
	createWhenBack(t, f.nodes[0], client.ServiceCreate{Name: "later", Upstreams: []string{up}})
	poll.Until(t, "node2 serves a service created after PostgreSQL returned", 2*time.Minute, func() error {
		return n2.serves(f.root, "later."+Domain, "known-upstream")
	})
	poll.Until(t, "node2 ready again", time.Minute, func() error {
		if resp, body := apiGet(t, n2, "/readyz"); resp.StatusCode != 200 {
			return fmt.Errorf("/readyz: %d %s", resp.StatusCode, body)
		}
		return nil
	})
}
