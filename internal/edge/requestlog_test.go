package edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/accesslog"
	"github.com/spine-platform/spine/internal/logging"
	"github.com/spine-platform/spine/internal/poll"
)

// lineBuffer collects the access log's output.
type lineBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes every JSON line so far.
func (b *lineBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	b.mu.Lock()
	text := b.buf.String()
	b.mu.Unlock()
	var out []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(text), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access log line is not JSON: %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLoggedEdge starts an edge whose access log writes JSON lines to the
// returned buffer.
func startLoggedEdge(t *testing.T, cfg Config, routes ...Route) (*harness, *lineBuffer, *accesslog.Log) {
	t.Helper()
	out := new(lineBuffer)
	al := accesslog.New(out, accesslog.Config{Format: logging.JSON, Logger: testLogger(t)})
	t.Cleanup(func() { al.Close() })
	cfg.AccessLog = al.Log
	return startEdge(t, cfg, routes...), out, al
}

// lineWithID waits for the access log line of request id.
func lineWithID(t *testing.T, out *lineBuffer, id string) map[string]any {
	t.Helper()
	var found map[string]any
	poll.Until(t, "the access log line of "+id, waitTimeout, poll.True(func() bool {
		for _, l := range out.lines(t) {
			if l["request_id"] == id {
				found = l
				return true
			}
		}
		return false
	}))
	return found
}

// TestAccessLogFields sends requests over TLS through the edge to an
// upstream, over HTTP/1.1 and HTTP/2, one with a body through ReverseProxy
// and one without (the direct path), and checks every field of each line.
func TestAccessLogFields(t *testing.T) {
	var mu sync.Mutex
	gotIDs := map[string]bool{} // X-Request-ID values the upstream received
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotIDs[r.Header.Get("X-Request-ID")] = true
		mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Request-ID", "the-upstream-own-id") // replaced by the edge's
		io.WriteString(w, "hello")
	}))
	t.Cleanup(up.Close)
	h, out, al := startLoggedEdge(t, Config{}, Route{Host: "app.test", Project: "acme", Service: "web", Upstreams: []string{up.URL}})

	for _, h2 := range []bool{false, true} {
		for _, post := range []bool{false, true} {
			t.Run(fmt.Sprintf("h2=%v,post=%v", h2, post), func(t *testing.T) {
				var local string
				tr := &http.Transport{
					DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
						c, err := (&net.Dialer{}).DialContext(ctx, "tcp", h.tlsAddr)
						if err == nil {
							local = c.LocalAddr().String()
						}
						return c, err
					},
					TLSClientConfig:   &tls.Config{RootCAs: h.pki.pool, ClientSessionCache: tls.NewLRUClientSessionCache(4)},
					ForceAttemptHTTP2: h2,
				}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
				for _, resumed := range []bool{false, true} {
					id := fmt.Sprintf("client-id:%v-%v-%v", h2, post, resumed)
					method, body := http.MethodGet, ""
					if post {
						method, body = http.MethodPost, "abcdef"
					}
					req, _ := http.NewRequest(method, "https://app.test/a/b%20c?token=s3cret&page=2", strings.NewReader(body))
					if !post {
						req.Body = nil
					}
					req.Header.Set("X-Request-ID", id)
					req.Header.Set("User-Agent", "logtest/1")
					before := time.Now()
					resp, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					after := time.Now()
					if resp.StatusCode != 200 || string(b) != "hello" {
						t.Fatalf("%d %q", resp.StatusCode, b)
					}
					if got := resp.Header.Values("X-Request-ID"); len(got) != 1 || got[0] != id {
						t.Errorf("answer's X-Request-ID %q, want [%q]", got, id)
					}
					mu.Lock()
					if !gotIDs[id] {
						t.Errorf("upstream did not get X-Request-ID %q", id)
					}
					mu.Unlock()
					tr.CloseIdleConnections() // the second round resumes the session

					l := lineWithID(t, out, id)
					ts, err := time.Parse(time.RFC3339Nano, l["time"].(string))
					if err != nil || ts.Before(before.Add(-time.Millisecond)) || ts.After(after) {
						t.Errorf("time %v (%v), want between %v and %v", l["time"], err, before, after)
					}
					proto := "HTTP/1.1"
					if h2 {
						proto = "HTTP/2.0"
					}
					want := map[string]any{
						"level": "INFO", "msg": "access", "request_id": id,
						"host": "app.test", "project": "acme", "service": "web",
						"method": method, "path": "/a/b%20c", "query": "token&page", "proto": proto,
						"status": 200.0, "bytes_in": float64(len(body)), "bytes_out": 5.0,
						"upstream": up.URL, "client": local,
						"tls_version": "TLS 1.3", "tls_group": tls.X25519MLKEM768.String(), "tls_resumed": resumed,
						"user_agent": "logtest/1",
					}
					for k, v := range want {
						if l[k] != v {
							t.Errorf("%s = %#v, want %#v", k, l[k], v)
						}
					}
					d, ud := l["duration_us"].(float64), l["upstream_duration_us"].(float64)
					if ud < 0 || d < ud || d > float64(after.Sub(before).Microseconds()) {
						t.Errorf("duration_us %v, upstream_duration_us %v: want 0 ≤ upstream ≤ duration ≤ %v", d, ud, after.Sub(before))
					}
					for k := range l {
						if _, ok := want[k]; !ok && k != "time" && k != "duration_us" && k != "upstream_duration_us" {
							t.Errorf("unexpected field %s = %v", k, l[k])
						}
					}
				}
			})
		}
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Error("a query value reached the access log")
	}
	if s := al.Stats(); s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestRequestIDOnEdgeAnswers checks that the answers the edge makes itself
