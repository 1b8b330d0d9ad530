package edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// FuzzDirectRequest feeds raw client bytes (request lines, headers, bodies,
// several pipelined requests) to a real net/http server, and for every
// request it hands to a handler that the direct path takes, checks what
// direct.writeRequest would send upstream:
//
//   - it is exactly one well-formed HTTP/1.1 request: one header block ending
//     in CRLF CRLF, no bare CR or LF, no obs-fold, every field name a token
//     and every value valid, no body framing, nothing after it;
//   - Host is the upstream's; no hop-by-hop field, and no field the client
//     named in Connection; X-Forwarded-For/Host/Proto are the edge's values
//     (the peer's address, the client's Host, the scheme), never the
//     client's, and there is no Forwarded;
//   - the upstream decodes the same path and query the edge routed on;
//   - differentially: it is the same request (method, target, Host, every
//     field and value) that the ReverseProxy newUpstream configures makes
//     http.Transport write for that request. (One difference is known and
//     left: with GODEBUG urlmaxqueryparams set, ReverseProxy re-encodes
//     every query; the direct path passes a clean one through as it is.)
//
// Requests arrive over HTTP/1.x here, over HTTP/2 in
// FuzzDirectRequestHTTP2. upstream is the configured upstream URL (skipped
// unless the direct path serves it), remote picks the client's address and
// overTLS whether the request came over TLS.
func FuzzDirectRequest(f *testing.F) {
	f.Add("http://127.0.0.1:9000", []byte("GET /a?b=c HTTP/1.1\r\nHost: a.test\r\nConnection: X-Forwarded-For, x-drop\r\nX-Drop: 1\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"), uint8(0), true)
	f.Add("http://up.test", []byte("GET http://other.test/%2F..%2f?q=%41 HTTP/1.1\r\nHost: a.test\r\nTe: trailers, gzip\r\nUser-Agent: x\r\nUser-Agent: y\r\n\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n"), uint8(1), false)

	srv := startFuzzServer(f, false)
	f.Fuzz(func(t *testing.T, upstream string, raw []byte, remote uint8, overTLS bool) {
		c := srv.run(t, upstream, raw, nil, fuzzRemotes[int(remote)%len(fuzzRemotes)], overTLS)
		if c == nil {
			return
		}
		for _, msg := range c.failures {
			t.Error(msg)
		}
	})
}

// FuzzDirectRequestHTTP2 is FuzzDirectRequest for requests that arrive
// over HTTP/2: fields is a list of header fields, one "name value" a line
// (pseudo-header fields too, in any order, any number, any case), with an
// empty line between requests. Each request is HPACK-encoded into one
// HEADERS frame that ends its stream, after the client preface, and sent
// to a real net/http server speaking HTTP/2 (prior knowledge, so no TLS in
// the way); the next request goes once the server has ended the stream
// before, so every request the server accepts reaches the handler while
// the connection is up. HTTP/2 builds the request differently: Host from
// :authority (or a host field), cookies joined, the path from :path,
// connection-specific fields refused, names only in lower case; the
// checks are those of FuzzDirectRequest.
func FuzzDirectRequestHTTP2(f *testing.F) {
	f.Add("http://127.0.0.1:9000", ":method GET\n:scheme https\n:authority a.test\n:path /a?b=c\nx-forwarded-for 6.6.6.6\nte trailers\nforwarded for=6.6.6.6\n\n:method HEAD\n:scheme http\n:path //x/%2F..\nhost a.test:443\ncookie a=1\ncookie b=2", uint8(0), true)
	f.Add("http://up.test", ":method GET\n:scheme https\n:authority a.test\n:path /\nuser-agent \nx-drop 1\n\n:method GET\n:scheme https\n:authority [::1]:8443\n:path /?a;b\nupgrade h2c", uint8(1), false)

	srv := startFuzzServer(f, true)
	f.Fuzz(func(t *testing.T, upstream string, fields string, remote uint8, overTLS bool) {
		c := srv.run(t, upstream, nil, newH2Feed(fields), fuzzRemotes[int(remote)%len(fuzzRemotes)], overTLS)
		if c == nil {
			return
		}
		for _, msg := range c.failures {
			t.Error(msg)
		}
	})
}

