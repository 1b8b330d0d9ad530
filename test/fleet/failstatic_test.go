package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
)

// load sends HTTPS requests (each on a new connection, so each does a
// handshake) to every node for host until stopped, and counts failures.
type load struct {
	ok, failed atomic.Int64
	stop       chan struct{}
	wg         sync.WaitGroup

	mu     sync.Mutex
	errors []string
}

func startLoad(f *fleet, host, want string) *load {
	l := &load{stop: make(chan struct{})}
	for _, nd := range f.nodes {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				if err := nd.serves(f.root, host, want); err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errors) < 10 {
						l.errors = append(l.errors, time.Now().Format("15:04:05.000")+" "+err.Error())
					}
					l.mu.Unlock()
				} else {
					l.ok.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
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
	eventually(t, "a write after PostgreSQL returned", 2*time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := c.CreateService(ctx, in)
		var ae *client.Error
		if err != nil && !(errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable) {
			return errStop{err}
		}
		return err
	})
}

// With PostgreSQL stopped under steady HTTPS load, every node keeps serving
// its known hosts (no failed request); API writes answer 503 with a clear
// message, reads answer from the last known state marked stale, /readyz
// says the store is unreachable. Once PostgreSQL is back, a new service is
// served fleet-wide.
func TestStoreDownKeepsServing(t *testing.T) {
	pg := newPGCluster(t)
	f := newFleet(t, pg.DSN(), 3)
	up := upstream(t, "steady-upstream")
	host := "steady." + Domain
	c1 := f.nodes[0].client()
	ctx := ctxT(t)
	if _, err := c1.CreateService(ctx, client.ServiceCreate{Name: "steady", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range f.nodes {
		eventually(t, "served by "+nd.name, time.Minute, func() error { return nd.serves(f.root, host, "steady-upstream") })
	}
	if _, err := c1.Services(ctx); err != nil { // node 1 has read the services once
		t.Fatal(err)
	}

	l := startLoad(f, host, "steady-upstream")
	time.Sleep(time.Second)
	pg.Stop()
	t.Log("PostgreSQL stopped")

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
	if resp.StatusCode != 200 || !strings.Contains(body, host) || resp.Header.Get("Warning") != client.StaleWarning {
		t.Errorf("read with PostgreSQL down: %d, Warning %q, body %s; want 200, the stale warning and the service", resp.StatusCode, resp.Header.Get("Warning"), body)
	}
	resp, body = apiGet(t, f.nodes[0], "/v1/nodes")
	if resp.StatusCode != 200 || resp.Header.Get("Warning") != client.StaleWarning || !strings.Contains(body, `"self": true`) {
		t.Errorf("/v1/nodes with PostgreSQL down: %d, Warning %q, body %s", resp.StatusCode, resp.Header.Get("Warning"), body)
	}
	resp, body = apiGet(t, f.nodes[1], "/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "store") {
		t.Errorf("/readyz with PostgreSQL down: %d %s, want 503 naming the store", resp.StatusCode, body)
	}
	time.Sleep(4 * time.Second) // steady load while the store stays away

	pg.Start()
	t.Log("PostgreSQL started")
	createWhenBack(t, f.nodes[1], client.ServiceCreate{Name: "after", Upstreams: []string{up}})
	for _, nd := range f.nodes {
		eventually(t, "new service served by "+nd.name, 2*time.Minute, func() error { return nd.serves(f.root, "after."+Domain, "steady-upstream") })
	}
	l.finish(t)

	// The fleet lists itself, connected again.
	eventually(t, "every node connected in /v1/nodes", time.Minute, func() error {
		nodes, err := c1.Nodes(ctx)
		if err != nil {
			return err
		}
		connected := 0
		for _, n := range nodes {
			if n.StoreConnected && n.LastHeartbeat != nil && n.Version != "" && n.HTTPSAddr != "" {
				connected++
			}
		}
		if connected != 3 {
			return fmt.Errorf("%d of %d nodes connected: %+v", connected, len(nodes), nodes)
		}
		return nil
	})
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
	eventually(t, "served by node2", time.Minute, func() error { return n2.serves(f.root, host, "known-upstream") })
	eventually(t, "node2's snapshot holds the certificate", time.Minute, func() error { return snapshotHas(n2, host) })

	pg.Stop()
	n2.stop()
	n2.start()
	n2.waitReady()
	eventually(t, "node2 serves from its snapshot", 30*time.Second, func() error { return n2.serves(f.root, host, "known-upstream") })
	if !strings.Contains(n2.logs(), "serving the last known snapshot") {
		t.Error("node2 did not say it serves from its snapshot")
	}
	resp, _ := apiGet(t, n2, "/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz of a node without its store: %d, want 503", resp.StatusCode)
	}

	pg.Start()
	createWhenBack(t, f.nodes[0], client.ServiceCreate{Name: "later", Upstreams: []string{up}})
	eventually(t, "node2 serves a service created after PostgreSQL returned", 2*time.Minute, func() error {
		return n2.serves(f.root, "later."+Domain, "known-upstream")
	})
	eventually(t, "node2 ready again", time.Minute, func() error {
		if resp, body := apiGet(t, n2, "/readyz"); resp.StatusCode != 200 {
			return fmt.Errorf("/readyz: %d %s", resp.StatusCode, body)
		}
		return nil
	})
}