// carry a new X-Request-ID, logged with their status: 404, 421, 502, 503,
// 413, and the plain-HTTP listener's redirect and 404.
func TestRequestIDOnEdgeAnswers(t *testing.T) {
	a := namedUpstream(t, "upstream-a")
	h, out, _ := startLoggedEdge(t, Config{MaxBodyBytes: 4},
		Route{Host: "a.test", Project: "p", Service: "a", Upstreams: []string{a.URL}},
		Route{Host: "b.test", Project: "p", Service: "b", Upstreams: []string{a.URL}},
		Route{Host: "dead.test", Project: "p", Service: "dead", Upstreams: []string{deadURL(t)}},
		Route{Host: "off.test", Project: "q", Service: "off", Upstreams: []string{a.URL}, Suspended: true},
	)
	for _, h2 := range []bool{false, true} {
		c, plain := h.client(t, h2), h.plainClient(t)
		for _, tc := range []struct {
			name   string
			c      *http.Client
			method string
			url    string
			hdr    http.Header
			body   string
			status int
			host   string
		}{
			{"unknown host", c, "GET", "https://a.test/", http.Header{"Host": {"nowhere.test"}}, "", 404, "nowhere.test"},
			{"misdirected", c, "GET", "https://a.test/", http.Header{"Host": {"b.test"}}, "", 421, "b.test"},
			{"bad gateway", c, "GET", "https://dead.test/", nil, "", 502, "dead.test"},
			{"suspended", c, "GET", "https://off.test/", nil, "", 503, "off.test"},
			{"too large", c, "POST", "https://a.test/", nil, "too large", 413, "a.test"},
			{"redirect", plain, "GET", "http://a.test/x?y=1", nil, "", 308, "a.test"},
			{"plain unknown", plain, "GET", "http://nowhere.test/", nil, "", 404, "nowhere.test"},
		} {
			req, _ := http.NewRequest(tc.method, tc.url, strings.NewReader(tc.body))
			if tc.body == "" {
				req.Body = nil
			}
			if host := tc.hdr.Get("Host"); host != "" {
				req.Host = host
			}
			resp, err := tc.c.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			id := resp.Header.Get("X-Request-ID")
			if resp.StatusCode != tc.status || len(id) != 32 || !accesslog.ValidRequestID(id) {
				t.Errorf("h2=%v %s: %d with X-Request-ID %q, want %d and a new ID", h2, tc.name, resp.StatusCode, id, tc.status)
				continue
			}
			l := lineWithID(t, out, id)
			if l["status"] != float64(tc.status) || l["host"] != tc.host {
				t.Errorf("h2=%v %s: logged %v", h2, tc.name, l)
			}
			if tc.status == 502 && l["upstream"] == nil {
				t.Errorf("h2=%v %s: no upstream logged: %v", h2, tc.name, l)
			}
		}
	}
}

