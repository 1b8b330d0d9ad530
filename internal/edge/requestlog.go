package edge

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/accesslog"
)

// requestID keeps the client's X-Request-ID if accesslog.ValidRequestID,
// else puts a new one in r's header (so the upstream gets it); either way it
// sets it in the answer's header, and returns it. A proxied answer sets it
// again when it commits (attempt.WriteHeader), over the upstream's.
func requestID(w http.ResponseWriter, r *http.Request) []string {
	v := r.Header[accesslog.RequestIDHeader]
	if len(v) != 1 || !accesslog.ValidRequestID(v[0]) {
		v = []string{accesslog.NewRequestID()}
		r.Header[accesslog.RequestIDHeader] = v
	}
	// Shared by the request and the answer: safe because len equals cap
	// (an Add reallocates) and nothing writes into it in place.
	w.Header()[accesslog.RequestIDHeader] = v
	return v
}

// record is one request's access-log entry while the request is served:
// it wraps the client's ResponseWriter to see the status and count the
// body bytes. Every method works on a nil *record (access log off) and
// does nothing.
type record struct {
	http.ResponseWriter
	flusher    http.Flusher
	e          accesslog.Entry
	body       *limitedBody
	upstreamAt time.Time
}

var records = sync.Pool{New: func() any { return new(record) }}

// startRecord begins r's entry, or returns nil when there is no access log.
func (s *Server) startRecord(w http.ResponseWriter, r *http.Request, id []string) *record {
	if s.cfg.AccessLog == nil {
		return nil
	}
	rec := records.Get().(*record)
	rec.ResponseWriter = w
	rec.flusher, _ = w.(http.Flusher)
	rec.e = accesslog.Entry{
		Time:      time.Now(),
		RequestID: id[0],
		Method:    r.Method,
		Target:    r.RequestURI,
		Proto:     r.Proto,
		Client:    r.RemoteAddr,
	}
	if ua := r.Header["User-Agent"]; len(ua) > 0 {
		rec.e.UserAgent = ua[0]
	}
	if cs := r.TLS; cs != nil {
		rec.e.TLSVersion, rec.e.TLSGroup, rec.e.TLSResumed = cs.Version, cs.CurveID, cs.DidResume
	}
	return rec
}

// route notes the host asked for and its route (nil if none).
func (rec *record) route(host string, rt *route) {
	if rec == nil {
		return
	}
	if rt != nil {
		rec.e.Host, rec.e.Project, rec.e.Service = rt.Host, rt.Project(), rt.Service
	} else {
		rec.e.Host = host
	}
}

// clientCert notes what the connection proved of the client's certificate.
func (rec *record) clientCert(c clientCert) {
	if rec == nil {
		return
	}
	rec.e.ClientCertVerified = c.verified
	if c.leaf != nil {
		rec.e.ClientCert = c.leaf.Subject.String()
		rec.e.ClientCertNames = c.names()
		rec.e.ClientCertSHA256 = c.sha256()
	}
}

// upstream notes that up is being asked.
func (rec *record) upstream(up *upstream) {
	if rec == nil {
		return
	}
	rec.e.Upstream = up.key
	if rec.upstreamAt.IsZero() {
		rec.upstreamAt = time.Now()
	}
}

// upstreamDone notes the end of the upstream's answer.
func (rec *record) upstreamDone() {
	if rec == nil {
		return
	}
	rec.e.UpstreamDuration = time.Since(rec.upstreamAt)
}

// finishRecord completes rec and hands it to the access log. Deferred by
// the handlers, so that an answer cut off by a panic (http.ErrAbortHandler:
// the upstream failed mid-body) is logged too.
func (s *Server) finishRecord(rec *record, r *http.Request) {
	if rec == nil {
		return
	}
	e := &rec.e
	end := time.Now()
	e.Duration = end.Sub(e.Time)
	if e.Status == 0 {
		if r.Context().Err() != nil {
			e.Status = 499 // the client went away (nginx's code)
		} else {
			e.Status = http.StatusOK // net/http's answer to a handler that wrote nothing
		}
	}
	if rec.body != nil {
		e.BytesIn = rec.body.read.Load()
	}
	if e.Upstream != "" && e.UpstreamDuration == 0 {
		e.UpstreamDuration = end.Sub(rec.upstreamAt)
	}
	s.cfg.AccessLog(e)
	*rec = record{}
	records.Put(rec)
}

func (rec *record) WriteHeader(code int) {
	if rec.e.Status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		rec.e.Status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *record) Write(p []byte) (int, error) {
	if rec.e.Status == 0 {
		rec.e.Status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(p)
	rec.e.BytesOut += int64(n)
	return n, err
}

func (rec *record) Flush() {
	if rec.flusher != nil {
		rec.flusher.Flush()
	}
}

// Hijack is how ReverseProxy takes over an upgraded connection (WebSocket):
// the upstream's 101 is written on the connection, past WriteHeader.
func (rec *record) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(rec.ResponseWriter).Hijack()
	if err == nil && rec.e.Status == 0 {
		rec.e.Status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// Unwrap lets http.ResponseController (ReverseProxy's flushes and
// upgrades) reach the server's ResponseWriter.
func (rec *record) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
