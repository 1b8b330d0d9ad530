package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestServiceObserveAllocatesNothing(t *testing.T) {
	r := New(Sources{})
	s := r.Service("p", "web")
	s.Observe(200, 1, 1, time.Millisecond) // makes the series
	if n := testing.AllocsPerRun(1000, func() { s.Observe(200, 1, 1, time.Millisecond) }); n != 0 {
		t.Errorf("Observe allocates %v times a request, want 0", n)
	}
	if v, ok := Lookup(r.Gatherer(), "spine_http_requests_total", map[string]string{"service": "p/web", "code": "200", "proto": "1.1"}); !ok || v != 1002 { // AllocsPerRun runs once more to warm up
		t.Errorf("requests = %v (present %v), want 1002", v, ok)
	}
}

// TestForgottenServiceMakesNoSeries: a request that finishes on an old
// route table after its service left counts nothing, and brings back no
// series that nothing would delete.
func TestForgottenServiceMakesNoSeries(t *testing.T) {
	r := New(Sources{})
	old := r.Service("p", "old")
	old.Observe(200, 2, 0, time.Millisecond)
	r.ForgetServices(map[string]bool{})
	old.Observe(200, 2, 0, time.Millisecond) // a resolved series: counted nowhere
	old.Observe(404, 2, 0, time.Millisecond) // a new code: not made
	old.Observe(299, 2, 0, time.Millisecond) // an uncommon code: not made
	for _, name := range []string{"spine_http_requests_total", "spine_http_request_duration_seconds"} {
		mfs, _ := r.Gatherer().Gather()
		for _, mf := range mfs {
			if mf.GetName() == name && len(mf.GetMetric()) > 0 {
				t.Errorf("%s has series after the service was forgotten: %v", name, mf.GetMetric())
			}
		}
	}
	// The same service back: a new recorder, counting from zero.
	r.Service("p", "old").Observe(299, 1, 0, time.Millisecond)
	if v, ok := Lookup(r.Gatherer(), "spine_http_requests_total", map[string]string{"service": "p/old", "code": "299", "proto": "1.0"}); !ok || v != 1 {
		t.Errorf("requests = %v (present %v), want 1", v, ok)
	}
}

func TestHandlerServesTextFormat(t *testing.T) {
	r := New(Sources{
		StoreUp:        func() bool { return true },
		ConfigRevision: func() int64 { return 42 },
		Certificates: func(yield func(Certificate) bool) {
			yield(Certificate{Hostname: "a.example", Project: "p", Service: "web", Issuer: "Spine Internal CA",
				NotBefore: time.Unix(1000, 0), NotAfter: time.Unix(2000, 0), Ready: true})
		},
		Counters: func() []Value { return []Value{{Name: "spine_test_total", Help: "x", Counter: true, V: 3}} },
	})
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, line := range []string{
		`spine_certificate_not_after_timestamp_seconds{hostname="a.example",issuer="Spine Internal CA",project="p",service="web"} 2000`,
		`spine_certificate_not_before_timestamp_seconds{hostname="a.example",issuer="Spine Internal CA",project="p",service="web"} 1000`,
		`spine_certificate_ready{hostname="a.example",project="p",service="web"} 1`,
		`spine_certificate_hostnames{ready="true"} 1`,
		`spine_certificate_hostnames{ready="false"} 0`,
		`spine_metrics_series_omitted{family="spine_certificate_ready"} 0`,
		`spine_store_up 1`,
		`spine_config_revision 42`,
		`spine_test_total 3`,
		`go_goroutines `,
		`process_start_time_seconds `,
	} {
		if !strings.Contains(string(b), line) {
			t.Errorf("the page lacks %q", line)
		}
	}
}