// TestRequestIDHostile sends X-Request-ID values that must not be kept:
// each is replaced by a new ID, in the answer, upstream and in the log,
// and never reaches the log line.
func TestRequestIDHostile(t *testing.T) {
	var mu sync.Mutex
	var upstreamGot []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamGot = append(upstreamGot, strings.Join(r.Header.Values("X-Request-ID"), "|"))
		mu.Unlock()
	}))
	t.Cleanup(up.Close)
	h, out, _ := startLoggedEdge(t, Config{}, Route{Host: "a.test", Service: "a", Upstreams: []string{up.URL}})
	hostile := map[string][]string{
		"too long":             {strings.Repeat("a", accesslog.MaxRequestIDLen+1)},
		"empty":                {""},
		"space":                {"a b"},
		"tab":                  {"a\tb"},
		"quote and brace":      {`x","status":200,"y":"`},
		"non-ASCII":            {"idé"},
		"percent-encoded CRLF": {"abc%0d%0aX-Injected:%201"},
		"two values":           {"first-id", "second-id"},
		"newline escape":       {`a\nb`},
	}
	for _, h2 := range []bool{false, true} {
		c := h.client(t, h2)
		for name, vals := range hostile {
			resp, _ := do(t, c, "GET", "https://a.test/", http.Header{"X-Request-Id": vals})
			id := resp.Header.Get("X-Request-ID")
			if resp.StatusCode != 200 || len(id) != 32 || !accesslog.ValidRequestID(id) || len(resp.Header.Values("X-Request-ID")) != 1 {
				t.Errorf("h2=%v %s: %d, X-Request-ID %q; want 200 and one new ID", h2, name, resp.StatusCode, resp.Header.Values("X-Request-ID"))
				continue
			}
			mu.Lock()
			last := upstreamGot[len(upstreamGot)-1]
			mu.Unlock()
			if last != id {
				t.Errorf("h2=%v %s: upstream got %q, want %q", h2, name, last, id)
			}
			lineWithID(t, out, id)
		}
	}
	// A control character or a bare CR in a field never reaches the edge:
	// net/http refuses the request (400).
	for _, raw := range []string{"abc\x01def", "abc\rX-Injected: 1"} {
		conn, err := h.dialTLS("a.test", "http/1.1")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: a.test\r\nX-Request-ID: %s\r\nConnection: close\r\n\r\n", raw)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 400 && resp.Header.Get("X-Request-ID") == raw {
			t.Errorf("%q kept: %d", raw, resp.StatusCode)
		}
	}
	text := out.String()
	for name, vals := range hostile {
		for _, v := range vals {
			if v != "" && strings.Contains(text, `"request_id":"`+v) {
				t.Errorf("%s: %q logged as the request ID", name, v)
			}
		}
	}
	for _, bad := range []string{"X-Injected", "abc\x01", "idé"} {
		if strings.Contains(text, bad) {
			t.Errorf("%q in the access log", bad)
		}
	}
}

// TestAccessLogSlowWriter writes the access log into a pipe nobody reads:
// the requests are answered all the same, and the lines that do not fit
// the queue are dropped and counted.
func TestAccessLogSlowWriter(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	// A one-page pipe fills after a few lines.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, pw.Fd(), syscall.F_SETPIPE_SZ, 4096); errno != 0 {
		t.Logf("F_SETPIPE_SZ: %v (the pipe keeps its default size)", errno)
	}
	al := accesslog.New(pw, accesslog.Config{Format: logging.JSON, Buffer: 8, Logger: testLogger(t)})
	up := namedUpstream(t, "ok")
	h := startEdge(t, Config{AccessLog: al.Log}, Route{Host: "a.test", Service: "a", Upstreams: []string{up.URL}})
	c := h.client(t, true)
	const n = 400 // more lines than a 64 KiB pipe, should F_SETPIPE_SZ fail, and the queue hold
	for i := range n {
		resp, body := do(t, c, "GET", "https://a.test/", nil)
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if s := al.Stats(); s.Dropped == 0 {
		t.Errorf("no line dropped with the writer blocked: %+v", s)
	}
	// Unblock the writer: every line was written or dropped.
	go io.Copy(io.Discard, pr)
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if s := al.Stats(); s.Lines+s.Dropped != n || s.Failed != 0 {
		t.Errorf("stats %+v: want lines+dropped = %d", s, n)
	}
}
