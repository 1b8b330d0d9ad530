package edge

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
)

func TestHTTPSServesUpstreamWithRightCertificate(t *testing.T) {
	a, b := namedUpstream(t, "upstream-a"), namedUpstream(t, "upstream-b")
	h := startEdge(t, Config{},
		Route{Host: "a.test", Project: "p", Service: "a", Upstreams: []string{a.URL}},
		Route{Host: "b.test", Project: "p", Service: "b", Upstreams: []string{b.URL}},
	)
	c := h.client(t, false)
	for _, tc := range []struct{ host, want string }{{"a.test", "upstream-a"}, {"b.test", "upstream-b"}} {
		t.Run(tc.host, func(t *testing.T) {
			resp, body := do(t, c, "GET", "https://"+tc.host+"/x", nil)
			if resp.StatusCode != 200 || body != tc.want {
				t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, tc.want)
			}
			leaf := resp.TLS.PeerCertificates[0]
			if !slices.Equal(leaf.DNSNames, []string{tc.host}) {
				t.Errorf("certificate names %v, want [%s]", leaf.DNSNames, tc.host)
			}
			if len(resp.TLS.VerifiedChains) == 0 || resp.TLS.VerifiedChains[0][len(resp.TLS.VerifiedChains[0])-1].Subject.CommonName != "Edge Test CA" {
				t.Errorf("chain not verified up to the test CA: %v", resp.TLS.VerifiedChains)
			}
		})
	}
}

func TestHTTPListener(t *testing.T) {
	up := namedUpstream(t, "up")
	routes := []Route{{Host: "a.test", Service: "a", Upstreams: []string{up.URL}}}
	challenge := func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			return false
		}
		io.WriteString(w, "key-authorization")
		return true
	}
	for _, tc := range []struct {
		name      string
		port      int
		host, uri string
		status    int
		location  string
		body      string
	}{
		{"redirect with port", 8443, "a.test", "/p/q?x=1&y=%20", 308, "https://a.test:8443/p/q?x=1&y=%20", ""},
		{"redirect default port", 0, "a.test", "/p?x", 308, "https://a.test/p?x", ""},
		{"redirect 443 omitted", 443, "A.Test:80", "/", 308, "https://a.test/", ""},
		{"unknown host", 8443, "nope.test", "/", 404, "", "nope.test is not served by Spine"},
		{"challenge first", 8443, "nope.test", "/.well-known/acme-challenge/tok", 200, "", "key-authorization"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startEdge(t, Config{HTTPSPort: tc.port, HTTPChallenge: challenge}, routes...)
			resp, body := do(t, h.plainClient(t), "GET", "http://"+tc.host+tc.uri, http.Header{"Host": {tc.host}})
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if !strings.Contains(body, tc.body) {
				t.Errorf("body %q does not contain %q", body, tc.body)
			}
			if hsts := resp.Header.Get("Strict-Transport-Security"); hsts != "" {
				t.Errorf("HSTS %q on plain HTTP", hsts)
			}
		})
	}
}

