package edge

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/internal/accesslog"
	"github.com/spine-platform/spine/internal/hostname"
)

// httpsHandler serves requests that arrived over TLS.
type httpsHandler struct{ s *Server }

func (h httpsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if r.ProtoMajor == 2 {
		defer s.countStream(r)
	}
	alt := s.altSvcHeader()
	if alt != nil && r.ProtoMajor < 3 {
		w.Header()["Alt-Svc"] = alt
	} else {
		alt = nil
	}
	id := requestID(w, r)
	rec := s.startRecord(w, r, id)
	if rec != nil {
		defer s.finishRecord(rec, r)
		w = rec
	}
	if closeAfter(r) {
		w.Header().Set("Connection", "close")
	}
	host := hostname.Clean(r.Host)
	rt, ok := s.route(r.Context(), host)
	if !ok {
		rec.route(host, nil)
		writePage(w, r, http.StatusNotFound, nil, notFoundPage(host))
		return
	}
	rec.route(host, &rt)
	m := s.recorder(&rt)
	if m == nil {
		s.serveRoute(w, r, &rt, host, alt, rec)
		return
	}
	// One observation per request, deferred so that a request the proxy
	// aborts (http.ErrAbortHandler: the client went away mid-answer) is
	// counted too, as statusClientGone.
	start := time.Now()
	code := statusClientGone
	defer func() { m.Observe(code, r.ProtoMajor, r.ProtoMinor, time.Since(start)) }()
	code = s.serveRoute(w, r, &rt, host, alt, rec)
}

// statusClientGone is the status code counted for a request whose client
// went away before it was answered (nginx's 499).
const statusClientGone = 499

// serveRoute answers r, a request for rt's host, and returns the status
// code it answered with (statusClientGone if none).
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, rt *route, host string, alt []string, rec *record) int {
	// A client may reuse a connection made for one name for another name on
	// the same certificate (HTTP/2 coalescing); tenants must not share one.
	if r.TLS != nil && hostname.Clean(r.TLS.ServerName) != host {
		writePage(w, r, http.StatusMisdirectedRequest, rt.hsts, misdirectedPage(host))
		return http.StatusMisdirectedRequest
	}
	// Client-certificate headers are the edge's to set, on every route.
	stripClientCertHeaders(r.Header)
	if rt.mtls != nil {
		cc, ok := rt.mtls.check(r, time.Now())
		rec.clientCert(cc)
		if !ok {
			// Made before the route required a certificate, or under
			// another CA: a new connection is asked for one.
			writePage(w, r, http.StatusMisdirectedRequest, rt.hsts, misdirectedPage(host))
			return http.StatusMisdirectedRequest
		}
		cc.set(r.Header)
	}
	if rt.Suspended {
		writePage(w, r, http.StatusServiceUnavailable, rt.hsts, suspendedPage(rt.Service))
		return http.StatusServiceUnavailable
	}
	if r.ProtoMajor >= 2 && !validQuery(r.URL.RawQuery) {
		writePage(w, r, http.StatusBadRequest, rt.hsts, badTargetPage)
		return http.StatusBadRequest
	}
	// ContentLength 0 means no body in both protocols (HTTP/2 gives even
	// a bodiless GET a Body value, so r.Body != http.NoBody would not do).
	var body *limitedBody
	if r.ContentLength != 0 {
		if s.cfg.MaxBodyBytes > 0 && r.ContentLength > s.cfg.MaxBodyBytes {
			writePage(w, r, http.StatusRequestEntityTooLarge, rt.hsts, tooLargePage)
			return http.StatusRequestEntityTooLarge
		}
		body = &limitedBody{rc: r.Body, limit: s.cfg.MaxBodyBytes, left: s.cfg.MaxBodyBytes}
		r.Body = body
		if rec != nil {
			rec.body = body
		}
	}
	return s.proxy(w, r, rt, body, alt, rec)
}

// proxy sends r to an upstream of rt, and once more to another upstream when
// the first fails before answering and r is safe to repeat. It returns the
// status code answered (statusClientGone if none).
func (s *Server) proxy(w http.ResponseWriter, r *http.Request, rt *route, body *limitedBody, alt []string, rec *record) int {
	up := rt.pool.pick()
	rec.upstream(up)
	code, err := forward(up, w, r, rt.hsts, alt)
	rec.upstreamDone()
	if err != nil {
		return s.proxyFailed(w, r, rt, body, up, code, err, alt, rec)
	}
	return code
}

// proxyFailed handles err, the failure of up to answer r: it answers the
// client or retries on another upstream. (Apart from proxy, so that the
// common path's stack frame stays small: each HTTP/2 request runs on a new
// goroutine, whose stack is copied each time it has to grow.)
func (s *Server) proxyFailed(w http.ResponseWriter, r *http.Request, rt *route, body *limitedBody, up *upstream, code int, err error, alt []string, rec *record) int {
	if r.Context().Err() != nil {
		return answered(code) // the client went away; not the upstream's fault
	}
	if body != nil && body.failed.Load() {
		if body.tooLarge.Load() {
			writePage(w, r, http.StatusRequestEntityTooLarge, rt.hsts, tooLargePage)
			return http.StatusRequestEntityTooLarge
		}
		writePage(w, r, http.StatusBadRequest, rt.hsts, badRequestPage)
		return http.StatusBadRequest
	}
	up.markDown(s.cfg.FailCooldown)
	s.log.Warn("upstream failed", "host", rt.Host, "project", rt.Project(), "service", rt.Service, "upstream", up.key, "err", err,
		"request_id", r.Header[accesslog.RequestIDHeader][0])
	if code == 0 && body == nil && idempotent(r.Method) {
		if next := rt.pool.other(up); next != nil {
			rec.upstream(next)
			code, err = forward(next, w, r, rt.hsts, alt)
			rec.upstreamDone()
			if err == nil {
				return code
			}
			if r.Context().Err() != nil {
				return answered(code)
			}
			next.markDown(s.cfg.FailCooldown)
			s.log.Warn("upstream failed", "host", rt.Host, "project", rt.Project(), "service", rt.Service, "upstream", next.key, "err", err, "retry", true,
				"request_id", r.Header[accesslog.RequestIDHeader][0])
		}
	}
	if code != 0 {
		return code
	}
	writePage(w, r, http.StatusBadGateway, rt.hsts, badGatewayPage(rt.Service))
	return http.StatusBadGateway
}

