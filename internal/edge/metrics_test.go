package edge

import (
	"crypto/tls"
	"net/http"
	"testing"

	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/poll"
)

// TestMetrics sends real requests and handshakes through the edge and reads
// the series they leave: per service, code and HTTP version; handshakes by
// version and group; open connections by protocol; upstream health; and a
// service's series going with its routes.
func TestMetrics(t *testing.T) {
	var s *Server // the registry reads the route table at each scrape
	reg := metrics.New(metrics.Sources{
		Upstreams:       func(yield func(string, string, string, bool) bool) { s.Upstreams(yield) },
		UpstreamTargets: func() map[string]bool { return s.UpstreamHealth() },
	})
	up := namedUpstream(t, "one")
	dead := deadURL(t)
	h := startEdge(t, Config{Metrics: reg},
		Route{Host: "a.test", Project: "p", Service: "web", Upstreams: []string{up.URL}},
		Route{Host: "www.a.test", Project: "p", Service: "web", Upstreams: []string{up.URL}},
		Route{Host: "b.test", Project: "p", Service: "gone", Upstreams: []string{dead}})
	s = h.s
	value := func(name string, labels map[string]string) (float64, bool) {
		return metrics.Lookup(reg.Gatherer(), name, labels)
	}
	want := func(name string, labels map[string]string, v float64) {
		t.Helper()
		if got, ok := value(name, labels); !ok || got != v {
			t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, v)
		}
	}

	h1, h2 := h.client(t, false), h.client(t, true)
	for _, c := range []*http.Client{h1, h2} {
		if resp, _ := do(t, c, "GET", "https://a.test/", nil); resp.StatusCode != 200 {
			t.Fatalf("a.test: %d", resp.StatusCode)
		}
	}
	if resp, _ := do(t, h1, "GET", "https://www.a.test/", nil); resp.StatusCode != 200 {
		t.Fatalf("www.a.test: %d", resp.StatusCode)
	}
	if resp, _ := do(t, h1, "GET", "https://b.test/", nil); resp.StatusCode != 502 {
		t.Fatalf("b.test: %d, want 502", resp.StatusCode)
	}
	// The HTTP/1.1 client keeps a connection per hostname (a.test, www.a.test,
	// b.test), the HTTP/2 one its one connection.
	poll.Until(t, "the open connections", waitTimeout, poll.True(func() bool {
		a, _ := value("spine_open_connections", map[string]string{"listener": "https", "protocol": "http/1.1"})
		b, _ := value("spine_open_connections", map[string]string{"listener": "https", "protocol": "h2"})
		return a == 3 && b == 1
	}))
	h1.CloseIdleConnections()
	h2.CloseIdleConnections()
	poll.Until(t, "the connections to close", waitTimeout, poll.True(func() bool {
		a, _ := value("spine_open_connections", map[string]string{"listener": "https", "protocol": "http/1.1"})
		b, _ := value("spine_open_connections", map[string]string{"listener": "https", "protocol": "h2"})
		return a == 0 && b == 0
	}))

	// A misdirected request on a.test's connection is counted for a.test's
	// service, with its code.
	req, _ := http.NewRequest("GET", "https://a.test/", nil)
	req.Host = "www.a.test"
	resp, err := h1.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("misdirected: %d", resp.StatusCode)
	}

	want("spine_http_requests_total", map[string]string{"service": "p/web", "code": "200", "proto": "1.1"}, 2)
	want("spine_http_requests_total", map[string]string{"service": "p/web", "code": "200", "proto": "2"}, 1)
	want("spine_http_requests_total", map[string]string{"service": "p/web", "code": "421", "proto": "1.1"}, 1)
	want("spine_http_requests_total", map[string]string{"service": "p/gone", "code": "502", "proto": "1.1"}, 1)
	want("spine_http_request_duration_seconds", map[string]string{"service": "p/web"}, 4)
	want("spine_upstream_healthy", map[string]string{"service": "p/web", "upstream": up.URL}, 1)
	want("spine_upstream_healthy", map[string]string{"service": "p/gone", "upstream": dead}, 0) // out of rotation after the failure
	want("spine_upstream_targets", map[string]string{"healthy": "true"}, 1)
	want("spine_upstream_targets", map[string]string{"healthy": "false"}, 1)
	want("spine_metrics_series_omitted", map[string]string{"family": "spine_upstream_healthy"}, 0)

	// Handshakes: the five connections' (TLS 1.3, Go's default hybrid group),
	// and one refused for a name the edge does not serve.
	want("spine_tls_handshakes_total", map[string]string{"result": "success", "version": "TLS 1.3", "group": tls.X25519MLKEM768.String(), "resumed": "false"}, 5)
	if c, err := h.dialTLS("unknown.test"); err == nil {
		c.Close()
		t.Fatal("a handshake for an unknown name succeeded")
	}
	poll.Until(t, "the failed handshake", waitTimeout, poll.True(func() bool {
		v, _ := value("spine_tls_handshakes_total", map[string]string{"result": "failure", "version": "", "group": "", "resumed": "false"})
		return v == 1
	}))

	// The service leaves the table: its series go, the others stay.
	if err := h.s.SetRoutes([]Route{{Host: "a.test", Project: "p", Service: "web", Upstreams: []string{up.URL}}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"spine_http_requests_total", "spine_http_request_duration_seconds", "spine_upstream_healthy"} {
		mfs, _ := reg.Gatherer().Gather()
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "service" && l.GetValue() == "p/gone" {
						t.Errorf("%s still has a series of the removed service: %v", name, m.GetLabel())
					}
				}
			}
		}
	}
	want("spine_http_requests_total", map[string]string{"service": "p/web", "code": "200", "proto": "1.1"}, 2)
	if resp, _ := do(t, h1, "GET", "https://a.test/", nil); resp.StatusCode != 200 {
		t.Fatalf("a.test after the swap: %d", resp.StatusCode)
	}
	want("spine_http_requests_total", map[string]string{"service": "p/web", "code": "200", "proto": "1.1"}, 3)
}