func TestHSTS(t *testing.T) {
	up := namedUpstream(t, "up")
	dead := deadURL(t)
	h := startEdge(t, Config{},
		Route{Host: "hsts.test", Service: "s", Upstreams: []string{up.URL}, HSTSMaxAge: 31536000},
		Route{Host: "nohsts.test", Service: "s", Upstreams: []string{up.URL}},
		Route{Host: "down.test", Service: "s", Upstreams: []string{dead}, HSTSMaxAge: 60},
	)
	c := h.client(t, false)
	for _, tc := range []struct{ host, want string }{
		{"hsts.test", "max-age=31536000"},
		{"nohsts.test", ""},
		{"down.test", "max-age=60"}, // the edge's own error pages carry it too
	} {
		resp, _ := do(t, c, "GET", "https://"+tc.host+"/", nil)
		if got := resp.Header.Values("Strict-Transport-Security"); strings.Join(got, ",") != tc.want {
			t.Errorf("%s: Strict-Transport-Security %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestTLSRefusesUnknownNames(t *testing.T) {
	up := namedUpstream(t, "up")
	h := startEdge(t, Config{}, Route{Host: "a.test", Service: "a", Upstreams: []string{up.URL}})
	for _, name := range []string{"unknown.test", ""} {
		t.Run("sni="+name, func(t *testing.T) {
			// Skip verification so that the client completes its side and
			// any refusal is the server's.
			conn, err := tls.Dial("tcp", h.tlsAddr, &tls.Config{ServerName: name, InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
			if err == nil {
				conn.Close()
				t.Fatalf("handshake for %q succeeded, want an alert", name)
			}
			if !strings.Contains(err.Error(), "unrecognized name") {
				t.Errorf("error %v, want an unrecognized name alert", err)
			}
			if name != "" && h.pki.wasAsked(name) {
				t.Errorf("certificate source was asked for %q", name)
			}
		})
	}
	// Mixed case and a trailing dot are the same name.
	conn, err := h.dialTLS("A.Test.", "http/1.1")
	if err != nil {
		t.Fatalf("handshake for A.Test.: %v", err)
	}
	conn.Close()
}

func TestTLSALPNChallengeReachesCertificateSource(t *testing.T) {
	h := startEdge(t, Config{})
	conn, err := h.dialTLS("pending.test", acmeTLSProto)
	if err != nil {
		t.Fatalf("acme-tls/1 handshake: %v", err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != acmeTLSProto {
		t.Errorf("negotiated %q, want %q", p, acmeTLSProto)
	}
	if !h.pki.wasAsked("pending.test") {
		t.Error("certificate source was not asked for the challenge")
	}
}

func TestTLSPolicy(t *testing.T) {
	s := New(Config{})
	cfg := s.TLSConfig()
	if cfg.MinVersion != 0x0303 {
		t.Errorf("MinVersion %x, want TLS 1.2", cfg.MinVersion)
	}
	if !slices.Equal(cfg.NextProtos, []string{"h2", "http/1.1", acmeTLSProto}) {
		t.Errorf("NextProtos %v", cfg.NextProtos)
	}
	if cfg.SessionTicketsDisabled {
		t.Error("session tickets disabled")
	}
	h := startEdge(t, Config{}, Route{Host: "a.test", Service: "a", Upstreams: []string{deadURL(t)}})
	conn, err := h.dialTLS("a.test", "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if st.Version != 0x0304 {
		t.Errorf("negotiated version %x, want TLS 1.3", st.Version)
	}
	if st.CurveID.String() != "X25519MLKEM768" {
		t.Errorf("key exchange %v, want X25519MLKEM768", st.CurveID)
	}
}

func TestUnknownHost404(t *testing.T) {
	up := namedUpstream(t, "up")
	h := startEdge(t, Config{}, Route{Host: "a.test", Service: "a", Upstreams: []string{up.URL}})
	c := h.client(t, false)
	for _, tc := range []struct{ accept, ctype, body string }{
		{"", "text/plain; charset=utf-8", "404 Not found\nThe host nope.test is not served by Spine.\n"},
		{"text/html,*/*", "text/html; charset=utf-8", "<p>The host nope.test is not served by Spine.</p>"},
	} {
		resp, body := do(t, c, "GET", "https://a.test/", http.Header{"Host": {"nope.test"}, "Accept": {tc.accept}})
		if resp.StatusCode != 404 {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != tc.ctype {
			t.Errorf("Content-Type %q, want %q", ct, tc.ctype)
		}
		if !strings.Contains(body, tc.body) {
			t.Errorf("body %q, want it to contain %q", body, tc.body)
		}
	}
}

func TestMisdirectedRequest(t *testing.T) {
	a, b := namedUpstream(t, "upstream-a"), namedUpstream(t, "upstream-b")
	h := startEdge(t, Config{},
		Route{Host: "a.test", Service: "a", Upstreams: []string{a.URL}},
		Route{Host: "b.test", Service: "b", Upstreams: []string{b.URL}},
	)
	c := h.client(t, false)
	// The connection is made for a.test (SNI), the request names b.test.
	resp, body := do(t, c, "GET", "https://a.test/", http.Header{"Host": {"b.test"}})
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("status %d (%q), want 421", resp.StatusCode, body)
	}
	if strings.Contains(body, "upstream-b") {
		t.Error("b.test's upstream answered on a.test's connection")
	}
}

// TestMalformedQueryOverHTTP2: HTTP/2 lets a space or a control byte
// through in :path's query, which HTTP/1.1 refuses; the edge answers 400
// instead of writing it into the upstream's request line, on either proxy
// path (a plain upstream: direct; one with a path: ReverseProxy).
func TestMalformedQueryOverHTTP2(t *testing.T) {
	up := namedUpstream(t, "upstream")
	h := startEdge(t, Config{},
		Route{Host: "a.test", Service: "a", Upstreams: []string{up.URL}},
		Route{Host: "b.test", Service: "b", Upstreams: []string{up.URL + "/base"}},
	)
	c := h.client(t, true)
	for _, host := range []string{"a.test", "b.test"} {
		for _, q := range []string{"a=b c", "a= "} {
			req, err := http.NewRequest("GET", "https://"+host+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.RawQuery = q
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s ?%q: %v", host, q, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "holds a space or a control character") {
				t.Errorf("%s ?%q over HTTP/%d: status %d, body %q; want 400 from the edge", host, q, resp.ProtoMajor, resp.StatusCode, body)
			}
		}
		if resp, body := do(t, c, "GET", "https://"+host+"/?a=b%20c", nil); resp.StatusCode != 200 {
			t.Errorf("%s: an escaped space: status %d (%q), want 200", host, resp.StatusCode, body)
		}
	}
}

func TestUpstreamDown502(t *testing.T) {
	h := startEdge(t, Config{}, Route{Host: "a.test", Service: "shop", Upstreams: []string{deadURL(t), deadURL(t)}})
	resp, body := do(t, h.client(t, false), "GET", "https://a.test/", nil)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if want := "The upstream of service shop is not answering."; !strings.Contains(body, want) {
		t.Errorf("body %q, want %q", body, want)
	}
	for _, leak := range []string{"dial", "refused", "127.0.0.1"} {
		if strings.Contains(body, leak) {
			t.Errorf("body %q leaks %q", body, leak)
		}
	}
}

func TestRoundRobin(t *testing.T) {
	a, b := namedUpstream(t, "A"), namedUpstream(t, "B")
	h := startEdge(t, Config{}, Route{Host: "a.test", Service: "a", Upstreams: []string{a.URL, b.URL}})
	c := h.client(t, false)
	var seq []string
	for range 10 {
		resp, body := do(t, c, "GET", "https://a.test/", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		seq = append(seq, body)
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] {
			t.Fatalf("not round robin: %v", seq)
		}
	}
}

func TestPassiveHealthAfterUpstreamDies(t *testing.T) {
	a, b := namedUpstream(t, "A"), namedUpstream(t, "B")
	h := startEdge(t, Config{FailCooldown: time.Hour}, Route{Host: "a.test", Service: "a", Upstreams: []string{a.URL, b.URL}})
	c := h.client(t, false)
	for range 2 { // both upstreams hold a keep-alive connection now
		do(t, c, "GET", "https://a.test/", nil)
	}
	b.Close()
	for i := range 6 {
		resp, body := do(t, c, "GET", "https://a.test/", nil)
		if resp.StatusCode != 200 || body != "A" {
			t.Fatalf("request %d after B died: %d %q, want 200 A", i, resp.StatusCode, body)
		}
	}
	if h.s.upstreamOf(b.URL).available() {
		t.Error("dead upstream still in the rotation")
	}
	if !h.s.upstreamOf(a.URL).available() {
		t.Error("live upstream taken out of the rotation")
	}
}

// flakyUpstream passes health checks but drops every other request's
// connection without answering.
func flakyUpstream(t *testing.T, hits *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		hits.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRetryOnlyIdempotentWithoutBody(t *testing.T) {
	for _, tc := range []struct {
		method, body string
		h2           bool
		want         int
	}{
		{"GET", "", false, 200},
		{"GET", "", true, 200},
		{"DELETE", "", false, 200},
		{"POST", "", false, 502},
		{"PUT", "payload", false, 502},
		{"PUT", "payload", true, 502},
	} {
		t.Run(fmt.Sprintf("%s/h2=%v", tc.method, tc.h2), func(t *testing.T) {
			var flakyHits atomic.Int32
			good := namedUpstream(t, "good")
			flaky := flakyUpstream(t, &flakyHits)
			h := startEdge(t, Config{HealthPath: "/health"}, Route{Host: "a.test", Service: "a", Upstreams: []string{good.URL, flaky.URL}})
			// The counter starts at 0, so the first pick is the second upstream: flaky.
			req, _ := http.NewRequest(tc.method, "https://a.test/", strings.NewReader(tc.body))
			if tc.body == "" {
				req.Body = http.NoBody
			}
			resp, err := h.client(t, tc.h2).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if tc.h2 != (resp.ProtoMajor == 2) {
				t.Fatalf("protocol %s", resp.Proto)
			}
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if flakyHits.Load() == 0 {
				t.Error("the flaky upstream was never tried")
			}
			if h.s.upstreamOf(flaky.URL).available() {
				t.Error("flaky upstream not marked down")
			}
		})
	}
}

func TestRouteSwapKeepsStreams(t *testing.T) {
	const chunks = 10
	release := make(chan struct{})
	stream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := range chunks {
			if i == 1 {
				<-release // hold the stream open across the swap
			}
			fmt.Fprintf(w, "chunk %d\n", i)
			rc.Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	t.Cleanup(stream.Close)
	other := namedUpstream(t, "other")
	h := startEdge(t, Config{}, Route{Host: "s.test", Service: "s", Upstreams: []string{stream.URL}})
	c := h.client(t, false)

	// A raw connection to s.test made before the swap, used after it.
	held, err := h.dialTLS("s.test", "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	resp, err := c.Get("https://s.test/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != "chunk 0\n" {
		t.Fatalf("first chunk %q, %v", line, err)
	}

	// Swap 1: add a service. Swap 2: remove the streaming route altogether.
	if err := h.s.SetRoutes([]Route{
		{Host: "s.test", Service: "s", Upstreams: []string{stream.URL}},
		{Host: "o.test", Service: "o", Upstreams: []string{other.URL}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, body := do(t, h.client(t, false), "GET", "https://o.test/", nil); body != "other" {
		t.Errorf("new host answered %q", body)
	}
	if err := h.s.SetRoutes([]Route{{Host: "o.test", Service: "o", Upstreams: []string{other.URL}}}); err != nil {
		t.Fatal(err)
	}
	close(release)

	for i := 1; i < chunks; i++ {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("chunk %d\n", i) {
			t.Fatalf("chunk %d: %q, %v (stream cut by the swap)", i, line, err)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the last chunk: %v, want EOF", err)
	}

	// The removed host: a new handshake is refused...
	if conn, err := h.dialTLS("s.test", "http/1.1"); err == nil {
		conn.Close()
		t.Error("handshake for a removed host succeeded")
	}
	// ...and a connection opened before gets 404.
	fmt.Fprintf(held, "GET / HTTP/1.1\r\nHost: s.test\r\n\r\n")
	r, err := http.ReadResponse(bufio.NewReader(held), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 404 {
		t.Errorf("removed host on an old connection: %d, want 404", r.StatusCode)
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo
	}))
	t.Cleanup(ws.Close)
	h := startEdge(t, Config{}, Route{Host: "ws.test", Service: "ws", Upstreams: []string{ws.URL}})
	conn, err := h.dialTLS("ws.test", "http/1.1")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /chat HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	for _, msg := range []string{"hello", "again"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
			t.Fatalf("echo %q, %v; want %q", buf, err, msg)
		}
	}
}

func TestForwardedHeaders(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{
			"host":      r.Host,
			"xff":       strings.Join(r.Header.Values("X-Forwarded-For"), ","),
			"xfh":       r.Header.Get("X-Forwarded-Host"),
			"xfp":       r.Header.Get("X-Forwarded-Proto"),
			"forwarded": r.Header.Get("Forwarded"),
			"conn":      r.Header.Get("X-Hop"),
			"path":      r.URL.RequestURI(),
		})
	}))
	t.Cleanup(echo.Close)
	h := startEdge(t, Config{}, Route{Host: "a.test", Service: "a", Upstreams: []string{echo.URL + "/base"}})
	_, body := do(t, h.client(t, false), "GET", "https://a.test/p?q=1", http.Header{
		"X-Forwarded-For":   {"6.6.6.6"},
		"X-Forwarded-Host":  {"evil.test"},
		"X-Forwarded-Proto": {"http"},
		"Forwarded":         {"for=6.6.6.6"},
		"Connection":        {"X-Hop"},
		"X-Hop":             {"hop-by-hop"},
	})
	var got map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%v: %q", err, body)
	}
	want := map[string]string{
		"host":      strings.TrimPrefix(echo.URL, "http://"),
		"xff":       "127.0.0.1",
		"xfh":       "a.test",
		"xfp":       "https",
		"forwarded": "",
		"conn":      "",
		"path":      "/base/p?q=1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("upstream saw %s = %q, want %q", k, got[k], v)
		}
	}
}

func TestHTTP2(t *testing.T) {
	up := namedUpstream(t, "up")
	h := startEdge(t, Config{}, Route{Host: "a.test", Service: "a", Upstreams: []string{up.URL}})
	resp, body := do(t, h.client(t, true), "GET", "https://a.test/", nil)
	if resp.ProtoMajor != 2 || resp.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("protocol %s (ALPN %q), want HTTP/2 over h2", resp.Proto, resp.TLS.NegotiatedProtocol)
	}
	if body != "up" {
		t.Errorf("body %q", body)
	}
}

func TestBodyLimit(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	}))
	t.Cleanup(echo.Close)
	h := startEdge(t, Config{MaxBodyBytes: 10}, Route{Host: "a.test", Service: "a", Upstreams: []string{echo.URL}})
	c := h.client(t, false)
	for _, tc := range []struct {
		name    string
		body    string
		chunked bool
		want    int
	}{
		{"within", "0123456789", false, 200},
		{"within chunked", "0123456789", true, 200},
		{"declared too large", strings.Repeat("x", 11), false, 413},
		{"streamed too large", strings.Repeat("x", 100<<10), true, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: chunked encoding
			}
			req, _ := http.NewRequest("POST", "https://a.test/", body)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, got, tc.want)
			}
			if tc.want == 200 && string(got) != tc.body {
				t.Errorf("echo %q", got)
			}
		})
	}
	if !h.s.upstreamOf(echo.URL).available() {
		t.Error("an oversized upload took the upstream out of the rotation")
	}
}

