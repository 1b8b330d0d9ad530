package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/poll"
)

// TestPrometheusScrapesNode starts Debian's prometheus against a running
// node, as the README's scrape configuration has it, with docs/alerts.yml
// as its rules, and reads back through Prometheus's HTTP API
// (/api/v1/query) the expiry of a hostname's certificate and the requests
// sent to its service; it also checks that Prometheus loaded every alert
// rule.
func TestPrometheusScrapesNode(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (apt-get install prometheus; .ci/run does this)")
	}
	dir := t.TempDir()
	n := startNode(t, dir, "")
	c := adminClient(t, n, dir)
	ctx := context.Background()
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "api", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	var notAfter int64
	for range 3 {
		poll.Until(t, "api.localhost over HTTPS", waitTimeout, func() error {
			resp, _, err := httpsGet(t, n, "api.localhost", "/")
			if err != nil {
				return err
			}
			notAfter = resp.TLS.PeerCertificates[0].NotAfter.Unix()
			return nil
		})
	}

	rules, err := filepath.Abs("../../docs/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	promAddr := freeAddrs(t, 1)[0]
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: spine
    static_configs:
      - targets: [%q]
`, rules, n.APIAddr())
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(pctx, bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus's log:\n%s", logs.String())
		}
	})

	query := func(q string) (float64, error) {
		qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
		defer qcancel()
		req, _ := http.NewRequestWithContext(qctx, "GET", "http://"+promAddr+"/api/v1/query?query="+url.QueryEscape(q), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Metric map[string]string
					Value  [2]any
				}
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return 0, err
		}
		if r.Status != "success" || len(r.Data.Result) != 1 {
			return 0, fmt.Errorf("%s: %+v", q, r)
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	poll.Until(t, "the certificate's expiry through Prometheus", waitTimeout, func() error {
		v, err := query(`spine_certificate_not_after_timestamp_seconds{job="spine",hostname="api.localhost",project="default",service="api"}`)
		if err != nil {
			return err
		}
		if int64(v) != notAfter {
			return fmt.Errorf("not_after %v, want %d", v, notAfter)
		}
		return nil
	})
	poll.Until(t, "the service's requests through Prometheus", waitTimeout, func() error {
		v, err := query(`sum(spine_http_requests_total{job="spine",service="default/api",code="200"})`)
		if err != nil {
			return err
		}
		if v != 3 {
			return fmt.Errorf("requests %v, want 3", v)
		}
		return nil
	})
	for q, want := range map[string]float64{
		`spine_certificate_ready{hostname="api.localhost"}`: 1,
		`up{job="spine"}`: 1,
		`spine_store_up`:  1,
	} {
		if v, err := query(q); err != nil || v != want {
			t.Errorf("%s = %v (%v), want %v", q, v, err, want)
		}
	}
	// Every rule of docs/alerts.yml loaded, and none fires for a healthy node.
	resp, err := http.Get("http://" + promAddr + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rs struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, State, Health string
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, g := range rs.Data.Groups {
		for _, r := range g.Rules {
			loaded++
			if r.Health == "err" || r.State == "firing" {
				t.Errorf("rule %s: health %s, state %s", r.Name, r.Health, r.State)
			}
		}
	}
	if want := strings.Count(mustRead(t, rules), "- alert:"); loaded != want {
		t.Errorf("Prometheus loaded %d rules of docs/alerts.yml, want %d", loaded, want)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lockedBuffer is an io.Writer a child process's output may be written to
// while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