// TestSeriesBound: past MaxSeries, the hostnames not ready keep their
// series and the ready ones fill what is left; the counts cover every
// hostname, the omitted gauge says how many have no series, and the
// source is read once, without a list of every hostname. Upstream pairs
// likewise, the unhealthy first, then the healthy ones of a service with
// one unhealthy (it is not wholly down), a pair that comes again (another
// hostname of its service) once.
func TestSeriesBound(t *testing.T) {
	var certs []Certificate
	for i := range 6 {
		certs = append(certs, Certificate{Hostname: fmt.Sprintf("h%d.example", i), Project: "p", Service: "web",
			NotBefore: time.Unix(1000, 0), NotAfter: time.Unix(2000, 0), Ready: i%3 != 0}) // h0 and h3 not ready
	}
	reads := 0
	r := New(Sources{
		MaxSeries: 3,
		Certificates: func(yield func(Certificate) bool) {
			reads++
			for _, c := range certs {
				if !yield(c) {
					return
				}
			}
		},
		Upstreams: func(yield func(project, service, upstream string, healthy bool) bool) {
			for _, u := range []struct {
				svc, up string
				ok      bool
			}{{"a", "http://a", true}, {"a", "http://a", true}, {"b", "http://b", true}, {"c", "http://c", false},
				{"d", "http://d", true}, {"e", "http://e", true}, {"f", "http://f", false}, {"f", "http://f2", true}} {
				if !yield("p", u.svc, u.up, u.ok) {
					return
				}
			}
		},
	})
	mfs, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string][]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if n := l.GetName(); n == "hostname" || n == "service" && mf.GetName() == "spine_upstream_healthy" {
					labels = append(labels, l.GetValue())
				}
			}
			series[mf.GetName()] = append(series[mf.GetName()], strings.Join(labels, ","))
		}
	}
	if reads != 1 {
		t.Errorf("the certificates were read %d times, want 1", reads)
	}
	ready := series["spine_certificate_ready"]
	slices.Sort(ready)
	if want := []string{"h0.example", "h1.example", "h3.example"}; !slices.Equal(ready, want) {
		t.Errorf("certificate series for %v, want %v (the two not ready, then the first ready)", ready, want)
	}
	if n := len(series["spine_certificate_not_after_timestamp_seconds"]); n != 3 {
		t.Errorf("%d not_after series, want 3", n)
	}
	ups := series["spine_upstream_healthy"]
	slices.Sort(ups)
	if want := []string{"p/c", "p/f", "p/f"}; !slices.Equal(ups, want) {
		t.Errorf("upstream series for %v, want %v (the two unhealthy, then the healthy one of f)", ups, want)
	}
	for labels, want := range map[string]float64{
		"spine_certificate_hostnames/ready=true":                      4,
		"spine_certificate_hostnames/ready=false":                     2,
		"spine_metrics_series_omitted/family=spine_certificate_ready": 3,
		"spine_metrics_series_omitted/family=spine_upstream_healthy":  4, // a, b, d, e
	} {
		name, kv, _ := strings.Cut(labels, "/")
		k, v, _ := strings.Cut(kv, "=")
		if got, ok := Lookup(r.Gatherer(), name, map[string]string{k: v}); !ok || got != want {
			t.Errorf("%s{%s} = %v (present %v), want %v", name, kv, got, ok, want)
		}
	}
}

func TestACMEEndpoint(t *testing.T) {
	for path, want := range map[string]string{
		// Let's Encrypt (boulder)
		"/directory": "directory", "/acme/new-nonce": "newNonce", "/acme/new-acct": "newAccount",
		"/acme/acct/123": "account", "/acme/new-order": "newOrder", "/acme/order/1/2": "order",
		"/acme/authz/1/2": "authz", "/acme/chall/1/2/x": "challenge", "/acme/finalize/1/2": "finalize",
		"/acme/cert/abc": "certificate", "/acme/revoke-cert": "revokeCert", "/acme/key-change": "keyChange",
		"/acme/renewal-info/xyz": "renewalInfo",
		// Pebble
		"/dir": "directory", "/nonce-plz": "newNonce", "/sign-me-up": "newAccount", "/my-account/1": "account",
		"/order-plz": "newOrder", "/my-order/x": "order", "/finalize-order/x": "finalize", "/authZ/x": "authz",
		"/chalZ/x": "challenge", "/certZ/x": "certificate", "/rollover-account-key": "keyChange",
		"/draft-ietf-acme-ari-03/renewalInfo/x": "renewalInfo",
		"/something/else":                       "other",
	} {
		if got := ACMEEndpoint(path); got != want {
			t.Errorf("ACMEEndpoint(%q) = %q, want %q", path, got, want)
		}
	}
}

