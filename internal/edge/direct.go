package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// direct forwards the common request (GET or HEAD, no body, no upgrade) to
// a plain-HTTP upstream on the handler's own goroutine: it writes the
// request on an idle keep-alive connection and reads the answer with
// http.ReadResponse (chunked bodies, trailers, 1xx and Connection: close are
// the standard library's parsing). http.Transport, behind
// httputil.ReverseProxy, hands each request to two goroutines per upstream
// connection (writeLoop, readLoop) over channels and clones the request and
// its headers; even over a RoundTripper that does what this path does,
// ReverseProxy's own per-request work costs far more than the 3 % of a
// request's CPU that the standard library's rules were worth (the A/B is
// BenchmarkProxyPath; figures in BENCHMARKS.md, "Proxy path"). Every other
// request (bodies, upgrades, https upstreams, upstream URLs with a path)
// still goes through ReverseProxy.
//
// It forwards exactly what the ReverseProxy configured in newUpstream does:
// hop-by-hop fields (and those named in Connection) dropped both ways, the
// client's Forwarded and X-Forwarded-* replaced by the edge's
// X-Forwarded-For/Host/Proto, Host set to the upstream's, no User-Agent or
// Accept-Encoding added, every write of the body flushed to the client.
// FuzzDirectRequest (HTTP/1.1) and FuzzDirectRequestHTTP2 check that
// against ReverseProxy for every request the servers accept.
type direct struct {
	addr          string // host:port to dial
	host          string // Host header sent upstream
	dialer        *net.Dialer
	headerTimeout time.Duration // ResponseHeaderTimeout

	mu     sync.Mutex
	idle   []*directConn // most recently used last
	closed bool
}

// directConn is one keep-alive connection to the upstream.
type directConn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt int64  // nanotime when put back
	abort  func() // fails the connection's pending I/O; made once, not per request
}

// newDirect returns the direct path for target, or nil if target is not a
// plain-HTTP URL without a path, or has a host http.Transport would not send
// as it is in Host.
func newDirect(target *url.URL, cfg *Config, dialer *net.Dialer) *direct {
	if target.Scheme != "http" || target.Path != "" || target.RawPath != "" {
		return nil
	}
	// As http.Transport: an internationalised name is dialled and sent in
	// punycode, and Host carries no IPv6 zone (RFC 6874). Transport blanks
	// a Host it finds invalid; such a target goes through ReverseProxy.
	host, err := httpguts.PunycodeHostPort(target.Host)
	if err != nil || !httpguts.ValidHostHeader(host) {
		return nil
	}
	ascii := &url.URL{Host: host}
	port := ascii.Port()
	if port == "" {
		port = "80"
	}
	return &direct{
		addr:          net.JoinHostPort(ascii.Hostname(), port),
		host:          removeZone(host),
		dialer:        dialer,
		headerTimeout: cfg.ResponseHeaderTimeout,
	}
}

// takes reports whether r can go the direct way.
func (d *direct) takes(r *http.Request) bool {
	if d == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 || r.URL.Opaque != "" ||
		!strings.HasPrefix(r.URL.Path, "/") {
		return false
	}
	h := r.Header
	if h["Upgrade"] != nil || h["Expect"] != nil {
		return false
	}
	return cleanQuery(r.URL.RawQuery)
}

