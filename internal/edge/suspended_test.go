package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A suspended route answers 503 with a page naming the service, over
// HTTP/1.1 and HTTP/2, and its upstream is never contacted; the same route
// resumed is proxied again.
func TestSuspendedRoute(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(countHits(&hits, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream-a")
	})))
	t.Cleanup(up.Close)
	route := Route{Host: "a.test", Service: "shop", Upstreams: []string{up.URL}, HSTSMaxAge: 300, Suspended: true}
	h := startEdge(t, Config{}, route)
	for _, h2 := range []bool{false, true} {
		resp, body := do(t, h.client(t, h2), "GET", "https://a.test/", http.Header{"Accept": {"text/html"}})
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "service shop is suspended") || !strings.Contains(body, "<h1>Service suspended</h1>") {
			t.Errorf("h2=%v: %d %q, want 503 and the suspended page", h2, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=300" {
			t.Errorf("h2=%v: HSTS %q on the suspended page", h2, got)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the suspended service's upstream got %d requests", n)
	}
	route.Suspended = false
	if err := h.s.SetRoutes([]Route{route}); err != nil {
		t.Fatal(err)
	}
	if resp, body := do(t, h.client(t, false), "GET", "https://a.test/", nil); resp.StatusCode != 200 || !strings.Contains(body, "upstream-a") {
		t.Errorf("after resuming: %d %q", resp.StatusCode, body)
	}
}

func countHits(n *atomic.Int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "spine-edge-health/1" {
			n.Add(1)
		}
		next.ServeHTTP(w, r)
	})
}