func TestSetRoutesValidation(t *testing.T) {
	s := New(Config{Logger: testLogger(t), HealthInterval: time.Hour})
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	good := Route{Host: "ok.test", Upstreams: []string{"http://127.0.0.1:1"}}
	if err := s.SetRoutes([]Route{good}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		r    Route
	}{
		{"upper case", Route{Host: "A.test", Upstreams: good.Upstreams}},
		{"port", Route{Host: "a.test:443", Upstreams: good.Upstreams}},
		{"trailing dot", Route{Host: "a.test.", Upstreams: good.Upstreams}},
		{"empty label", Route{Host: "a..test", Upstreams: good.Upstreams}},
		{"empty", Route{Host: "", Upstreams: good.Upstreams}},
		{"unicode", Route{Host: "é.test", Upstreams: good.Upstreams}},
		{"no upstream", Route{Host: "a.test"}},
		{"ftp upstream", Route{Host: "a.test", Upstreams: []string{"ftp://x"}}},
		{"relative upstream", Route{Host: "a.test", Upstreams: []string{"/x"}}},
		{"upstream without host", Route{Host: "a.test", Upstreams: []string{"http://"}}},
		{"upstream with query", Route{Host: "a.test", Upstreams: []string{"http://x/?a=b"}}},
		{"negative hsts", Route{Host: "a.test", Upstreams: good.Upstreams, HSTSMaxAge: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.SetRoutes([]Route{{Host: "new.test", Upstreams: good.Upstreams}, tc.r})
			if !errors.Is(err, ErrInvalidRoute) {
				t.Fatalf("SetRoutes: %v, want ErrInvalidRoute", err)
			}
			if !s.Has("ok.test") || s.Has("new.test") {
				t.Error("a rejected table was partly applied")
			}
		})
	}
	if err := s.SetRoutes([]Route{good, good}); !errors.Is(err, ErrInvalidRoute) {
		t.Errorf("duplicate host: %v, want ErrInvalidRoute", err)
	}
}