// TestDirectFuzzHarness checks that the differential fuzz tests' checks can
// fail: that both harnesses reach the direct path for every request it
// takes (pipelined over HTTP/1.1, streams over HTTP/2), and that
// checkDirectWire refuses a smuggled field, a second request, a client's
// X-Forwarded-For and a hop-by-hop field.
func TestDirectFuzzHarness(t *testing.T) {
	srv := startFuzzServer(t, false)
	raw := "GET /one HTTP/1.1\r\nHost: a.test\r\n\r\nGET /two?x HTTP/1.1\r\nHost: a.test\r\n\r\nPOST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\n\r\nx"
	c := srv.run(t, "http://127.0.0.1:9000", []byte(raw), nil, fuzzRemotes[0], true)
	if c.taken != 2 || len(c.failures) > 0 {
		t.Fatalf("direct path took %d requests (want 2), failures %q", c.taken, c.failures)
	}
	srv2 := startFuzzServer(t, true)
	fields := ":method GET\n:scheme https\n:authority a.test\n:path /one\nconnection close\n\n" + // refused: connection-specific
		":method GET\n:scheme https\n:authority a.test\n:path /two?x\nx-forwarded-for 6.6.6.6\n\n" +
		":method POST\n:scheme https\n:authority a.test\n:path /\ncontent-length 0\n\n" + // not GET or HEAD
		":method HEAD\n:scheme https\n:authority a.test\n:path /three\ncookie a=1\ncookie b=2"
	c = srv2.run(t, "http://127.0.0.1:9000", nil, newH2Feed(fields), fuzzRemotes[1], true)
	if c.taken != 2 || len(c.failures) > 0 {
		t.Fatalf("over HTTP/2, direct path took %d requests (want 2), failures %q", c.taken, c.failures)
	}
	r := httptest.NewRequest("GET", "/p?q", nil)
	r.RemoteAddr = "192.0.2.7:1"
	d := &direct{host: "up"}
	good := "GET /p?q HTTP/1.1\r\nHost: up\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Host: example.com\r\nX-Forwarded-Proto: http\r\n\r\n"
	if err := checkDirectWire([]byte(good), r, d); err != nil {
		t.Fatalf("a correct request refused: %v", err)
	}
	for _, bad := range []struct{ from, to string }{
		{"Host: up", "Host: up\r\nX-Injected: 1\nX-Bare: 1"},
		{"\r\n\r\n", "\r\n\r\nGET /second HTTP/1.1\r\nHost: up\r\n\r\n"},
		{"Host: up", "Host: up\r\n folded"},
		{"X-Forwarded-For: 192.0.2.7", "X-Forwarded-For: 6.6.6.6, 192.0.2.7"},
		{"Host: up", "Host: up\r\nKeep-Alive: 5"},
		{"Host: up", "Host: up\r\nContent-Length: 0"},
		{"/p?q", "/p?q2"},
		{"Host: up", "Host: a.test"},
	} {
		wire := strings.Replace(good, bad.from, bad.to, 1)
		if checkDirectWire([]byte(wire), r, d) == nil {
			t.Errorf("checkDirectWire accepted %q", wire)
		}
	}
}

// fuzzRemotes are client addresses as the server's listener reports them;
// the last has no port, as on a Unix socket.
var fuzzRemotes = []net.Addr{
	&net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 51234},
	&net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 443},
	&net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 1},
	&net.UnixAddr{Name: "@", Net: "unix"},
}

// fuzzServer is an http.Server whose connections are directCases.
type fuzzServer struct {
	conns chan *directCase
	done  chan struct{}
	once  sync.Once
}

type directCaseKey struct{}

// startFuzzServer starts an HTTP/1.x server, or with h2 an HTTP/2 one
// (unencrypted, prior knowledge).
func startFuzzServer(tb testing.TB, h2 bool) *fuzzServer {
	l := &fuzzServer{conns: make(chan *directCase), done: make(chan struct{})}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Context().Value(directCaseKey{}).(*directCase).check(r)
		}),
		ConnContext: func(ctx context.Context, nc net.Conn) context.Context {
			return context.WithValue(ctx, directCaseKey{}, nc)
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	if h2 {
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Close() })
	return l
}

var fuzzLogger = slog.New(slog.DiscardHandler)

