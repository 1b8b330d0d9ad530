package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/poll"
)

// worker keeps requests going to one node for one hostname, on one
// kept-alive connection (HTTP/1.1 or HTTP/2), until stopped.
type worker struct {
	name   string
	sawNew atomic.Bool
}

// TestUpdateReachesEveryNode changes a service's upstream through one
// node's API while clients keep kept-alive HTTP/1.1 and HTTP/2
// connections busy on every node of a three-node fleet: no request fails,
// and every client on every node moves to the new upstream (and never
// back) once that node has read the change. Then a hostname added through
// one node is served with its certificate by every node, and once removed
// is refused by every node.
func TestUpdateReachesEveryNode(t *testing.T) {
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	f := newFleetArgs(t, dsn, 3, []string{"--resync-interval", "1h"}) // the change notice, not the resync
	oldUp, newUp := upstream(t, "old-upstream"), upstream(t, "new-upstream")
	host := "moving." + Domain
	c := f.nodes[0].client()
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "moving", Upstreams: []string{oldUp}}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range f.nodes {
		poll.Until(t, "served by "+nd.name, time.Minute, func() error { return nd.serves(f.root, host, "old-upstream") })
	}

	var (
		stop     atomic.Bool
		requests atomic.Int64
		failed   atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
		workers  []*worker
	)
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	for _, nd := range f.nodes {
		for i := range 4 {
			h2 := i%2 == 0
			method := []string{http.MethodGet, http.MethodPost}[i/2]
			w := &worker{name: fmt.Sprintf("%s/%s/h2=%v", nd.name, method, h2)}
			workers = append(workers, w)
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: f.root, ServerName: host},
				ForceAttemptHTTP2: h2,
				MaxConnsPerHost:   1,
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, nd.https)
				},
			}
			if !h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			wg.Go(func() {
				for n := 0; !stop.Load() && n < 1_000_000; n++ {
					var body io.Reader
					if method == http.MethodPost {
						body = strings.NewReader("payload")
					}
					req, _ := http.NewRequest(method, "https://"+host+"/", body)
					resp, err := hc.Do(req)
					requests.Add(1)
					if err != nil {
						fail(fmt.Errorf("%s: %w", w.name, err))
						continue
					}
					b, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case err != nil || resp.StatusCode != 200:
						fail(fmt.Errorf("%s: status %d %q %v", w.name, resp.StatusCode, b, err))
					case (resp.ProtoMajor == 2) != h2:
						fail(fmt.Errorf("%s: protocol %s", w.name, resp.Proto))
					case string(b) == "new-upstream":
						w.sawNew.Store(true)
					case w.sawNew.Load():
						fail(fmt.Errorf("%s: %q answered after the new upstream had", w.name, b))
					}
				}
			})
		}
	}
	defer func() { stop.Store(true); wg.Wait() }()
	poll.Until(t, "load on every node", time.Minute, func() error {
		if requests.Load() < 300 {
			return errors.New("fewer than 300 requests yet")
		}
		return nil
	})

	if _, err := c.UpdateService(ctx, "moving", client.ServiceUpdate{Upstreams: []string{newUp}}); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	poll.Until(t, "every client on every node answered by the new upstream", time.Minute, func() error {
		for _, w := range workers {
			if !w.sawNew.Load() {
				return fmt.Errorf("%s not on the new upstream yet", w.name)
			}
		}
		return nil
	})
	t.Logf("every client of %d nodes answered by the new upstream %v after the API answered", len(f.nodes), time.Since(changed).Round(time.Millisecond))
	moved := requests.Load()
	poll.Until(t, "more load after the change", time.Minute, func() error {
		if requests.Load() < moved+300 {
			return errors.New("fewer than 300 requests since")
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed across the change; first: %v", n, requests.Load(), firstErr.Load())
	}
	t.Logf("%d requests through %d nodes across the change, none failed", requests.Load(), len(f.nodes))

	// A hostname added through another node: served by every node once
	// its certificate is issued; removed: refused by every node.
	alias := "alias." + Domain
	c2 := f.nodes[1].client()
	if _, err := c2.UpdateService(ctx, "moving", client.ServiceUpdate{AddHosts: []string{alias}}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range f.nodes {
		poll.Until(t, alias+" served by "+nd.name, time.Minute, func() error { return nd.serves(f.root, alias, "new-upstream") })
	}
	if _, err := c2.UpdateService(ctx, "moving", client.ServiceUpdate{RemoveHosts: []string{alias}}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range f.nodes {
		poll.Until(t, nd.name+" stops serving "+alias, time.Minute, func() error {
			_, _, err := nd.get(f.root, alias)
			if err != nil && strings.Contains(err.Error(), "tls: unrecognized name") {
				return nil
			}
			return fmt.Errorf("%s still answers %s: %v", nd.name, alias, err)
		})
	}
	if err := f.nodes[0].serves(f.root, host, "new-upstream"); err != nil {
		t.Fatal(err)
	}
}
