package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// The direct path (direct.go) serves GET and HEAD to plain-HTTP upstreams;
// these tests check it keeps what ReverseProxy did, over HTTP/1.1 and HTTP/2.

func TestDirectAnswers(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Content-Type", "text/x-small")
			w.Header().Set("Content-Length", "5")
			w.Header().Set("X-Small", "yes")
			io.WriteString(w, "small")
		case "/stream":
			// The second part waits until the client has the first: an
			// edge that held the first back would never see it.
			if r.URL.Query().Has("length") {
				w.Header().Set("Content-Length", "13")
			}
			io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "second\n")
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "chunk one,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "chunk two")
			w.Header().Set("X-Sum", "42")
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "after hints")
		case "/hop":
			w.Header().Set("Connection", "X-Secret")
			w.Header().Set("X-Secret", "1")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("X-Kept", "yes")
			io.WriteString(w, "hop")
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "closing")
		case "/echo":
			io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" ua="+r.Header.Get("User-Agent")+
				" te="+r.Header.Get("Te")+" hop="+r.Header.Get("X-Hop")+" ae="+r.Header.Get("Accept-Encoding"))
		}
	}))
	t.Cleanup(up.Close)
	h := startEdge(t, Config{}, Route{Host: "a.test", Service: "a", Upstreams: []string{up.URL}})
	for _, proto := range []struct {
		name string
		h2   bool
	}{{"http1", false}, {"http2", true}} {
		c := h.client(t, proto.h2)
		t.Run(proto.name+"/small answer", func(t *testing.T) {
			resp, body := do(t, c, "GET", "https://a.test/small", nil)
			if resp.StatusCode != 200 || body != "small" || resp.ContentLength != 5 ||
				resp.Header.Get("Content-Type") != "text/x-small" || resp.Header.Get("X-Small") != "yes" {
				t.Errorf("status %d, body %q, length %d, header %v", resp.StatusCode, body, resp.ContentLength, resp.Header)
			}
		})
		for _, query := range []string{"", "?length"} {
			t.Run(proto.name+"/streaming"+query, func(t *testing.T) {
				resp, err := c.Get("https://a.test/stream" + query)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				br := bufio.NewReader(resp.Body)
				if line, err := br.ReadString('\n'); line != "first\n" {
					t.Fatalf("first part %q, %v", line, err)
				}
				release <- struct{}{}
				if rest, err := io.ReadAll(br); string(rest) != "second\n" || err != nil {
					t.Errorf("second part %q, %v", rest, err)
				}
			})
		}
		t.Run(proto.name+"/trailers", func(t *testing.T) {
			resp, body := do(t, c, "GET", "https://a.test/trailer", nil)
			if body != "chunk one,chunk two" || resp.Trailer.Get("X-Sum") != "42" {
				t.Errorf("body %q, trailer %v; want both chunks and X-Sum: 42", body, resp.Trailer)
			}
		})
		t.Run(proto.name+"/1xx", func(t *testing.T) {
			var hints []string
			trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				hints = append(hints, h.Get("Link"))
				return nil
			}}
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "https://a.test/hints", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(hints) != 1 || hints[0] != "</a.css>; rel=preload" || string(body) != "after hints" || resp.Header.Get("Link") != "" {
				t.Errorf("hints %q, body %q, final Link %q", hints, body, resp.Header.Get("Link"))
			}
		})
		t.Run(proto.name+"/hop-by-hop", func(t *testing.T) {
			resp, _ := do(t, c, "GET", "https://a.test/hop", nil)
			if resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Kept") != "yes" {
				t.Errorf("response header %v: want X-Kept only", resp.Header)
			}
		})
		t.Run(proto.name+"/upstream closes", func(t *testing.T) {
			for range 3 {
				resp, body := do(t, c, "GET", "https://a.test/close", nil)
				if resp.StatusCode != 200 || body != "closing" || resp.Close {
					t.Errorf("status %d body %q close %v", resp.StatusCode, body, resp.Close)
				}
			}
		})
		t.Run(proto.name+"/request header", func(t *testing.T) {
			hdr := http.Header{"Te": {"trailers"}, "X-Hop": {"1"}, "Accept-Encoding": {"br"}}
			if !proto.h2 {
				hdr["Connection"] = []string{"X-Hop"} // HTTP/2 has no Connection field
			}
			_, body := do(t, c, "GET", "https://a.test/echo?x=1&y=%41", hdr)
			hop := map[bool]string{false: "", true: "1"}[proto.h2]
			want := "GET /echo?x=1&y=%41 ua=Go-http-client/" + map[bool]string{false: "1.1", true: "2.0"}[proto.h2] + " te=trailers hop=" + hop + " ae=br"
			if body != want {
				t.Errorf("upstream saw %q, want %q", body, want)
			}
		})
		t.Run(proto.name+"/HEAD", func(t *testing.T) {
			resp, body := do(t, c, "HEAD", "https://a.test/close", nil)
			if resp.StatusCode != 200 || body != "" {
				t.Errorf("status %d body %q", resp.StatusCode, body)
			}
		})
	}
}