// run serves raw (or, over HTTP/2, h2) as one client connection from
// remote and returns the case once the server is done with it, or nil when
// upstream is not one the direct path serves.
func (l *fuzzServer) run(t *testing.T, upstream string, raw []byte, h2 *h2Feed, remote net.Addr, overTLS bool) *directCase {
	target, err := parseUpstream(upstream)
	if err != nil {
		return nil
	}
	c := &directCase{
		u:      newUpstream(upstream, target, healthCheck{path: "/", interval: time.Hour}, &Config{Logger: fuzzLogger}),
		raw:    bytes.NewReader(raw),
		h2:     h2,
		remote: remote,
		tls:    overTLS,
		closed: make(chan struct{}),
	}
	defer c.u.stop()
	if c.u.direct == nil {
		return nil
	}
	c.u.tr.DialContext = c.dial
	l.conns <- c
	select {
	case <-c.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not finish with the connection")
	}
	c.mu.Lock() // the server's goroutine is done; this orders its writes
	defer c.mu.Unlock()
	return c
}

func (l *fuzzServer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *fuzzServer) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *fuzzServer) Addr() net.Addr { return loopback }

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443}

// directCase is one fuzz input: to the server, a client connection that
// sends raw and then hangs up, and swallows what it is sent.
type directCase struct {
	u      *upstream
	raw    *bytes.Reader
	h2     *h2Feed // instead of raw, over HTTP/2
	remote net.Addr
	tls    bool

	mu       sync.Mutex
	failures []string
	taken    int         // requests the direct path took
	upConn   *recordConn // the last connection the Transport dialled
	once     sync.Once
	closed   chan struct{}
}

func (c *directCase) Read(p []byte) (int, error) {
	if c.h2 != nil {
		return c.h2.Read(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raw.Read(p)
}

func (c *directCase) Write(p []byte) (int, error) {
	if c.h2 != nil {
		c.h2.Write(p)
	}
	return len(p), nil
}

func (c *directCase) Close() error {
	c.once.Do(func() {
		if c.h2 != nil {
			c.h2.Close()
		}
		close(c.closed)
	})
	return nil
}

func (c *directCase) LocalAddr() net.Addr              { return loopback }
func (c *directCase) RemoteAddr() net.Addr             { return c.remote }
func (c *directCase) SetDeadline(time.Time) error      { return nil }
func (c *directCase) SetReadDeadline(time.Time) error  { return nil }
func (c *directCase) SetWriteDeadline(time.Time) error { return nil }

func (c *directCase) fail(format string, args ...any) {
	c.mu.Lock()
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// dial is the Transport's DialContext: an upstream that records the request.
func (c *directCase) dial(context.Context, string, string) (net.Conn, error) {
	rc := &recordConn{done: make(chan struct{}), answer: strings.NewReader("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")}
	c.mu.Lock()
	c.upConn = rc
	c.mu.Unlock()
	return rc, nil
}

// check runs on the server's goroutine for each request it parsed. (The
// server recovers a handler's panic; check records it as a failure.)
func (c *directCase) check(r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			c.fail("panic: %v\n%s", p, debug.Stack())
		}
	}()
	if c.tls {
		r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true}
	}
	d := c.u.direct
	if !d.takes(r) {
		return
	}
	c.mu.Lock()
	c.taken++
	c.mu.Unlock()
	var wire bytes.Buffer
	if err := d.writeRequest(bufio.NewWriter(&wire), r); err != nil {
		c.fail("writeRequest: %v", err)
		return
	}
	if err := checkDirectWire(wire.Bytes(), r, d); err != nil {
		c.fail("%s %q from %v: direct path wrote %q: %v", r.Method, r.RequestURI, r.RemoteAddr, wire.Bytes(), err)
		return
	}
	// The reference: the same request through the upstream's ReverseProxy
	// and http.Transport. The client hanging up (the input's end) must not
	// cancel it.
	a := &attempt{ResponseWriter: httptest.NewRecorder()}
	c.u.proxy.ServeHTTP(a, r.WithContext(context.WithoutCancel(r.Context())))
	c.mu.Lock()
	rc := c.upConn
	c.upConn = nil
	c.mu.Unlock()
	if a.err != nil || rc == nil {
		c.fail("%s %q: the direct path forwards a request ReverseProxy refuses (%v)", r.Method, r.RequestURI, a.err)
		return
	}
	if err := sameRequest(wire.Bytes(), rc.written()); err != nil {
		c.fail("%s %q from %v: direct path and ReverseProxy differ: %v\ndirect:       %q\nReverseProxy: %q",
			r.Method, r.RequestURI, r.RemoteAddr, err, wire.Bytes(), rc.written())
	}
	if n, _ := io.Copy(io.Discard, r.Body); n != 0 {
		c.fail("%s %q: the direct path took a request with a %d-byte body", r.Method, r.RequestURI, n)
	}
}