// answered is the status to count for a request whose answer began with
// code (0: none began).
func answered(code int) int {
	if code == 0 {
		return statusClientGone
	}
	return code
}

// forward proxies r to up. It returns the status code of the response it
// began (0 if none), and the error that kept the upstream from answering,
// if any. hsts and alt, if not nil, are the Strict-Transport-Security and
// Alt-Svc of the answer.
func forward(up *upstream, w http.ResponseWriter, r *http.Request, hsts, alt []string) (int, error) {
	a := attempts.Get().(*attempt)
	a.ResponseWriter, a.hsts, a.alt, a.close, a.reqID = w, hsts, alt, closeAfter(r), r.Header[accesslog.RequestIDHeader]
	if up.direct.takes(r) {
		a.err = up.direct.serve(a, r)
	} else {
		up.serveProxy(a, r)
	}
	code, err := a.code, a.err
	*a = attempt{}
	attempts.Put(a)
	return code, err
}

// attempt wraps the client's ResponseWriter for one try at an upstream: it
// catches the proxy's error instead of answering (so the request can be
// retried and the error page name the service), and sets HSTS when the
// response is committed (after any 1xx, whose headers ReverseProxy clears).
// It sets the edge's Alt-Svc the same way, in place of any the upstream
// sent: that one would name the upstream's port, not the edge's.
type attempt struct {
	http.ResponseWriter
	hsts  []string
	alt   []string
	reqID []string // the request's X-Request-ID, set on commit over the upstream's
	close bool     // see closeAfter; set again on commit, as a 1xx clears headers
	err   error
	wrote bool
	code  int // the status code committed, once wrote
}

var attempts = sync.Pool{New: func() any { return new(attempt) }}

func (a *attempt) WriteHeader(code int) {
	if code >= 200 && !a.wrote {
		a.wrote, a.code = true, code
		if a.hsts != nil {
			// The slice is shared by all requests of the route: safe because
			// its len equals its cap, so an Add reallocates, and nothing
			// writes into it in place.
			a.Header()["Strict-Transport-Security"] = a.hsts
		}
		if a.alt != nil {
			a.Header()["Alt-Svc"] = a.alt // shared like hsts, and as safe
		}
		if a.close {
			a.Header().Set("Connection", "close")
		}
		a.Header()[accesslog.RequestIDHeader] = a.reqID
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *attempt) Write(p []byte) (int, error) {
	if !a.wrote {
		a.WriteHeader(http.StatusOK)
	}
	return a.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController (used by ReverseProxy to flush and to
// hijack for upgrades) reach the server's ResponseWriter.
func (a *attempt) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// recordError is every upstream proxy's ErrorHandler.
func recordError(w http.ResponseWriter, _ *http.Request, err error) {
	if a, ok := w.(*attempt); ok {
		a.err = err
		return
	}
	w.WriteHeader(http.StatusBadGateway)
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// limitedBody enforces Config.MaxBodyBytes on a request body and records
// whether reading it failed, so that a client's broken or oversized upload
// is not blamed on the upstream. Its fields are read by the handler while
// the transport may still be reading, hence the atomics.
type limitedBody struct {
	rc       io.ReadCloser
	limit    int64
	left     int64        // bytes still allowed; negative: unlimited
	read     atomic.Int64 // bytes read, for the access log
	failed   atomic.Bool
	tooLarge atomic.Bool
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		n, err := b.rc.Read(p)
		b.read.Add(int64(n))
		b.note(err)
		return n, err
	}
	if b.left == 0 {
		// Read one byte more to tell "exactly at the limit" from "over it".
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			b.tooLarge.Store(true)
			b.failed.Store(true)
			return 0, &http.MaxBytesError{Limit: b.limit}
		}
		b.note(err)
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	b.read.Add(int64(n))
	b.note(err)
	return n, err
}

func (b *limitedBody) note(err error) {
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// closeAfter reports an HTTP/1.x request with a chunked body: its connection
// is closed after the answer. net/http accepts a request with both
// Content-Length and Transfer-Encoding, drops Content-Length and reads the
// chunked body, but keeps the connection open; a proxy in front of Spine that
// framed the request by its Content-Length would then see the bytes after
// the chunked body as part of the body while Spine reads them as a second
// request (request smuggling). RFC 9112 section 6.3 requires closing the
// connection after such a request; the handler cannot tell whether
// Content-Length was there, so every chunked HTTP/1.x request closes it.
func closeAfter(r *http.Request) bool {
	return r.ProtoMajor == 1 && len(r.TransferEncoding) > 0
}

// validQuery reports a query without a space or control byte. HTTP/1.x
// servers refuse a request target with one; net/http's HTTP/2 and quic-go's
// HTTP/3 servers take it from :path as it is, and both proxy paths would
// write it into the upstream's HTTP/1.1 request line, which would then not
// parse (RFC 9113 section 8.3.1 makes such a request malformed).
func validQuery(q string) bool {
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