// A service's metrics recorder is made at its first request, not when its
// routes are set (an idle service holds none), is shared by its
// hostnames, survives a swap that keeps the service, and is forgotten
// with the service's last route: a request still holding the old route
// then makes no new one.
func TestMetricsRecorderOnFirstRequest(t *testing.T) {
	reg := metrics.New(metrics.Sources{})
	up := namedUpstream(t, "one")
	h := startEdge(t, Config{Metrics: reg},
		Route{Host: "a.test", Project: "p", Service: "web", Upstreams: []string{up.URL}},
		Route{Host: "www.a.test", Project: "p", Service: "web", Upstreams: []string{up.URL}},
		Route{Host: "idle.test", Project: "p", Service: "idle", Upstreams: []string{up.URL}})
	rec := func(host string) *metrics.Service {
		rt, ok := h.s.table.Load().lookup(host)
		if !ok {
			t.Fatalf("%s is not routed", host)
		}
		return h.s.svcs.recorder(rt.svc)
	}
	if rec("a.test") != nil || rec("idle.test") != nil {
		t.Fatal("a recorder was made before any request")
	}
	c := h.client(t, false)
	if resp, _ := do(t, c, "GET", "https://a.test/", nil); resp.StatusCode != 200 {
		t.Fatalf("a.test: %d", resp.StatusCode)
	}
	if rec("a.test") == nil || rec("a.test") != rec("www.a.test") {
		t.Error("a.test's request made no recorder shared with www.a.test")
	}
	if rec("idle.test") != nil {
		t.Error("the idle service has a recorder")
	}
	// A swap keeping the service keeps its recorder and counts.
	before := rec("a.test")
	if err := h.s.SetRoutes([]Route{
		{Host: "a.test", Project: "p", Service: "web", Upstreams: []string{up.URL}},
		{Host: "idle.test", Project: "p", Service: "idle", Upstreams: []string{up.URL}},
	}); err != nil {
		t.Fatal(err)
	}
	if rec("a.test") != before {
		t.Error("the swap made the kept service a new recorder")
	}
	old, _ := h.s.table.Load().lookup("a.test")
	oldIdle, _ := h.s.table.Load().lookup("idle.test")
	if err := h.s.UpdateRoutes(nil, []string{"a.test", "idle.test"}); err != nil {
		t.Fatal(err)
	}
	series := map[string]string{"service": "p/web", "code": "200", "proto": "1.1"}
	if _, ok := metrics.Lookup(reg.Gatherer(), "spine_http_requests_total", series); ok {
		t.Error("the removed service's series are still there")
	}
	if m := h.s.recorder(&old); m != nil { // a request still on the old table
		m.Observe(200, 1, 1, 0)
		t.Error("a request on the removed service's old route got a recorder")
	}
	if _, ok := metrics.Lookup(reg.Gatherer(), "spine_http_requests_total", series); ok {
		t.Error("a request on the removed service's old route brought its series back")
	}
	if m := h.s.recorder(&oldIdle); m != nil {
		t.Error("a request on the removed idle service's old route made a recorder")
	}
	if _, ok := h.s.services.get("p", "web"); ok {
		t.Error("the removed service is still in the server's services")
	}
}

// A service whose recorder the registry dropped for its bound gets a new
// one at its next request, its counts from zero.
func TestMetricsRecorderMadeAgainAfterADrop(t *testing.T) {
	reg := metrics.New(metrics.Sources{MaxSeries: 1})
	up := namedUpstream(t, "one")
	h := startEdge(t, Config{Metrics: reg},
		Route{Host: "a.test", Project: "p", Service: "web", Upstreams: []string{up.URL}},
		Route{Host: "b.test", Project: "p", Service: "api", Upstreams: []string{up.URL}})
	rec := func(host string) *metrics.Service {
		rt, _ := h.s.table.Load().lookup(host)
		return h.s.svcs.recorder(rt.svc)
	}
	c := h.client(t, false)
	get := func(host string) {
		t.Helper()
		if resp, _ := do(t, c, "GET", "https://"+host+"/", nil); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", host, resp.StatusCode)
		}
	}
	get("a.test")
	first := rec("a.test")
	get("b.test") // the bound is one service: a's recorder is dropped
	if dropped, _ := metrics.Lookup(reg.Gatherer(), "spine_metrics_services_dropped_total", nil); !first.Gone() || dropped != 1 {
		t.Fatalf("a's recorder gone %v, %v dropped; want true, 1", first.Gone(), dropped)
	}
	get("a.test")
	if again := rec("a.test"); again == first || again.Gone() {
		t.Fatal("a's next request did not make it a new recorder")
	}
	series := map[string]string{"service": "p/web", "code": "200", "proto": "1.1"}
	if v, ok := metrics.Lookup(reg.Gatherer(), "spine_http_requests_total", series); !ok || v != 1 {
		t.Errorf("a's requests after the drop = %v (present %v), want 1", v, ok)
	}
}
