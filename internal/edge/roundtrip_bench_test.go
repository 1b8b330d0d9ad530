package edge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"syscall"
	"testing"
	"time"
)

// BenchmarkProxyPath is the A/B behind the choice of the direct path over
// httputil.ReverseProxy with a RoundTripper (BENCHMARKS.md, "Proxy path"):
// the same keep-alive GET, once through direct.serve and once through the
// upstream's ReverseProxy whose Transport is directRoundTripper, a
// RoundTripper on the same connection pool that writes the request on the
// handler's goroutine (so the difference is ReverseProxy's own work, not
// http.Transport's goroutines). Besides ns/op it reports cpu-ns/op: the
// process's user+system CPU per request, client and upstream included
// (they run in this process), which a loaded machine disturbs less than
// wall time. Run with -count 10: the sub-benchmarks then alternate.
func BenchmarkProxyPath(b *testing.B) {
	for _, proto := range []struct {
		name string
		h2   bool
	}{{"http1", false}, {"http2", true}} {
		for _, path := range []string{"direct", "reverseproxy"} {
			b.Run(proto.name+"/"+path, func(b *testing.B) {
				h, _ := benchEdge(b)
				if path == "reverseproxy" {
					rt, _ := h.s.table.Load().lookup("bench.test")
					u := rt.pool.ups[0]
					u.proxy.Transport = directRoundTripper{u.direct}
					u.direct = nil
				}
				c := h.client(b, proto.h2)
				c.Transport.(*http.Transport).MaxIdleConnsPerHost = 1024
				get := func() bool {
					resp, err := c.Get("https://bench.test/")
					if err != nil {
						b.Error(err)
						return false
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return false
					}
					return true
				}
				for range 100 { // warm the pools on both sides
					if !get() {
						return
					}
				}
				b.ReportAllocs()
				cpu0 := processCPU()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if !get() {
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// directRoundTripper is the candidate: direct's connection pool and
// response reading behind http.RoundTripper, the request written by
// http.Request.Write as ReverseProxy prepared it.
type directRoundTripper struct{ d *direct }

func (t directRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	d := t.d
	c, reused, err := d.get(r.Context())
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(r.Context(), c.abort)
	resp, err := t.try(c, r)
	if err != nil && reused && r.Context().Err() == nil && staleConn(err) {
		stop()
		c.nc.Close()
		if c, err = d.dial(r.Context()); err != nil {
			return nil, err
		}
		stop = context.AfterFunc(r.Context(), c.abort)
		resp, err = t.try(c, r)
	}
	if err != nil {
		stop()
		c.nc.Close()
		return nil, err
	}
	resp.Body = &rtBody{ReadCloser: resp.Body, d: d, c: c, stop: stop, close: resp.Close}
	return resp, nil
}

func (t directRoundTripper) try(c *directConn, r *http.Request) (*http.Response, error) {
	if err := r.Write(c.bw); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	if t.d.headerTimeout > 0 {
		c.nc.SetReadDeadline(time.Now().Add(t.d.headerTimeout))
	}
	if _, err := c.br.Peek(1); err != nil {
		return nil, err
	}
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(c.br, r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 {
			if t.d.headerTimeout > 0 {
				c.nc.SetReadDeadline(time.Time{})
			}
			return resp, nil
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || n >= 5 {
			return nil, errDirect1xx
		}
		if trace := httptrace.ContextClientTrace(r.Context()); trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
}

// rtBody puts the connection back once the body has been read to its end.
type rtBody struct {
	io.ReadCloser
	d     *direct
	c     *directConn
	stop  func() bool
	close bool
	done  bool
}

func (b *rtBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		if b.stop() && !b.close {
			b.d.put(b.c)
		} else {
			b.c.nc.Close()
		}
	}
	return n, err
}

func (b *rtBody) Close() error {
	if !b.done {
		b.done = true
		b.stop()
		b.c.nc.Close()
	}
	return nil
}
