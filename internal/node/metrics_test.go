package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/poll"
)

// scrape reads GET /metrics from addr (no token) and returns each series
// line's value by its name and labels, as written
// (`name{a="x",b="y"}`; client_golang sorts labels by name).
func scrape(t testing.TB, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("series line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// withPrefix returns the series of m whose name and labels start with p.
func withPrefix(m map[string]float64, p string) []string {
	var out []string
	for k := range m {
		if strings.HasPrefix(k, p) {
			out = append(out, k)
		}
	}
	return out
}

// TestMetricsInternalCA reads a node's /metrics after a certificate from
// the internal CA and real requests: the hostname's certificate series, the
// obtain counter, the service's requests and upstream, handshakes, the
// store, the revision and the fleet; then the service goes and its series
// with it.
func TestMetricsInternalCA(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	c := adminClient(t, n, dir)
	ctx := context.Background()
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "api", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	var notAfter int64
	poll.Until(t, "api.localhost over HTTPS", waitTimeout, func() error {
		resp, _, err := httpsGet(t, n, "api.localhost", "/")
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		notAfter = resp.TLS.PeerCertificates[0].NotAfter.Unix()
		return nil
	})
	if _, _, err := httpsGet(t, n, "api.localhost", "/"); err != nil {
		t.Fatal(err)
	}
	issuer := n.CA().Root().Subject.CommonName // the leaf's issuer is the intermediate
	var m map[string]float64
	poll.Until(t, "the certificate's series", waitTimeout, func() error {
		m = scrape(t, n.APIAddr())
		if m[`spine_certificate_ready{hostname="api.localhost",project="default",service="api"}`] != 1 {
			return fmt.Errorf("not ready: %v", withPrefix(m, "spine_certificate_ready"))
		}
		return nil
	})
	na := withPrefix(m, `spine_certificate_not_after_timestamp_seconds{hostname="api.localhost",`)
	if len(na) != 1 || m[na[0]] != float64(notAfter) || !strings.Contains(na[0], `issuer="`) || !strings.Contains(na[0], `project="default",service="api"`) {
		t.Errorf("not_after series %v = %v, want the leaf's %d (CA %q)", na, m, notAfter, issuer)
	}
	for series, min := range map[string]float64{
		`spine_certificate_obtain_total{issuer="spine-internal",kind="new",result="success"}`: 2, // hello.localhost (demo) and api.localhost
		`spine_http_requests_total{code="200",proto="1.1",service="default/api"}`:             2,
		`spine_http_request_duration_seconds_count{service="default/api"}`:                    2,
		`spine_upstream_healthy{service="default/api",upstream="` + up + `"}`:                 1,
		`spine_store_up`:        1,
		`spine_config_revision`: 1,
		`spine_fleet_nodes`:     1,
		`spine_tls_handshakes_total{group="X25519MLKEM768",result="success",resumed="false",version="TLS 1.3"}`: 2,
		`go_goroutines`:              1,
		`process_start_time_seconds`: 1,
	} {
		if v, ok := m[series]; !ok || v < min {
			t.Errorf("%s = %v (present %v), want at least %v; %v", series, v, ok, min, withPrefix(m, strings.SplitN(series, "{", 2)[0]))
		}
	}
	for _, name := range []string{"spine_event_streams", "spine_webhook_attempts_total", "spine_certificate_events_dropped_total"} {
		if _, ok := m[name]; !ok {
			t.Errorf("no %s", name)
		}
	}

	// The service goes: its hostname's and its own series go with it.
	if err := c.DeleteService(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the service's series to go", waitTimeout, func() error {
		m := scrape(t, n.APIAddr())
		var left []string
		for _, p := range []string{`spine_certificate_`, `spine_http_request`, `spine_upstream_healthy`} {
			for _, s := range withPrefix(m, p) {
				if strings.Contains(s, "api.localhost") || strings.Contains(s, "default/api") {
					left = append(left, s)
				}
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("left: %v", left)
		}
		return nil
	})
	// The demo's hostname keeps its own.
	if m := scrape(t, n.APIAddr()); m[`spine_certificate_ready{hostname="hello.localhost",project="default",service="hello"}`] != 1 {
		t.Errorf("hello.localhost lost its series: %v", withPrefix(m, "spine_certificate_ready"))
	}
}

// TestMetricsOffAndOwnListener: --metrics off serves none, an address
// serves them there and not on the API.
func TestMetricsOffAndOwnListener(t *testing.T) {
	for _, tc := range []struct{ metrics string }{{config.MetricsOff}, {"127.0.0.1:0"}} {
		t.Run(tc.metrics, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			n, err := Start(ctx, config.Config{DataDir: t.TempDir(), Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
				Metrics: tc.metrics, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close(context.Background())
			resp, err := http.Get("http://" + n.APIAddr() + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 404 || !strings.Contains(string(b), "metrics_off") {
				t.Errorf("API /metrics: %d %s, want 404 metrics_off", resp.StatusCode, b)
			}
			if tc.metrics == config.MetricsOff {
				if n.metricsAt.Addr() != "" {
					t.Error("a metrics listener with metrics off")
				}
				return
			}
			if m := scrape(t, n.metricsAt.Addr()); m["spine_store_up"] != 1 {
				t.Errorf("own listener: spine_store_up = %v", m["spine_store_up"])
			}
		})
	}
}

// TestMetricsACME reads the ACME series after a certificate from Pebble:
// the orders and requests to the CA, and the certificate's expiry with
// Pebble's issuer.
func TestMetricsACME(t *testing.T) {
	s := newACMESetup(t, 0, nil)
	ctx := context.Background()
	s.addVerified(t, s.admin, "example.test")
	if _, err := s.admin.CreateService(ctx, client.ServiceCreate{Name: "www", Domain: "example.test", Upstreams: []string{s.upstream}}); err != nil {
		t.Fatal(err)
	}
	leaf := s.waitServed(t, "www.example.test")
	ca := (&certs.ACMEIssuer{CA: s.pebble.DirectoryURL()}).IssuerKey()
	var m map[string]float64
	poll.Until(t, "the certificate's series", waitTimeout, func() error {
		m = scrape(t, s.n.APIAddr())
		key := `spine_certificate_not_after_timestamp_seconds{hostname="www.example.test",issuer="` + leaf.Issuer.CommonName + `",project="default",service="www"}`
		if m[key] != float64(leaf.NotAfter.Unix()) {
			return fmt.Errorf("%s = %v; have %v", key, m[key], withPrefix(m, "spine_certificate_not_after"))
		}
		return nil
	})
	for series, min := range map[string]float64{
		`spine_certificate_obtain_total{issuer="` + ca + `",kind="new",result="success"}`:      1,
		`spine_acme_requests_total{ca="` + ca + `",endpoint="newOrder",status="201"}`:          1,
		`spine_acme_requests_total{ca="` + ca + `",endpoint="finalize",status="200"}`:          1,
		`spine_acme_requests_total{ca="` + ca + `",endpoint="directory",status="200"}`:         1,
		`spine_acme_request_duration_seconds_count{ca="` + ca + `",endpoint="newOrder"}`:       1,
		`spine_certificate_ready{hostname="www.example.test",project="default",service="www"}`: 1,
	} {
		if v, ok := m[series]; !ok || v < min {
			t.Errorf("%s = %v (present %v), want at least %v; ACME series: %v", series, v, ok, min, withPrefix(m, "spine_acme_requests_total"))
		}
	}
	for _, s := range withPrefix(m, "spine_acme_requests_total") {
		if strings.Contains(s, `endpoint="other"`) {
			t.Errorf("a request to Pebble not placed: %s", s)
		}
	}
}