// TestDirectReusesConnections: keep-alive requests share upstream
// connections, and one the upstream closed while idle is replaced without
// the client noticing.
func TestDirectReusesConnections(t *testing.T) {
	// The upstream counts the connections that carried the edge's proxied
	// requests; the health checker's have a User-Agent of their own.
	var mu sync.Mutex
	conns := map[string]bool{}
	used := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "spine-edge-health/1" {
			mu.Lock()
			conns[r.RemoteAddr] = true
			mu.Unlock()
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	h := startEdge(t, Config{}, Route{Host: "a.test", Service: "a", Upstreams: []string{up.URL}})
	c := h.client(t, false)
	for range 11 {
		if _, body := do(t, c, "GET", "https://a.test/", nil); body != "ok" {
			t.Fatalf("body %q", body)
		}
	}
	if n := used(); n != 1 {
		t.Errorf("11 sequential requests went over %d upstream connections, want 1", n)
	}
	// The upstream drops its idle connection; CloseClientConnections
	// returns once it is closed, so the edge's next request finds it gone.
	up.CloseClientConnections()
	resp, body := do(t, c, "GET", "https://a.test/", nil)
	if resp.StatusCode != 200 || body != "ok" {
		t.Errorf("after the upstream closed its idle connection: status %d body %q", resp.StatusCode, body)
	}
	if n := used(); n != 2 {
		t.Errorf("after the upstream closed its idle connection, requests went over %d connections, want 2", n)
	}
}

// rawUpstream answers each request on each connection with answer(n), n
// counting the connection's requests from 0, and closes the connection when it returns "" or
// a text ending in "<close>" (after writing the text before it).
func rawUpstream(t *testing.T, answer func(n int) string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for n := 0; ; n++ {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					a := answer(n)
					if a == "" {
						return
					}
					a, closing := strings.CutSuffix(a, "<close>")
					if _, err := io.WriteString(c, a); err != nil || closing {
						return
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestDirectUpstreamFailures(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	for _, tc := range []struct {
		name   string
		answer func(n int) string
		status int    // 0: the client's request must fail
		body   string // checked when status is set
		// headerTimeout is Config.ResponseHeaderTimeout; default a minute,
		// which no upstream here waits for unless it never answers.
		headerTimeout time.Duration
	}{
		{
			name: "cut-off body aborts the client's response",
			answer: func(int) string {
				return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b<close>"
			},
		},
		{
			name:   "no answer at all gives 502",
			answer: func(int) string { return "" },
			status: http.StatusBadGateway,
		},
		{
			name: "a kept-alive connection closed after its first answer is replaced",
			answer: func(n int) string {
				if n == 1 {
					return "" // the second request on a connection finds it closed
				}
				return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			},
			status: 200,
			body:   "ok",
		},
		{
			name: "response header timeout gives 502",
			answer: func(int) string {
				<-never // until the test ends
				return ""
			},
			status:        http.StatusBadGateway,
			headerTimeout: 300 * time.Millisecond,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawUpstream(t, tc.answer)
			if tc.headerTimeout == 0 {
				tc.headerTimeout = time.Minute
			}
			h := startEdge(t, Config{ResponseHeaderTimeout: tc.headerTimeout, FailCooldown: time.Millisecond},
				Route{Host: "a.test", Service: "a", Upstreams: []string{url}})
			c := h.client(t, false)
			for i := range 3 {
				resp, err := c.Get("https://a.test/")
				if tc.status == 0 {
					if err == nil {
						_, err = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
					if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "EOF") {
						t.Errorf("request %d: error %v, want the response cut off", i, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || tc.body != "" && string(body) != tc.body {
					t.Errorf("request %d: status %d body %q, want %d %q", i, resp.StatusCode, body, tc.status, tc.body)
				}
			}
		})
	}
}

func TestDirectTakes(t *testing.T) {
	d := &direct{}
	for _, tc := range []struct {
		method, target string
		header         http.Header
		want           bool
	}{
		{"GET", "/a?b=c", nil, true},
		{"HEAD", "/", nil, true},
		{"POST", "/", nil, false},
		{"GET", "/?a=1;b=2", nil, false}, // ReverseProxy re-encodes it
		{"GET", "/?a=%zz", nil, false},
		{"GET", "/?a=b%20c", nil, true},
		{"GET", "/?a=b c", nil, false}, // only HTTP/2 and HTTP/3 let it in
		{"GET", "/?a=b\x7f", nil, false},
		{"GET", "/ws", http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}}, false},
		{"GET", "/", http.Header{"Expect": {"100-continue"}}, false},
	} {
		path, query, _ := strings.Cut(tc.target, "?")
		r := httptest.NewRequest(tc.method, path, nil)
		r.URL.RawQuery = query // as HTTP/2 hands it over, even when HTTP/1.1 could not
		for k, v := range tc.header {
			r.Header[k] = v
		}
		if got := d.takes(r); got != tc.want {
			t.Errorf("%s %s %v: takes = %v, want %v", tc.method, tc.target, tc.header, got, tc.want)
		}
	}
	if (*direct)(nil).takes(httptest.NewRequest("GET", "/", nil)) {
		t.Error("a nil direct (https upstream, or one with a path) takes requests")
	}
}

// TestDirectClientGoneClosesUpstream: when the client gives up while the
// upstream is still thinking, the edge drops the upstream connection
// instead of waiting for the response header timeout.
func TestDirectClientGoneClosesUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	arrived := make(chan struct{}, 4)
	closed := make(chan struct{}, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				if req.URL.Path == "/" && req.Header.Get("User-Agent") == "spine-edge-health/1" {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
					return
				}
				arrived <- struct{}{}
				io.Copy(io.Discard, br) // never answer; wait for the edge to close
				closed <- struct{}{}
			}()
		}
	}()
	// The response header timeout is far longer than the test waits: the
	// upstream connection must close because the client left.
	h := startEdge(t, Config{ResponseHeaderTimeout: time.Hour},
		Route{Host: "a.test", Service: "a", Upstreams: []string{"http://" + ln.Addr().String()}})
	for _, h2 := range []bool{false, true} {
		// The client gives up once the upstream has the request, not after
		// a fixed time, which a loaded machine may spend on the handshake.
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "https://a.test/slow", nil)
		done := make(chan error, 1)
		go func() {
			resp, err := h.client(t, h2).Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		select {
		case <-arrived:
		case err := <-done:
			t.Fatalf("h2=%v: the request ended before it reached the upstream: %v", h2, err)
		}
		cancel()
		if err := <-done; err == nil {
			t.Fatal("the request succeeded; the upstream never answers")
		}
		select {
		case <-closed:
		case <-time.After(time.Minute): // a guard against a hang, not a speed target
			t.Fatalf("h2=%v: the edge kept the upstream connection after the client left", h2)
		}
	}
}