// BenchmarkObserve is what the request path pays for metrics: the clock
// read before and after, and one observation (BENCHMARKS.md, "Metrics").
func BenchmarkObserve(b *testing.B) {
	s := New(Sources{}).Service("p", "web")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			s.Observe(200, 1, 1, time.Since(start))
		}
	})
}

// TestServiceSeriesBound: at most MaxSeries services keep request series;
// making one more drops the least recently used (counted), whose recorder
// is then gone, and which gets a new one, counting from zero, when it
// answers again.
func TestServiceSeriesBound(t *testing.T) {
	r := New(Sources{MaxSeries: 3})
	// "Recently" is since the last recorder was made: b answered before c
	// was made, a and c after.
	a := r.Service("p", "a")
	a.Observe(200, 1, 1, time.Millisecond)
	b := r.Service("p", "b")
	b.Observe(200, 1, 1, time.Millisecond)
	b.Observe(404, 1, 1, time.Millisecond)
	b.Observe(299, 2, 0, time.Millisecond)
	c := r.Service("p", "c")
	c.Observe(200, 1, 1, time.Millisecond)
	a.Observe(200, 1, 1, time.Millisecond)
	d := r.Service("p", "d")
	d.Observe(200, 1, 1, time.Millisecond)
	services := func() []string {
		var out []string
		mfs, _ := r.Gatherer().Gather()
		for _, mf := range mfs {
			if mf.GetName() != "spine_http_requests_total" && mf.GetName() != "spine_http_request_duration_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "service" && !slices.Contains(out, l.GetValue()) {
						out = append(out, l.GetValue())
					}
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if got := services(); !slices.Equal(got, []string{"p/a", "p/c", "p/d"}) {
		t.Errorf("services with series %v, want [p/a p/c p/d] (p/b least recently used)", got)
	}
	dropped := func() float64 { v, _ := Lookup(r.Gatherer(), "spine_metrics_services_dropped_total", nil); return v }
	if !b.Gone() || a.Gone() || dropped() != 1 {
		t.Errorf("b gone %v, a gone %v, spine_metrics_services_dropped_total %v; want true, false, 1", b.Gone(), a.Gone(), dropped())
	}
	b.Observe(200, 1, 1, time.Millisecond) // the dropped recorder: counted nowhere
	if got := services(); slices.Contains(got, "p/b") {
		t.Errorf("a request on b's dropped recorder brought its series back: %v", got)
	}
	r.Service("p", "b").Observe(200, 1, 1, time.Millisecond) // b again: a new recorder, another dropped
	if v, ok := Lookup(r.Gatherer(), "spine_http_requests_total", map[string]string{"service": "p/b", "code": "200", "proto": "1.1"}); !ok || v != 1 {
		t.Errorf("b's requests after it came back = %v (present %v), want 1", v, ok)
	}
	if got := services(); len(got) != 3 || dropped() != 2 {
		t.Errorf("services with series %v, %v dropped; want 3 and 2", got, dropped())
	}
}

// BenchmarkServiceSeriesMemory: the memory that services with request
// series keep, per service that answered one request, for 20,000 services
// (the bound at its default, 10,000, and without it in effect).
func BenchmarkServiceSeriesMemory(b *testing.B) {
	for _, bound := range []int{DefaultMaxSeries, 1 << 30} {
		b.Run(fmt.Sprint(bound), func(b *testing.B) {
			for b.Loop() {
				var m0, m1 runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&m0)
				r := New(Sources{MaxSeries: bound})
				const n = 20_000
				for i := range n {
					r.Service("p", fmt.Sprintf("s%07d", i)).Observe(200, 1, 1, time.Millisecond)
				}
				runtime.GC()
				runtime.ReadMemStats(&m1)
				runtime.KeepAlive(r)
				b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/n, "B/service")
			}
		})
	}
}
