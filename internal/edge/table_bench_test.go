package edge

import (
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
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
		if s.table.Load().lookup(hostname.Clean(hosts[i%len(hosts)])) == nil {
			b.Fatal("not found")
		}
		i++
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
