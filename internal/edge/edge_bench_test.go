package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/metrics"
)

// Benchmarks for the hot path, end to end over loopback TCP: client → edge
// (TLS) → upstream. Compare runs with benchstat; the numbers include the
// client and upstream, which run in the same process.

func benchEdge(b *testing.B) (*harness, *httptest.Server) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from upstream\n")
	}))
	b.Cleanup(up.Close)
	// With metrics, as a node runs it (BENCHMARKS.md has the A/B).
	h := startEdge(b, Config{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New(metrics.Sources{})},
		Route{Host: "bench.test", Service: "bench", Upstreams: []string{up.URL}, HSTSMaxAge: 31536000})
	return h, up
}

// BenchmarkProxyKeepAlive measures proxied GETs on kept-alive connections.
func BenchmarkProxyKeepAlive(b *testing.B) {
	for _, tc := range []struct {
		name string
		h2   bool
	}{{"http1", false}, {"http2", true}} {
		b.Run(tc.name, func(b *testing.B) {
			h, _ := benchEdge(b)
			c := h.client(b, tc.h2)
			c.Transport.(*http.Transport).MaxIdleConnsPerHost = 1024
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Get("https://bench.test/")
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// BenchmarkHandshake measures full TLS handshakes (no resumption).
func BenchmarkHandshake(b *testing.B) {
	h, _ := benchEdge(b)
	cfg := &tls.Config{ServerName: "bench.test", RootCAs: h.pki.pool, NextProtos: []string{"h2", "http/1.1"}}
	d := &net.Dialer{Timeout: 10 * time.Second}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			conn, err := d.DialContext(context.Background(), "tcp", h.tlsAddr)
			if err != nil {
				b.Error(err)
				return
			}
			tc := tls.Client(conn, cfg.Clone())
			if err := tc.Handshake(); err != nil {
				b.Error(err)
				conn.Close()
				return
			}
			tc.Close()
		}
	})
}

// BenchmarkLookup measures the per-request route lookup.
func BenchmarkLookup(b *testing.B) {
	s := New(Config{Logger: slog.New(slog.DiscardHandler), HealthInterval: time.Hour})
	b.Cleanup(func() { s.Shutdown(context.Background()) })
	if err := s.SetRoutes([]Route{{Host: "bench.test", Upstreams: []string{"http://127.0.0.1:1"}}}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !s.table.Load().has(hostname.Clean("bench.test:443")) {
			b.Fatal("not found")
		}
	}
}

// BenchmarkIdleConn holds b.N idle TLS keep-alive connections to the edge,
// each after one proxied HTTP/1.1 request (as the memory figure of
// BENCHMARKS.md), and reports the Go heap and stacks they hold per
// connection. Client and edge share the process, so heap-KiB/conn also
// holds the client's side (its tls.Conn and a 4 KiB bufio.Reader, about
// 7 KiB); stack-KiB/conn is the edge's alone (the client runs no goroutine
// per connection). Run it with -benchtime 2000x.
func BenchmarkIdleConn(b *testing.B) {
	h, _ := benchEdge(b)
	cfg := &tls.Config{ServerName: "bench.test", RootCAs: h.pki.pool, NextProtos: []string{"http/1.1"}}
	measure := func() (heap, stack uint64) {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse, ms.StackInuse
	}
	req := []byte("GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n")
	conns := make([]*tls.Conn, 0, b.N)
	b.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	heap0, stack0 := measure()
	for range b.N {
		c, err := tls.Dial("tcp", h.tlsAddr, cfg)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
	}
	time.Sleep(500 * time.Millisecond)
	heap1, stack1 := measure()
	b.ReportMetric(float64(heap1-heap0)/1024/float64(b.N), "heap-KiB/conn")
	b.ReportMetric(float64(stack1-stack0)/1024/float64(b.N), "stack-KiB/conn")
}