// checkDirectWire checks the invariants that hold whatever ReverseProxy does.
func checkDirectWire(wire []byte, r *http.Request, d *direct) error {
	head, ok := bytes.CutSuffix(wire, []byte("\r\n\r\n"))
	if !ok || bytes.Contains(head, []byte("\r\n\r\n")) {
		return errors.New("not one header block ending in CRLF CRLF")
	}
	lines := strings.Split(string(head), "\r\n")
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return fmt.Errorf("bare CR or LF in %q", l)
		}
	}
	method, rest, _ := strings.Cut(lines[0], " ")
	target, proto, _ := strings.Cut(rest, " ")
	if method != r.Method || proto != "HTTP/1.1" || !strings.HasPrefix(target, "/") ||
		strings.IndexFunc(target, func(c rune) bool { return c <= ' ' || c == 0x7f }) >= 0 {
		return fmt.Errorf("request line %q", lines[0])
	}
	h := http.Header{}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		value = textproto.TrimString(value) // as an HTTP/1.1 parser reads it
		if !ok || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
			return fmt.Errorf("header line %q", l)
		}
		h.Add(name, value)
	}
	if got := h["Host"]; len(got) != 1 || got[0] != d.host {
		return fmt.Errorf("Host %q, want %q", got, d.host)
	}
	for k, vv := range h {
		if (hopByHop(k) || k == "Content-Length" || k == "Forwarded") && !(k == "Te" && len(vv) == 1 && vv[0] == "trailers") {
			return fmt.Errorf("hop-by-hop or framing field %s: %q", k, vv)
		}
	}
	for _, v := range r.Header["Connection"] {
		for _, name := range strings.Split(v, ",") {
			k := http.CanonicalHeaderKey(strings.TrimSpace(name))
			switch k {
			case "Host", "Te", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
				continue // the edge's own
			}
			if h[k] != nil {
				return fmt.Errorf("%s sent though the client's Connection names it", k)
			}
		}
	}
	var wantFor []string
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		wantFor = []string{ip}
	}
	wantProto := []string{"http"}
	if r.TLS != nil {
		wantProto = []string{"https"}
	}
	if !reflect.DeepEqual(h["X-Forwarded-For"], wantFor) || !reflect.DeepEqual(h["X-Forwarded-Proto"], wantProto) ||
		!reflect.DeepEqual(h["X-Forwarded-Host"], []string{textproto.TrimString(r.Host)}) {
		// (A field value's surrounding blanks are not part of it; HTTP/2
		// lets a blank in :authority.)
		return fmt.Errorf("X-Forwarded-For %q, -Proto %q, -Host %q; want %q, %q, %q",
			h["X-Forwarded-For"], h["X-Forwarded-Proto"], h["X-Forwarded-Host"], wantFor, wantProto, textproto.TrimString(r.Host))
	}
	br := bufio.NewReader(bytes.NewReader(wire))
	up, err := http.ReadRequest(br)
	if err != nil {
		return fmt.Errorf("does not parse: %v", err)
	}
	if up.ContentLength != 0 || up.TransferEncoding != nil || br.Buffered() != 0 {
		return errors.New("more than one request")
	}
	if up.URL.Path != r.URL.Path || up.URL.RawQuery != r.URL.RawQuery {
		return fmt.Errorf("upstream sees path %q query %q; the edge routed path %q query %q",
			up.URL.Path, up.URL.RawQuery, r.URL.Path, r.URL.RawQuery)
	}
	return nil
}

// sameRequest compares two requests as an upstream would read them.
func sameRequest(direct, reference []byte) error {
	a, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(direct)))
	if err != nil {
		return err
	}
	b, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(reference)))
	if err != nil {
		return fmt.Errorf("ReverseProxy's request does not parse: %v", err)
	}
	switch {
	case a.Method != b.Method:
		return fmt.Errorf("method %q, ReverseProxy %q", a.Method, b.Method)
	case a.RequestURI != b.RequestURI:
		return fmt.Errorf("target %q, ReverseProxy %q", a.RequestURI, b.RequestURI)
	case a.Host != b.Host:
		return fmt.Errorf("Host %q, ReverseProxy %q", a.Host, b.Host)
	case !reflect.DeepEqual(a.Header, b.Header):
		return fmt.Errorf("header %q, ReverseProxy %q", a.Header, b.Header)
	}
	return nil
}

