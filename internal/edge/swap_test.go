package edge

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
)

// connCounter counts a test server's open connections.
type connCounter struct {
	opened, closed atomic.Int64
}

func (c *connCounter) track(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		c.opened.Add(1)
	case http.StateClosed, http.StateHijacked:
		c.closed.Add(1)
	}
}

func (c *connCounter) open() int64 { return c.opened.Load() - c.closed.Load() }

// blockingUpstream answers with its name; a request for /block waits for
// release first (a request still in flight when the routes change).
func blockingUpstream(t *testing.T, name string, release <-chan struct{}, blocked *sync.WaitGroup) (*httptest.Server, *connCounter) {
	cc := &connCounter{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/block" {
			blocked.Done()
			<-release
		}
		io.WriteString(w, name)
	}))
	srv.Config.ConnState = cc.track
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cc
}

// TestUpstreamChangeUnderLoad changes a route's upstream while clients keep
// sending requests over kept-alive HTTP/1.1 and HTTP/2 connections (GETs on
// the direct path, POSTs through ReverseProxy): no request fails, each
// client's answers move to the new upstream and never back, requests still
// in flight on the old upstream complete, and then the old upstream's
// connections are closed (drained, not cut, and not left idle).
func TestUpstreamChangeUnderLoad(t *testing.T) {
	release := make(chan struct{})
	var blocked sync.WaitGroup
	oldUp, oldConns := blockingUpstream(t, "old", release, &blocked)
	newUp, _ := blockingUpstream(t, "new", nil, &blocked)
	h := startEdge(t, Config{}, Route{Host: "a.test", Service: "a", Upstreams: []string{oldUp.URL}})

	// Requests in flight on the old upstream across the change: one on each path.
	inflight := make(chan error, 2)
	blocked.Add(2)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		c := h.client(t, method == http.MethodPost)
		go func() {
			req, _ := http.NewRequest(method, "https://a.test/block", strings.NewReader(strings.Repeat("x", 1000)))
			if method == http.MethodGet {
				req.Body, req.ContentLength = nil, 0
			}
			resp, err := c.Do(req)
			if err == nil {
				var b []byte
				b, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && (resp.StatusCode != 200 || string(b) != "old") {
					err = fmt.Errorf("%s /block: %d %q, want 200 \"old\"", method, resp.StatusCode, b)
				}
			}
			inflight <- err
		}()
	}
	blocked.Wait()

	const workers = 8
	var (
		stop     atomic.Bool
		failed   atomic.Int64
		sawNew   [workers]atomic.Bool
		wg       sync.WaitGroup
		firstErr atomic.Value
	)
	for i := range workers {
		c := h.client(t, i%2 == 0) // half HTTP/2, half HTTP/1.1, each one kept-alive connection
		method := []string{http.MethodGet, http.MethodPost}[i/2%2]
		wg.Go(func() {
			for n := 0; !stop.Load() && n < 100000; n++ {
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader("payload")
				}
				req, _ := http.NewRequest(method, "https://a.test/", body)
				resp, err := c.Do(req)
				var got string
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					got, err = string(b), rerr
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
					}
				}
				switch {
				case err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("worker %d (%s): %v", i, method, err))
				case got == "new":
					sawNew[i].Store(true)
				case got == "old" && sawNew[i].Load():
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("worker %d (%s): the old upstream answered after the new one had", i, method))
				}
			}
		})
	}
	// Some load on the old table first.
	poll.Until(t, "requests through the old upstream", waitTimeout, poll.True(func() bool { return oldConns.opened.Load() >= 4 }))
	if err := h.s.SetRoutes([]Route{{Host: "a.test", Service: "a", Upstreams: []string{newUp.URL}}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "every client answered by the new upstream", waitTimeout, poll.True(func() bool {
		for i := range sawNew {
			if !sawNew[i].Load() {
				return false
			}
		}
		return true
	}))
	stop.Store(true)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed across the change; first: %v", n, firstErr.Load())
	}

	// The requests in flight on the old upstream complete...
	if oldConns.open() == 0 {
		t.Fatal("the old upstream's connections were closed under requests in flight")
	}
	close(release)
	for range 2 {
		if err := <-inflight; err != nil {
			t.Fatalf("a request in flight across the change: %v", err)
		}
	}
	// ...and then nothing stays connected to it.
	poll.Until(t, "the old upstream's connections closed", waitTimeout, poll.True(func() bool { return oldConns.open() == 0 }))
}

