package security

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
)

// smuggled is the target of every request an attacker tries to slip past the
// edge; no upstream may ever see it.
const smuggled = "/smuggled"

const smuggledReq = "GET " + smuggled + " HTTP/1.1\r\nHost: a.localhost\r\n\r\n"

// exchange is what the attacker's connection got back.
type exchange struct {
	statuses []int
	closed   bool // the edge closed the connection (rather than waiting)
}

// TestSmuggling sends each case of the corpus on its own raw TLS connection
// (SNI a.localhost) and checks what the raw recording upstreams of a.localhost
// and b.localhost received: exactly what a correct proxy would forward, never
// a second request cut out of the first one's body, never a client's
// X-Forwarded-* values.
func TestSmuggling(t *testing.T) {
	s := startSpine(t, edge.Config{})
	recA, recB, recP := startRecorder(t, "a"), startRecorder(t, "b"), startRecorder(t, "p")
	s.addService(t, s.admin, client.ServiceCreate{Name: "a", Upstreams: []string{recA.url()}})
	s.addService(t, s.admin, client.ServiceCreate{Name: "b", Upstreams: []string{recB.url()}})
	// An upstream URL with a path: every request to it goes through
	// httputil.ReverseProxy, never the edge's direct path (direct.go).
	s.addService(t, s.admin, client.ServiceCreate{Name: "p", Upstreams: []string{recP.url() + "/base"}})

	// A body that, framed by Content-Length, holds a whole second request.
	clBody := "0\r\n\r\n" + smuggledReq

	cases := []struct {
		name string
		raw  string
		// check gets the answers and what each upstream recorded.
		check func(t *testing.T, ex exchange, a, b []recorded)
	}{
		{
			name:  "content-length and transfer-encoding (CL.TE)",
			raw:   "POST /clte HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: " + fmt.Sprint(len(clBody)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + clBody,
			check: rejectedOrChunkedThenClosed("/clte", ""),
		},
		{
			name:  "transfer-encoding and content-length (TE.CL)",
			raw:   "POST /tecl HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggledReq,
			check: rejectedOrChunkedThenClosed("/tecl", "hello"),
		},
		{
			name:  "two different content-lengths",
			raw:   "POST /twocl HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 5\r\nContent-Length: " + fmt.Sprint(5+len(smuggledReq)) + "\r\n\r\nhello" + smuggledReq,
			check: rejected(400),
		},
		{
			name:  "bare LF after a chunk size",
			raw:   "POST /barelf HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + smuggledReq,
			check: noCompleteRequest(400),
		},
		{
			name:  "bare LF after chunk data",
			raw:   "POST /barelf2 HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n" + smuggledReq,
			check: noCompleteRequest(400),
		},
		{
			name:  "chunk size with an extension hiding a LF",
			raw:   "POST /ext HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5;x\nhello\r\n0\r\n\r\n" + smuggledReq,
			check: noCompleteRequest(400),
		},
		{
			name: "obs-fold in a header",
			raw:  "GET /fold HTTP/1.1\r\nHost: a.localhost\r\nX-Folded: one\r\n two\r\nConnection: close\r\n\r\n",
			check: func(t *testing.T, ex exchange, a, b []recorded) {
				// RFC 9112 5.2: reject, or replace the fold with spaces.
				if len(a) == 0 {
					rejected(400)(t, ex, a, b)
					return
				}
				onlyRequests(t, a, "GET /fold")
				if v := a[0].Header.Values("X-Folded"); len(v) != 1 || strings.ContainsAny(v[0], "\r\n") || !strings.HasPrefix(v[0], "one") || !strings.HasSuffix(v[0], "two") {
					t.Errorf("folded header reached the upstream as %q", v)
				}
			},
		},
		{
			name:  "obs-fold in transfer-encoding",
			raw:   "POST /foldte HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: " + fmt.Sprint(len(clBody)) + "\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" + clBody,
			check: rejectedOrChunkedThenClosed("/foldte", ""),
		},
		{
			name:  "space before the colon",
			raw:   "POST /space HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: " + fmt.Sprint(len(clBody)) + "\r\nTransfer-Encoding : chunked\r\n\r\n" + clBody,
			check: rejected(400),
		},
		{
			name:  "transfer-encoding: chunked, identity",
			raw:   "POST /teci HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggledReq,
			check: rejected(400, 501),
		},
		{
			name:  "two transfer-encoding fields",
			raw:   "POST /te2 HTTP/1.1\r\nHost: a.localhost\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggledReq,
			check: rejected(400, 501),
		},
		{
			name:  "content-length with a sign",
			raw:   "POST /plus HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: +5\r\n\r\nhello" + smuggledReq,
			check: rejected(400),
		},
		{
			name:  "two host headers",
			raw:   "GET /twohost HTTP/1.1\r\nHost: a.localhost\r\nHost: b.localhost\r\n\r\n",
			check: rejected(400),
		},
		{
			name: "transfer-encoding on HTTP/1.0",
			raw:  "POST /te10 HTTP/1.0\r\nHost: a.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + smuggledReq,
			check: func(t *testing.T, ex exchange, a, b []recorded) {
				// HTTP/1.0 has no chunked coding: the body is empty and the
				// connection ends after the answer.
				if len(a) > 1 || len(b) > 0 {
					t.Errorf("more than one request forwarded: a=%v b=%v", a, b)
				}
				if !ex.closed {
					t.Error("the edge kept an HTTP/1.0 connection open")
				}
			},
		},
		{
			name: "Connection: X-Forwarded-For and forged forwarding headers",
			raw: "GET /xff HTTP/1.1\r\nHost: a.localhost\r\nConnection: close, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, Forwarded\r\n" +
				"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: b.localhost\r\nX-Forwarded-Proto: http\r\nForwarded: for=6.6.6.6;host=b.localhost\r\n\r\n",
			check: func(t *testing.T, ex exchange, a, b []recorded) {
				onlyRequests(t, a, "GET /xff")
				if len(b) > 0 {
					t.Errorf("b received %v", b)
				}
				if len(a) == 1 {
					forwardedBySpine(t, a[0], "a.localhost")
				}
			},
		},
		{
			name: "forged forwarding headers without Connection",
			raw:  "GET /xff2 HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\nX-Forwarded-For: 6.6.6.6, 7.7.7.7\r\nX-Forwarded-Host: b.localhost\r\nX-Forwarded-Proto: http\r\nForwarded: for=6.6.6.6\r\n\r\n",
			check: func(t *testing.T, ex exchange, a, b []recorded) {
				onlyRequests(t, a, "GET /xff2")
				if len(a) == 1 {
					forwardedBySpine(t, a[0], "a.localhost")
				}
			},
		},
		{
			name:  "absolute-form target for another host (https)",
			raw:   "GET https://b.localhost/steal HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\n\r\n",
			check: misdirected,
		},
		{
			name:  "absolute-form target for another host (http)",
			raw:   "GET http://b.localhost/steal HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\n\r\n",
			check: misdirected,
		},
		{
			name:  "absolute-form target for another host with a port",
			raw:   "GET https://B.localhost.:443/steal HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\n\r\n",
			check: misdirected,
		},
		{
			name:  "Host header for another host",
			raw:   "GET /steal HTTP/1.1\r\nHost: b.localhost\r\nConnection: close\r\n\r\n",
			check: misdirected,
		},
		{
			name: "absolute-form target for this host, Host header for another",
			raw:  "GET https://a.localhost/abs HTTP/1.1\r\nHost: b.localhost\r\nConnection: close\r\n\r\n",
			check: func(t *testing.T, ex exchange, a, b []recorded) {
				// RFC 9112 3.2.2: the target's authority wins over Host.
				onlyRequests(t, a, "GET /abs")
				if len(b) > 0 {
					t.Errorf("b received %v", b)
				}
				if len(a) == 1 {
					forwardedBySpine(t, a[0], "a.localhost")
				}
			},
		},
		{
			name: "two well-formed pipelined requests (control)",
			raw:  "GET /one HTTP/1.1\r\nHost: a.localhost\r\n\r\nPOST /two HTTP/1.1\r\nHost: a.localhost\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
			check: func(t *testing.T, ex exchange, a, b []recorded) {
				onlyRequests(t, a, "GET /one", "POST /two hello")
				if !slices.Equal(ex.statuses, []int{200, 200}) {
					t.Errorf("statuses %v, want [200 200]", ex.statuses)
				}
			},
		},
	}

	t.Run("HTTP/2 request with connection-specific fields", func(t *testing.T) {
		// RFC 9113 8.2.2 calls such a request malformed. net/http answers
		// 400 rather than resetting the stream (an h2spec exception); either
		// way no field may reach an upstream.
		ma := recA.mark()
		h, err := dialH2Host(s, "a.localhost")
		if err != nil {
			t.Fatal(err)
		}
		defer h.c.Close()
		// One stream per field, as h2spec sends them.
		fields := [][]string{
			{"connection", "x-forwarded-for"}, {"connection", "keep-alive"}, {"keep-alive", "timeout=5"},
			{"proxy-connection", "keep-alive"}, {"upgrade", "h2c"}, {"te", "gzip"}, {"transfer-encoding", "chunked"},
		}
		for i, f := range fields {
			block := h.headerBlock(":method", "POST", f[0], f[1], "x-forwarded-for", "6.6.6.6", "content-length", "5")
			id := uint32(2*i + 1)
			h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true})
			h.fr.WriteData(id, true, []byte("hello"))
		}
		h.bw.Flush()
		time.Sleep(500 * time.Millisecond)
		got := recA.since(ma)
		for _, r := range got {
			for _, k := range []string{"Connection", "Keep-Alive", "Te", "Upgrade", "Proxy-Connection", "Transfer-Encoding"} {
				if v := r.Header.Values(k); len(v) > 0 {
					t.Errorf("upstream received %s: %q", k, v)
				}
			}
			if r.Chunked || r.Body != "hello" {
				t.Errorf("upstream received %v (chunked %v)", r, r.Chunked)
			}
			forwardedBySpine(t, r, "a.localhost")
		}
		if len(got) > len(fields) {
			t.Errorf("upstream received %v", got)
		}
		reportf(t, "HTTP/2 requests with one connection-specific field each: %d of %d forwarded, all without it (%s)", len(got), len(fields), h.describe())
	})

	t.Run("forwarding headers on the direct and the ReverseProxy path", func(t *testing.T) {
		forwardingHeaders(t, s, map[string]*recorder{"a.localhost": recA, "p.localhost": recP})
	})

	var lines []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ma, mb := recA.mark(), recB.mark()
			ex := sendRaw(t, s, "a.localhost", tc.raw)
			// Give a forwarded request time to arrive before looking.
			time.Sleep(150 * time.Millisecond)
			a, b := recA.since(ma), recB.since(mb)
			for _, r := range append(a, b...) {
				if strings.Contains(r.Target, smuggled) {
					t.Errorf("an upstream received the smuggled request: %v", r)
				}
			}
			tc.check(t, ex, a, b)
			lines = append(lines, fmt.Sprintf("%s: answers %v, closed %v, upstream a got %d, b got %d", tc.name, ex.statuses, ex.closed, len(a), len(b)))
			if t.Failed() {
				t.Logf("raw: %q\nanswers %v closed=%v\na: %v\nb: %v", tc.raw, ex.statuses, ex.closed, a, b)
			}
		})
	}
	for _, l := range lines {
		reportf(t, "%s", l)
	}
	// The edge's own connections to the upstreams are still in step: a
	// plain request after the whole corpus reaches the right place.
	ma := recA.mark()
	ex := sendRaw(t, s, "a.localhost", "GET /after HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	onlyRequests(t, recA.since(ma), "GET /after")
	if !slices.Equal(ex.statuses, []int{200}) {
		t.Errorf("request after the corpus: statuses %v", ex.statuses)
	}
}