// recordConn is an upstream connection that keeps what the Transport writes
// and, once the request's header is complete, answers 204 and closes.
type recordConn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	done   chan struct{} // closed when the header is complete or the conn closed
	once   sync.Once
	answer *strings.Reader
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.buf.Write(p)
	end := bytes.HasSuffix(c.buf.Bytes(), []byte("\r\n\r\n"))
	c.mu.Unlock()
	if end {
		c.once.Do(func() { close(c.done) })
	}
	return len(p), nil
}

func (c *recordConn) Read(p []byte) (int, error) {
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answer.Read(p)
}

func (c *recordConn) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes())
}

func (c *recordConn) Close() error                     { c.once.Do(func() { close(c.done) }); return nil }
func (c *recordConn) LocalAddr() net.Addr              { return loopback }
func (c *recordConn) RemoteAddr() net.Addr             { return loopback }
func (c *recordConn) SetDeadline(time.Time) error      { return nil }
func (c *recordConn) SetReadDeadline(time.Time) error  { return nil }
func (c *recordConn) SetWriteDeadline(time.Time) error { return nil }

// h2Feed is the client's side of an HTTP/2 connection in
// FuzzDirectRequestHTTP2: it hands the server the client preface and an
// empty SETTINGS frame, then one request's HEADERS frame at a time, each
// once the server has ended the stream before (a HEADERS or DATA frame
// with END_STREAM, or RST_STREAM), and ends the connection after the
// last one or when the server sends GOAWAY or closes.
type h2Feed struct {
	mu      sync.Mutex
	cond    sync.Cond
	chunks  [][]byte
	streams []uint32 // the stream of each chunk; 0 for the preface
	cur     []byte
	wait    uint32 // the stream that must end before the next chunk
	ended   map[uint32]bool
	stop    bool   // GOAWAY seen, or closed
	out     []byte // what the server wrote, not yet a whole frame
}

// h2MaxRequests bounds the requests of one input.
const h2MaxRequests = 8

func newH2Feed(fields string) *h2Feed {
	f := &h2Feed{ended: map[uint32]bool{}}
	f.cond.L = &f.mu
	preface := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	f.chunks = append(f.chunks, appendH2Frame(preface, 0x4, 0, 0, nil)) // SETTINGS
	f.streams = append(f.streams, 0)
	for i, req := range strings.Split(fields, "\n\n") {
		if i == h2MaxRequests {
			break
		}
		var block bytes.Buffer
		enc := hpack.NewEncoder(&block)
		for line := range strings.SplitSeq(req, "\n") {
			if line == "" {
				continue
			}
			name, value, _ := strings.Cut(line, " ")
			enc.WriteField(hpack.HeaderField{Name: name, Value: value})
		}
		id := uint32(2*i + 1)
		const endStream, endHeaders = 0x1, 0x4
		f.chunks = append(f.chunks, appendH2Frame(nil, 0x1, endStream|endHeaders, id, block.Bytes())) // HEADERS
		f.streams = append(f.streams, id)
	}
	return f
}

// appendH2Frame appends an HTTP/2 frame (RFC 9113 section 4.1) to b.
func appendH2Frame(b []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream)
	return append(b, payload...)
}

func (f *h2Feed) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.cur) == 0 {
		for f.wait != 0 && !f.ended[f.wait] && !f.stop {
			f.cond.Wait()
		}
		if f.stop || len(f.chunks) == 0 {
			return 0, io.EOF
		}
		f.cur, f.wait = f.chunks[0], f.streams[0]
		f.chunks, f.streams = f.chunks[1:], f.streams[1:]
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// Write reads the frames the server sends for the ends of streams.
func (f *h2Feed) Write(p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.out = append(f.out, p...)
	for len(f.out) >= 9 {
		n := int(f.out[0])<<16 | int(f.out[1])<<8 | int(f.out[2])
		if len(f.out) < 9+n {
			break
		}
		typ, flags, id := f.out[3], f.out[4], binary.BigEndian.Uint32(f.out[5:9])&(1<<31-1)
		switch {
		case (typ == 0x0 || typ == 0x1) && flags&0x1 != 0, typ == 0x3: // DATA or HEADERS with END_STREAM; RST_STREAM
			f.ended[id] = true
		case typ == 0x7: // GOAWAY
			f.stop = true
		}
		f.out = f.out[9+n:]
	}
	f.cond.Broadcast()
}

func (f *h2Feed) Close() {
	f.mu.Lock()
	f.stop = true
	f.mu.Unlock()
	f.cond.Broadcast()
}