// cleanQuery reports a query that ReverseProxy would pass through as it is
// (it re-encodes one with ';', a bad escape or more than 1000 parameters)
// and that can stand in an HTTP/1.1 request line: no space or control
// byte (HTTP/1.x servers refuse those, HTTP/2's lets them through in
// :path; the handler answers 400, see validQuery).
func cleanQuery(q string) bool {
	if strings.Count(q, "&") >= 1000 {
		return false
	}
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c <= ' ' || c == 0x7f, c == ';':
			return false
		case c == '%':
			if i+2 >= len(q) || !ishex(q[i+1]) || !ishex(q[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// setReadDeadline sets c's read deadline to t, unless ctx (the client's
// request) has ended: the abort that ctx's end runs (c.abort, a deadline in
// the past) may already have happened, and a new deadline would undo it,
// leaving the upstream read to wait for its timeout after the client left.
// An abort after the check still fails the read, as it comes after the set.
func (c *directConn) setReadDeadline(ctx context.Context, t time.Time) error {
	c.nc.SetReadDeadline(t)
	return ctx.Err()
}

// errDirect1xx is returned when an upstream sends more informational
// answers than a client would be sent (http.Transport allows 5).
var errDirect1xx = errors.New("edge: upstream sent too many 1xx responses")

// aLongTimeAgo is a deadline that fails every pending and future I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// serve sends r to the upstream and its answer to a. It returns an error
// only when no response was begun: then r may be sent elsewhere. A failure
// after the response began aborts the client's connection or stream, as
// ReverseProxy does.
func (d *direct) serve(a *attempt, r *http.Request) error {
	c, reused, err := d.get(r.Context())
	if err != nil {
		return err
	}
	// The client going away (or its HTTP/2 stream reset) fails the
	// upstream I/O at once.
	stop := context.AfterFunc(r.Context(), c.abort)
	resp, err := d.roundTrip(c, a, r)
	if err != nil && reused && r.Context().Err() == nil && staleConn(err) {
		// The upstream closed the idle connection before it saw the
		// request (GET and HEAD are safe to send again).
		stop()
		c.nc.Close()
		if c, err = d.dial(r.Context()); err != nil {
			return err
		}
		stop = context.AfterFunc(r.Context(), c.abort)
		resp, err = d.roundTrip(c, a, r)
	}
	if err != nil {
		stop()
		c.nc.Close()
		return err
	}
	return d.answer(c, a, resp, stop)
}

// roundTrip writes r and reads the response headers, forwarding 1xx
// answers to the client.
func (d *direct) roundTrip(c *directConn, a *attempt, r *http.Request) (*http.Response, error) {
	if err := d.writeRequest(c.bw, r); err != nil {
		return nil, err
	}
	if d.headerTimeout > 0 {
		if err := c.setReadDeadline(r.Context(), time.Now().Add(d.headerTimeout)); err != nil {
			return nil, err
		}
	}
	// ReadResponse turns "closed before a byte" into ErrUnexpectedEOF;
	// serve must tell it apart (staleConn).
	if _, err := c.br.Peek(1); err != nil {
		return nil, err
	}
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(c.br, r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 {
			// A body already read whole needs no more reading: the
			// deadline stays until the next request sets its own.
			if d.headerTimeout > 0 && (resp.ContentLength < 0 || int64(c.br.Buffered()) < resp.ContentLength) {
				if err := c.setReadDeadline(r.Context(), time.Time{}); err != nil {
					return nil, err // serve closes c; its body is not drained
				}
			}
			return resp, nil
		}
		if resp.StatusCode == http.StatusSwitchingProtocols || n >= 5 {
			return nil, errDirect1xx
		}
		// As ReverseProxy: pass the informational answer on, then forget
		// its fields.
		h := a.Header()
		removeHopByHop(resp.Header)
		for k, vv := range resp.Header {
			h[k] = vv
		}
		a.WriteHeader(resp.StatusCode)
		clear(h)
	}
}

// writeRequest writes r's request line and header to the upstream.
func (d *direct) writeRequest(bw *bufio.Writer, r *http.Request) error {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.EscapedPath())
	if r.URL.ForceQuery || r.URL.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(d.host)
	bw.WriteString("\r\n")
	conn := r.Header["Connection"]
	te := false
	for k, vv := range r.Header {
		switch {
		case k == "Te":
			// Hop-by-hop, but "trailers" goes on, as in ReverseProxy.
			te = httpguts.HeaderValuesContainsToken(vv, "trailers")
			continue
		case hopByHop(k):
			continue
		}
		switch k {
		case "Host", "Content-Length", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
			continue // the edge writes its own
		case "User-Agent":
			// http.Transport sends the first only, and none when it is empty.
			if len(vv) == 0 || vv[0] == "" {
				continue
			}
			vv = vv[:1]
		}
		// Field names compare in ASCII case only, as in ReverseProxy
		// (strings.EqualFold would let the Kelvin sign name "K").
		if conn != nil && httpguts.HeaderValuesContainsToken(conn, k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if te {
		bw.WriteString("Te: trailers\r\n")
	}
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString("X-Forwarded-For: ")
		bw.WriteString(ip)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	bw.WriteString(r.Host)
	if r.TLS != nil {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\n\r\n")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\n\r\n")
	}
	return bw.Flush()
}

// answer sends resp to the client and puts c back when the body was read
// to its end on a connection that stays open.
// stop is the context.AfterFunc that aborts c when the client goes away.
func (d *direct) answer(c *directConn, a *attempt, resp *http.Response, stop func() bool) error {
	h := a.Header()
	removeHopByHop(resp.Header)
	for k, vv := range resp.Header {
		// resp is not used after this: its slices can be handed over.
		if old := h[k]; old != nil {
			h[k] = append(old, vv...)
		} else {
			h[k] = vv
		}
	}
	announced := len(resp.Trailer)
	if announced > 0 {
		announceTrailers(h, resp.Trailer)
	}
	a.WriteHeader(resp.StatusCode)

	flusher, _ := a.ResponseWriter.(http.Flusher)
	if failed := copyBody(a, flusher, resp); !stop() || failed != nil {
		c.nc.Close()
		// As ReverseProxy: the client must not take a cut-off body for a
		// whole one.
		panic(http.ErrAbortHandler)
	}
	resp.Body.Close() // at EOF: releases nothing but the reader
	if resp.Close {
		c.nc.Close()
	} else {
		d.put(c)
	}
	if len(resp.Trailer) > 0 {
		if flusher != nil {
			flusher.Flush() // chunked, so the trailers can follow
		}
		sendTrailers(h, resp.Trailer, announced)
	}
	return nil
}

// copyBody copies resp's body to a, flushing every write but the last of a
// body of known length (that one is flushed when the handler returns, with
// the end of the response: over HTTP/2 one frame and one hand-off fewer).
func copyBody(a *attempt, flusher http.Flusher, resp *http.Response) error {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	var total int64
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := a.Write(buf[:n]); werr != nil {
				return werr
			}
			total += int64(n)
			if flusher != nil && (resp.ContentLength < 0 || total < resp.ContentLength) {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// announceTrailers names the upstream's announced trailers in h's Trailer
// field.
func announceTrailers(h, trailer http.Header) {
	keys := make([]string, 0, len(trailer))
	for k := range trailer {
		keys = append(keys, k)
	}
	h.Add("Trailer", strings.Join(keys, ", "))
}

// sendTrailers puts the trailers the upstream sent into h, once the body
// is written: as announced ones when they are the announced set, otherwise
// with http.TrailerPrefix.
func sendTrailers(h, trailer http.Header, announced int) {
	if len(trailer) == announced {
		for k, vv := range trailer {
			h[k] = append(h[k], vv...)
		}
		return
	}
	for k, vv := range trailer {
		k = http.TrailerPrefix + k
		h[k] = append(h[k], vv...)
	}
}

// get returns an idle connection (reused true) or dials a new one.
func (d *direct) get(ctx context.Context) (*directConn, bool, error) {
	now := nanotime()
	d.mu.Lock()
	for n := len(d.idle); n > 0; n = len(d.idle) {
		c := d.idle[n-1]
		d.idle[n-1] = nil
		d.idle = d.idle[:n-1]
		if now-c.idleAt < int64(upstreamIdleConnTimeout) {
			d.mu.Unlock()
			return c, true, nil
		}
		c.nc.Close()
	}
	d.mu.Unlock()
	c, err := d.dial(ctx)
	return c, false, err
}

func (d *direct) dial(ctx context.Context) (*directConn, error) {
	nc, err := d.dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	c := &directConn{nc: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10)}
	c.abort = func() { nc.SetDeadline(aLongTimeAgo) }
	return c, nil
}

// put keeps c for the next request, up to upstreamIdleConnsPerHost.
func (d *direct) put(c *directConn) {
	c.idleAt = nanotime()
	d.mu.Lock()
	if d.closed || len(d.idle) >= upstreamIdleConnsPerHost {
		d.mu.Unlock()
		c.nc.Close()
		return
	}
	d.idle = append(d.idle, c)
	d.mu.Unlock()
}

// closeIdle closes idle connections older than maxIdle (all when 0), and
// every later one too when stop is set.
func (d *direct) closeIdle(maxIdle time.Duration, stop bool) {
	if d == nil {
		return
	}
	now := nanotime()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = d.closed || stop
	keep := d.idle[:0]
	for _, c := range d.idle {
		if maxIdle > 0 && now-c.idleAt < int64(maxIdle) {
			keep = append(keep, c)
		} else {
			c.nc.Close()
		}
	}
	clear(d.idle[len(keep):])
	d.idle = keep
}

// removeZone drops the zone of an IPv6 literal host, as net/http does.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndexByte(host, ']')
	j := strings.LastIndexByte(host[:max(i, 0)], '%')
	if i < 0 || j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

// staleConn reports an error that means the upstream closed a kept-alive
// connection before reading the request: nothing at all came back.
func staleConn(err error) bool {
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// hopHeaders are the fields a proxy drops (RFC 9110 section 7.6.1): the
// list of httputil.ReverseProxy, whose behaviour the direct path keeps (its
// differential fuzz test compares the two). It is the one definition of
// that list in the edge, for requests (writeRequest, through hopByHop) and
// responses (removeHopByHop) alike; names are in canonical form, as the
// keys of a parsed header are.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// hopByHop reports whether k is one of hopHeaders.
func hopByHop(k string) bool {
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	return false
}

// removeHopByHop drops from h the hop-by-hop fields and those that its
// Connection field names. It deletes the nine names rather than ranging
// over h: iterating a map on every proxied answer cost about 2 % of the
// request's CPU (BENCHMARKS.md, "The collector on a small heap").
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(sf))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}