// forwardingHeaders sends requests with forged forwarding headers, with and
// without a Connection header that names them, to each host of recs, with
// each kind of message: GET without a body (which the edge forwards on its
// direct path when the upstream URL has no path), POST framed by
// Content-Length and POST in chunks (which always go through
// ReverseProxy). The host's raw upstream must receive the request once,
// with its body, the upstream's Host and only Spine's own X-Forwarded-*.
func forwardingHeaders(t *testing.T, s *spine, recs map[string]*recorder) {
	forged := []struct{ name, fields string }{
		{"Connection naming them", "Connection: close, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, Forwarded\r\n" +
			"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: b.localhost\r\nX-Forwarded-Proto: http\r\nForwarded: for=6.6.6.6;host=b.localhost\r\n"},
		{"without Connection", "Connection: close\r\n" +
			"X-Forwarded-For: 6.6.6.6, 7.7.7.7\r\nX-Forwarded-Host: b.localhost\r\nX-Forwarded-Proto: http\r\nForwarded: for=6.6.6.6\r\n"},
		{"repeated", "Connection: close\r\n" +
			"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\nX-Forwarded-Host: b.localhost\r\nX-Forwarded-Host: c.localhost\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Proto: wss\r\n"},
	}
	messages := []struct{ name, method, framing, body string }{
		{"GET", "GET", "", ""},
		{"POST with Content-Length", "POST", "Content-Length: 11\r\n", "hello world"},
		{"POST chunked", "POST", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
	}
	hosts := make([]string, 0, len(recs))
	for h := range recs {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	for _, host := range hosts {
		rec := recs[host]
		prefix := ""
		if strings.HasPrefix(host, "p.") {
			prefix = "/base"
		}
		for _, m := range messages {
			for i, f := range forged {
				t.Run(host+" "+m.name+" "+f.name, func(t *testing.T) {
					path := fmt.Sprintf("/xff-%s-%d", strings.ToLower(m.method), i)
					marks := map[*recorder]int{}
					for _, r := range recs {
						marks[r] = r.mark()
					}
					raw := m.method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + f.fields + m.framing + "\r\n" + m.body
					ex := sendRaw(t, s, host, raw)
					time.Sleep(100 * time.Millisecond)
					got := rec.since(marks[rec])
					want := m.method + " " + prefix + path
					if m.body != "" {
						want += " hello world"
					}
					onlyRequests(t, got, want)
					if !slices.Equal(ex.statuses, []int{200}) {
						t.Errorf("answers %v, want [200]", ex.statuses)
					}
					for other, r := range recs {
						if r != rec && len(r.since(marks[r])) > 0 {
							t.Errorf("%s's upstream received %v", other, r.since(marks[r]))
						}
					}
					if len(got) == 1 {
						forwardedBySpine(t, got[0], host)
						if got[0].Host != rec.addr {
							t.Errorf("upstream received Host %q, want its own %q", got[0].Host, rec.addr)
						}
						// The client's Connection is hop-by-hop: it must not
						// reach the upstream to strip Spine's headers there.
						for _, v := range got[0].Header.Values("Connection") {
							if strings.Contains(strings.ToLower(v), "forwarded") {
								t.Errorf("upstream received Connection: %q", v)
							}
						}
					}
					if t.Failed() {
						t.Logf("raw: %q\nanswers %v closed=%v\ngot: %v", raw, ex.statuses, ex.closed, got)
					}
				})
			}
		}
	}
}

// sendRaw writes raw on a new TLS connection with SNI sni and reads every
// answer until the edge closes the connection or is silent for a second.
func sendRaw(t *testing.T, s *spine, sni, raw string) exchange {
	t.Helper()
	c, err := s.dialTLS(sni, "http/1.1")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	var ex exchange
	br := bufio.NewReader(c)
	for {
		// The edge answers or closes: the first answer gets a guard sized
		// for a loaded machine; after one, a second of silence means the
		// edge keeps the connection open for a next request.
		wait := time.Second
		if len(ex.statuses) == 0 {
			wait = time.Minute
		}
		c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			ex.closed = !(errors.As(err, &ne) && ne.Timeout())
			return ex
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ex.statuses = append(ex.statuses, resp.StatusCode)
		if resp.Close {
			_, err := br.ReadByte()
			ex.closed = err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
			return ex
		}
	}
}

// rejected: the edge answers with one of codes and forwards nothing.
func rejected(codes ...int) func(*testing.T, exchange, []recorded, []recorded) {
	return func(t *testing.T, ex exchange, a, b []recorded) {
		t.Helper()
		if len(a)+len(b) > 0 {
			t.Errorf("forwarded %v %v; want nothing", a, b)
		}
		if len(ex.statuses) != 1 || !slices.Contains(codes, ex.statuses[0]) {
			t.Errorf("answers %v, want one of %v", ex.statuses, codes)
		}
		if !ex.closed {
			t.Error("the edge kept the connection open after refusing a malformed request")
		}
	}
}

// noCompleteRequest: a malformed body may have begun to stream to the
// upstream, but no complete request reaches it, and the client gets code
// (or, when the edge had already begun to answer, a cut connection).
func noCompleteRequest(code int) func(*testing.T, exchange, []recorded, []recorded) {
	return func(t *testing.T, ex exchange, a, b []recorded) {
		t.Helper()
		for _, r := range append(a, b...) {
			if r.Complete {
				t.Errorf("a complete request reached an upstream: %v", r)
			}
		}
		if len(ex.statuses) > 1 || (len(ex.statuses) == 1 && ex.statuses[0] != code) {
			t.Errorf("answers %v, want %d", ex.statuses, code)
		}
		if !ex.closed {
			t.Error("the edge kept the connection open after a malformed body")
		}
	}
}

// rejectedOrChunkedThenClosed: a message with both Content-Length and
// Transfer-Encoding is refused, or forwarded once framed by the chunked
// coding alone, after which the edge closes the connection (RFC 9112 6.3),
// so that what followed the body is never read as a request.
func rejectedOrChunkedThenClosed(path, body string) func(*testing.T, exchange, []recorded, []recorded) {
	return func(t *testing.T, ex exchange, a, b []recorded) {
		t.Helper()
		if len(a) == 0 {
			rejected(400, 501)(t, ex, a, b)
			return
		}
		onlyRequests(t, a, strings.TrimSpace("POST "+path+" "+body))
		if len(a) == 1 && a[0].Header.Get("Content-Length") != "" && a[0].Chunked {
			t.Errorf("forwarded with both Content-Length and Transfer-Encoding: %v", a[0].Header)
		}
		if len(ex.statuses) != 1 {
			t.Errorf("answers %v, want exactly one", ex.statuses)
		}
		if !ex.closed {
			t.Error("the edge kept the connection open after a message with both Content-Length and Transfer-Encoding (RFC 9112 6.3 requires closing it)")
		}
	}
}

// misdirected: 421, and neither upstream sees anything.
func misdirected(t *testing.T, ex exchange, a, b []recorded) {
	t.Helper()
	if len(a)+len(b) > 0 {
		t.Errorf("forwarded %v %v; want nothing", a, b)
	}
	if !slices.Equal(ex.statuses, []int{http.StatusMisdirectedRequest}) {
		t.Errorf("answers %v, want [421]", ex.statuses)
	}
}

// onlyRequests checks that got holds exactly the complete requests want,
// each written "METHOD target [body]".
func onlyRequests(t *testing.T, got []recorded, want ...string) {
	t.Helper()
	var have []string
	for _, r := range got {
		s := r.Method + " " + r.Target
		if r.Body != "" {
			s += " " + r.Body
		}
		if !r.Complete {
			s += " (incomplete: " + r.Err + ")"
		}
		have = append(have, s)
	}
	if !slices.Equal(have, want) {
		t.Errorf("upstream received %q, want %q", have, want)
	}
}

// forwardedBySpine checks that the forwarding headers are Spine's own.
func forwardedBySpine(t *testing.T, r recorded, host string) {
	t.Helper()
	want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": host, "X-Forwarded-Proto": "https"}
	for k, v := range want {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if f := r.Header.Values("Forwarded"); len(f) > 0 {
		t.Errorf("client's Forwarded header reached the upstream: %q", f)
	}
}