// TestPerRouteHealthCheck: each route's upstreams are checked on its own
// path and interval; two routes naming one URL with different checks get
// one checker each.
func TestPerRouteHealthCheck(t *testing.T) {
	var mu sync.Mutex
	paths := map[string]int{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths[r.URL.RequestURI()]++
		mu.Unlock()
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(up.Close)
	h := startEdge(t, Config{HealthPath: "/global"}, // interval: an hour (startEdge)
		Route{Host: "a.test", Upstreams: []string{up.URL}, HealthPath: "/down", HealthInterval: 20 * time.Millisecond},
		Route{Host: "b.test", Upstreams: []string{up.URL}, HealthPath: "/ok?deep=1", HealthInterval: 20 * time.Millisecond},
		Route{Host: "c.test", Upstreams: []string{up.URL}},
	)
	count := func(p string) int {
		mu.Lock()
		defer mu.Unlock()
		return paths[p]
	}
	poll.Until(t, "both routes' checks, each on its own path", waitTimeout, poll.True(func() bool { return count("/down") >= 3 && count("/ok?deep=1") >= 3 }))
	var ups []*upstream
	h.s.mu.Lock()
	for _, u := range h.s.upstreams {
		ups = append(ups, u)
	}
	h.s.mu.Unlock()
	if len(ups) != 3 {
		t.Fatalf("%d upstreams for one URL under three health checks, want 3", len(ups))
	}
	// The hour-long default checks once, at start.
	if n := count("/global"); n > 1 {
		t.Errorf("the default check ran %d times, want once at most", n)
	}
	h.s.mu.Lock()
	var downVerdict, okVerdict bool
	for _, u := range h.s.upstreams {
		switch u.health.path {
		case "/down":
			downVerdict = u.available()
		case "/ok?deep=1":
			okVerdict = u.available()
		}
	}
	h.s.mu.Unlock()
	if downVerdict || !okVerdict {
		t.Errorf("verdicts: /down available=%v, /ok available=%v; want false, true", downVerdict, okVerdict)
	}
	// The route whose check fails still answers through its upstream (a
	// pool of one tries it anyway), and the others are untouched.
	c := h.client(t, false)
	for _, host := range []string{"a.test", "b.test", "c.test"} {
		if resp, _ := do(t, c, http.MethodGet, "https://"+host+"/", nil); resp.StatusCode != 200 {
			t.Errorf("%s: %d", host, resp.StatusCode)
		}
	}

	// Changing a route's check replaces its checker; the old one ends.
	var old *upstream
	h.s.mu.Lock()
	for _, u := range h.s.upstreams {
		if u.health.path == "/down" {
			old = u
		}
	}
	h.s.mu.Unlock()
	if err := h.s.SetRoutes([]Route{
		{Host: "a.test", Upstreams: []string{up.URL}, HealthPath: "/ok?deep=1", HealthInterval: 20 * time.Millisecond},
		{Host: "b.test", Upstreams: []string{up.URL}, HealthPath: "/ok?deep=1", HealthInterval: 20 * time.Millisecond},
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the replaced health checker still runs")
	}
	h.s.mu.Lock()
	n := len(h.s.upstreams)
	h.s.mu.Unlock()
	if n != 1 {
		t.Errorf("%d upstreams for two routes with one check, want 1 shared", n)
	}
	for _, bad := range []Route{
		{Host: "a.test", Upstreams: []string{up.URL}, HealthPath: "health"},
		{Host: "a.test", Upstreams: []string{up.URL}, HealthPath: "/a b"},
		{Host: "a.test", Upstreams: []string{up.URL}, HealthInterval: -time.Second},
	} {
		if err := CheckRoute(bad); err == nil {
			t.Errorf("CheckRoute(%+v) accepted it", bad)
		}
	}
}

// TestLateRequestOnStoppedUpstream: a request that took its route from the
// table before a swap may reach the removed upstream after it was stopped;
// it is answered, and its connection does not stay open afterwards.
func TestLateRequestOnStoppedUpstream(t *testing.T) {
	var blocked sync.WaitGroup
	srv, conns := blockingUpstream(t, "old", nil, &blocked)
	target, err := parseUpstream(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Logger: testLogger(t)}.withDefaults()
	u := newUpstream(srv.URL, target, healthCheck{path: "/", interval: time.Hour}, &cfg)
	u.stop()
	for _, method := range []string{http.MethodPost, http.MethodPut} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, "https://a.test/", strings.NewReader("late"))
		u.serveProxy(rec, req)
		if rec.Code != 200 || rec.Body.String() != "old" {
			t.Fatalf("late %s: %d %q", method, rec.Code, rec.Body.String())
		}
	}
	poll.Until(t, "the stopped upstream's connection closed", waitTimeout, poll.True(func() bool { return conns.open() == 0 }))
}