func TestHasNormalises(t *testing.T) {
	s := New(Config{Logger: testLogger(t), HealthInterval: time.Hour})
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	if err := s.SetRoutes([]Route{{Host: "a.example.com", Upstreams: []string{"http://127.0.0.1:1"}}}); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{
		"a.example.com":       true,
		"A.Example.COM":       true,
		"a.example.com:8443":  true,
		"a.example.com.":      true,
		"A.EXAMPLE.COM.:443":  true,
		"b.example.com":       false,
		"example.com":         false,
		"a.example.com..":     false,
		"[::1]:443":           false,
		"":                    false,
		"a.example.com.extra": false,
	} {
		if got := s.Has(host); got != want {
			t.Errorf("Has(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestUpstreamsKeptAcrossSwapsAndStoppedWhenUnused(t *testing.T) {
	var checks atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			checks.Add(1)
		}
	}))
	t.Cleanup(up.Close)
	other := namedUpstream(t, "other")
	s := New(Config{Logger: testLogger(t), HealthPath: "health", HealthInterval: 20 * time.Millisecond})
	t.Cleanup(func() { s.Shutdown(t.Context()) })

	if err := s.SetRoutes([]Route{{Host: "a.test", Upstreams: []string{up.URL}}}); err != nil {
		t.Fatal(err)
	}
	first := s.upstreamOf(up.URL)
	first.markDown(time.Hour)
	if err := s.SetRoutes([]Route{
		{Host: "a.test", Upstreams: []string{up.URL + "/"}}, // same upstream, other spelling
		{Host: "b.test", Upstreams: []string{up.URL, other.URL}},
	}); err != nil {
		t.Fatal(err)
	}
	if s.upstreamOf(up.URL) != first {
		t.Fatal("upstream rebuilt by a swap")
	}
	if first.available() {
		t.Error("health state lost by a swap")
	}
	poll.Until(t, "active health checks on HealthPath", waitTimeout, poll.True(func() bool { return checks.Load() >= 2 }))

	if err := s.SetRoutes([]Route{{Host: "b.test", Upstreams: []string{other.URL}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-first.done:
	case <-time.After(15 * time.Second):
		t.Fatal("health checker of an unused upstream still running")
	}
	if s.upstreamOf(up.URL) != nil {
		t.Error("unused upstream still held")
	}
}

func TestActiveHealthCheck(t *testing.T) {
	var failing atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(up.Close)
	h := startEdge(t, Config{HealthInterval: 20 * time.Millisecond}, Route{Host: "a.test", Service: "a", Upstreams: []string{up.URL}})
	u := h.s.upstreamOf(up.URL)
	failing.Store(true)
	poll.Until(t, "upstream marked unhealthy", waitTimeout, poll.True(func() bool { return !u.available() }))
	failing.Store(false)
	poll.Until(t, "upstream healthy again", waitTimeout, poll.True(func() bool { return u.available() }))
}

func TestShutdownStopsEverything(t *testing.T) {
	up := namedUpstream(t, "up")
	s := New(Config{Logger: testLogger(t)})
	if err := s.SetRoutes([]Route{{Host: "a.test", Upstreams: []string{up.URL}}}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.ServeHTTP(ln) }()
	u := s.upstreamOf(up.URL)
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("ServeHTTP: %v, want http.ErrServerClosed", err)
	}
	<-u.done
	if err := s.SetRoutes(nil); err == nil {
		t.Error("SetRoutes after Shutdown succeeded")
	}
	if err := s.ServeTLS(ln); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("ServeTLS after Shutdown: %v", err)
	}
}

