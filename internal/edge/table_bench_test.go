package edge

import (
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/memory/memtest"
)

// manyRoutes returns n routes, n0.bench.test to n(n-1).bench.test, over
// a handful of upstreams, as a platform with one hostname per customer has.
func manyRoutes(n int) []Route {
	routes := make([]Route, n)
	for i := range routes {
		routes[i] = Route{Host: "n" + strconv.Itoa(i) + ".bench.test", Project: "p", Service: "s" + strconv.Itoa(i%16),
			Upstreams: []string{"http://127.0.0.1:" + strconv.Itoa(1+i%16)}}
	}
	return routes
}

func benchServer(b *testing.B, n int) *Server {
	s := New(Config{Logger: slog.New(slog.DiscardHandler), HealthInterval: time.Hour})
	b.Cleanup(func() { s.Shutdown(context.Background()) })
	if err := s.SetRoutes(manyRoutes(n)); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkLookupMany measures the request path's route lookup in a table
// of a million routes.
func BenchmarkLookupMany(b *testing.B) {
	s := benchServer(b, 1_000_000)
	hosts := []string{"n17.bench.test:443", "n999999.bench.test", "n500000.bench.test"}
	runtime.GC() // the table's build done with: measure the steady state
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, ok := s.table.Load().lookup(hostname.Clean(hosts[i%len(hosts)])); !ok {
			b.Fatal("not found")
		}
		i++
	}
}

// spreadHosts returns a table of a million routes and 65,536 of its hosts
// spread over it, in a scattered order, with the timer reset.
func spreadHosts(b *testing.B) (*Server, []string) {
	const n = 1_000_000
	s := benchServer(b, n)
	hosts := make([]string, 1<<16)
	for i := range hosts {
		hosts[i] = "n" + strconv.Itoa(i*7919%n) + ".bench.test"
	}
	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	return s, hosts
}

// BenchmarkLookupSpread is BenchmarkLookupMany over 65,536 hosts spread
// over the table, in a scattered order: the memory a lookup touches is
// mostly out of the processor's caches, as with a node's real clients.
func BenchmarkLookupSpread(b *testing.B) {
	s, hosts := spreadHosts(b)
	i := 0
	for b.Loop() {
		if _, ok := s.table.Load().lookup(hosts[i&(len(hosts)-1)]); !ok {
			b.Fatal("not found")
		}
		i++
	}
}

// BenchmarkLookupChained is BenchmarkLookupSpread with each lookup's
// host picked by the route the one before it found: the processor cannot
// start a lookup's reads before the last one's are done, as it can when
// they are independent. So it measures a lookup's latency (what a request
// waits) where BenchmarkLookupSpread measures their throughput, which
// the number of instructions between the reads moves too.
func BenchmarkLookupChained(b *testing.B) {
	s, hosts := spreadHosts(b)
	i := 0
	for b.Loop() {
		rt, ok := s.table.Load().lookup(hosts[i&(len(hosts)-1)])
		if !ok {
			b.Fatal("not found")
		}
		i += 1 + len(rt.Host)>>8 // a hostname is shorter than 256 bytes: 1, known only once found
	}
}

// BenchmarkSetRoutes measures a node's first table of a million routes
// (over 62,500 services), then a swap to the same routes (a resync).
func BenchmarkSetRoutes(b *testing.B) {
	routes := manyRoutes(1_000_000)
	for i := range routes {
		routes[i].Service = "s" + strconv.Itoa(i/16)
	}
	for b.Loop() {
		s := New(Config{Logger: slog.New(slog.DiscardHandler), HealthInterval: time.Hour})
		for range 2 {
			if err := s.SetRoutes(routes); err != nil {
				b.Fatal(err)
			}
		}
		s.Shutdown(context.Background())
	}
}

// BenchmarkUpdateRoutes measures a change of one route (a service created
// and deleted in turn) in a table of a million routes.
func BenchmarkUpdateRoutes(b *testing.B) {
	s := benchServer(b, 1_000_000)
	r := Route{Host: "new.bench.test", Project: "p", Service: "new", Upstreams: []string{"http://127.0.0.1:1"}}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		var err error
		if i%2 == 0 {
			err = s.UpdateRoutes([]Route{r}, nil)
		} else {
			err = s.UpdateRoutes(nil, []string{r.Host})
		}
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkTableBytes reports the live heap a route table of 100,000
// hostnames costs the edge, per hostname (B/host): its table, services and
// shared settings, not the strings of the routes (the caller's, kept
// alive on both sides of the measure). One service per hostname, then
// four hostnames per service. It also reports the collector's mark work
// for the table, per hostname (mark-ns/host): the processor time of a
// forced collection's mark phase with the table, less without it. Every
// collection marks the table again; on one processor a mark phase's
// background worker holds the processor 10 ms at a time, so what it has
// to mark is how often handshakes wait behind it.
func BenchmarkTableBytes(b *testing.B) {
	const n = 100_000
	for _, perService := range []int{1, 4} {
		b.Run("hosts_per_service="+strconv.Itoa(perService), func(b *testing.B) {
			routes := make([]Route, n)
			for i := range routes {
				routes[i] = Route{Host: "n" + strconv.Itoa(i) + ".bench.test", Project: "default",
					Service: "s" + strconv.Itoa(i/perService), Upstreams: []string{"http://127.0.0.1:" + strconv.Itoa(1+i%16)}}
			}
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				s := New(Config{Logger: slog.New(slog.DiscardHandler), HealthInterval: time.Hour})
				if err := s.SetRoutes(routes); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "B/host")
				with := memtest.MarkCPU()
				runtime.KeepAlive(s)
				s.Shutdown(context.Background()) // s is dead from here on
				runtime.GC()
				b.ReportMetric(float64(with-memtest.MarkCPU())/n, "mark-ns/host")
			}
			runtime.KeepAlive(routes)
		})
	}
}
