package fleet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
)

// BenchmarkPropagation measures, over three nodes, the time from the API's
// answer to a new service until every node routes its hostname (plain HTTP
// answers 308 rather than 404: the routing snapshot has it) and until every
// node serves it over HTTPS (certificate issued once, loaded everywhere).
// Services are created through the nodes in turn. It reports p50 and p99 of
// both; run with a fixed count, e.g.
//
//	go test ./test/fleet -run '^$' -bench Propagation -benchtime 200x
func BenchmarkPropagation(b *testing.B) {
	dsn := freshSchema(b, basePostgres())
	f := newFleet(b, dsn, 3)
	up := upstream(b, "bench-upstream")
	plain := make([]*http.Client, len(f.nodes))
	for i, nd := range f.nodes {
		addr := nd.http
		tr := &http.Transport{MaxIdleConnsPerHost: 4, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
		plain[i] = &http.Client{Transport: tr, Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	clients := make([]*client.Client, len(f.nodes))
	for i, nd := range f.nodes {
		clients[i] = nd.client()
	}

	var routed, served []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("b%05d", i)
		host := name + "." + Domain
		if _, err := clients[i%3].CreateService(context.Background(), client.ServiceCreate{Name: name, Upstreams: []string{up}}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		var mu sync.Mutex
		var lastRouted, lastServed time.Duration
		var wg sync.WaitGroup
		for j, nd := range f.nodes {
			wg.Go(func() {
				for !routes(plain[j], host) {
				}
				r := time.Since(start)
				for nd.serves(f.root, host, "bench-upstream") != nil {
					time.Sleep(time.Millisecond)
				}
				s := time.Since(start)
				mu.Lock()
				lastRouted, lastServed = max(lastRouted, r), max(lastServed, s)
				mu.Unlock()
			})
		}
		wg.Wait()
		routed, served = append(routed, lastRouted), append(served, lastServed)
	}
	b.StopTimer()
	report(b, "routed", routed)
	report(b, "served", served)
}

// routes reports whether the node's plain-HTTP listener knows host (308).
func routes(c *http.Client, host string) bool {
	req, _ := http.NewRequest("GET", "http://"+host+"/", nil)
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusPermanentRedirect
}

func report(b *testing.B, what string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	q := func(p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), what+"-p50-ms")
	b.ReportMetric(q(0.99), what+"-p99-ms")
}
