package edge

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/accesslog"
	"github.com/spine-platform/spine/internal/logging"
)

// BenchmarkProxyAccessLog measures proxied GETs on kept-alive connections
// (as BenchmarkProxyKeepAlive) with the access log off, and writing JSON
// lines to a file. Besides ns/op it reports cpu-ns/op: the process's user
// and system CPU per request, the client's and the upstream's included
// (they share the process). Compare off and file of one run; run it
// several times, interleaved, on a shared machine (BENCHMARKS.md).
func BenchmarkProxyAccessLog(b *testing.B) {
	for _, proto := range []string{"http1", "http2"} {
		for _, mode := range []string{"off", "file"} {
			b.Run(proto+"/"+mode, func(b *testing.B) {
				up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.WriteString(w, "hello from upstream\n")
				}))
				b.Cleanup(up.Close)
				cfg := Config{Logger: slog.New(slog.DiscardHandler)}
				var al *accesslog.Log
				if mode == "file" {
					var err error
					al, err = accesslog.OpenFile(filepath.Join(b.TempDir(), "access.log"), accesslog.Config{Format: logging.JSON})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { al.Close() })
					cfg.AccessLog = al.Log
				}
				h := startEdge(b, cfg, Route{Host: "bench.test", Project: "default", Service: "bench", Upstreams: []string{up.URL}, HSTSMaxAge: 31536000})
				c := h.client(b, proto == "http2")
				c.Transport.(*http.Transport).MaxIdleConnsPerHost = 1024
				b.ReportAllocs()
				cpu0 := cpuTime()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						resp, err := c.Get("https://bench.test/some/path?q=1")
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
				b.StopTimer()
				if al != nil {
					al.Close() // the writer's backlog is part of the cost
					if s := al.Stats(); s.Dropped > 0 {
						b.ReportMetric(float64(s.Dropped), "dropped")
					}
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