// TestCertificateCache: handshakes for a name share one lookup of the
// certificate source for a short while, and a route change drops the
// cached certificate (a renewed one is then asked for at once).
func TestCertificateCache(t *testing.T) {
	up := namedUpstream(t, "up")
	var clock atomic.Int64 // the cache's clock stands still unless the test moves it
	h := startEdge(t, Config{clock: clock.Load}, Route{Host: "a.test", Upstreams: []string{up.URL}})
	asked := func() int {
		h.pki.mu.Lock()
		defer h.pki.mu.Unlock()
		return len(h.pki.asked)
	}
	handshake := func() {
		t.Helper()
		c, err := h.dialTLS("a.test", "http/1.1")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	handshake()
	before := asked()
	for range 5 {
		handshake()
	}
	if n := asked() - before; n != 0 {
		t.Errorf("5 more handshakes within certCacheTTL asked the certificate source %d times, want 0", n)
	}
	clock.Add(int64(certCacheTTL) - 1)
	handshake()
	if n := asked() - before; n != 0 {
		t.Errorf("a handshake just before certCacheTTL ran out asked the certificate source")
	}
	clock.Add(1)
	handshake()
	if n := asked() - before; n != 1 {
		t.Errorf("a handshake once certCacheTTL ran out asked the certificate source %d times, want 1", n)
	}
	// Entries that ran out are swept by a later store, at most every
	// certSweepEvery: the cache does not hold a name's certificate past
	// that (it held it until the next SetRoutes, whatever the
	// certificate cache had let go).
	if err := h.s.UpdateRoutes([]Route{{Host: "c.test", Upstreams: []string{up.URL}}}, nil); err != nil {
		t.Fatal(err)
	}
	entries := func() (names []string) {
		h.s.certs.Range(func(k, _ any) bool { names = append(names, k.(string)); return true })
		slices.Sort(names)
		return names
	}
	clock.Add(int64(certSweepEvery))
	if c, err := h.dialTLS("c.test", "http/1.1"); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	if got := entries(); !slices.Equal(got, []string{"c.test"}) {
		t.Errorf("after a sweep the cache holds %v, want [c.test]", got)
	}
	handshake() // a.test again, within certSweepEvery of the sweep: no sweep
	if got := entries(); !slices.Equal(got, []string{"a.test", "c.test"}) {
		t.Errorf("the cache holds %v, want [a.test c.test]", got)
	}

	if err := h.s.SetRoutes([]Route{{Host: "b.test", Upstreams: []string{up.URL}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.dialTLS("a.test", "http/1.1"); err == nil {
		t.Error("handshake for a.test succeeded after its route was removed")
	}
	if err := h.s.SetRoutes([]Route{{Host: "a.test", Upstreams: []string{up.URL}}}); err != nil {
		t.Fatal(err)
	}
	before = asked()
	handshake()
	if asked() == before {
		t.Error("after a route change the cached certificate was served without asking the source")
	}
}
