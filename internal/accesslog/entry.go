package accesslog

import (
	"crypto/tls"
	"log/slog"
	"strings"
	"time"
)

// Entry is one request as the access log records it. The edge fills it;
// Log copies it, so the caller may reuse it at once.
type Entry struct {
	// Time is when the request's headers had been read.
	Time time.Time
	// RequestID is the request's X-Request-ID (the client's, if
	// ValidRequestID, else NewRequestID's).
	RequestID string
	// Project and Service own Host; empty when no route has Host.
	Project, Service string
	// Host is the host asked for (normal form; bounded to 255 bytes).
	Host string
	// Method is the request's method (bounded to 32 bytes).
	Method string
	// Target is the request target as received (RequestURI): the path
	// and the query. The line holds the path (bounded to 2 KiB) and, in
	// "query", only the query's parameter names (bounded to 1 KiB): query
	// values often carry tokens, signatures and e-mail addresses.
	Target string
	// Proto is the protocol: "HTTP/1.1", "HTTP/2.0".
	Proto string
	// Status is the status code sent (the final one; 101 for an upgrade).
	// 499 (as nginx) when the client went away before an answer began.
	Status int
	// BytesIn and BytesOut count the request and response bodies (not
	// headers), as far as they were read and written.
	BytesIn, BytesOut int64
	// Duration is from Time to the end of the answer.
	Duration time.Duration
	// Upstream is the URL of the upstream the request went to (the last
	// one, after a retry); empty when none was asked.
	Upstream string
	// UpstreamDuration is from the first byte sent to an upstream to the
	// end of its answer, retries included.
	UpstreamDuration time.Duration
	// Client is the client's address, IP:port.
	Client string
	// TLSVersion, TLSGroup and TLSResumed describe the connection's TLS
	// (tls.ConnectionState's Version, CurveID and DidResume); zero over
	// plain HTTP.
	TLSVersion uint16
	TLSGroup   tls.CurveID
	TLSResumed bool
	// ClientCertVerified is, on a route that asks for client certificates
	// (mTLS), "success", "none" (no certificate, optional mode) or "failed"
	// (not verified, optional mode); empty on other routes.
	ClientCertVerified string
	// ClientCert is the subject of the verified client certificate, its
	// DNS and URI names (ClientCertNames, comma-separated) and its SHA-256
	// (hex); empty unless ClientCertVerified is "success".
	ClientCert, ClientCertNames, ClientCertSHA256 string
	// UserAgent is the client's User-Agent (bounded to 256 bytes).
	UserAgent string
}

// Bounds of an entry's strings, applied by Log.
const (
	maxHost      = 255
	maxMethod    = 32
	maxPath      = 2 << 10
	maxQuery     = 1 << 10
	maxUserAgent = 256
	maxOther     = 512 // client address, upstream URL, client certificate
)

// bound returns s cut to n bytes. A cut string is copied, so that it does
// not keep the larger one it was cut from in memory.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.Clone(s[:n])
}

// bound cuts e's strings to their bounds. A long target is split and cut
// here, once, so that the queue never holds a request line of 64 KiB.
func (e *Entry) bound() {
	e.Host = bound(e.Host, maxHost)
	e.Method = bound(e.Method, maxMethod)
	if len(e.Target) > maxPath+maxQuery+1 {
		path, query, ok := strings.Cut(e.Target, "?")
		path, query = bound(path, maxPath), bound(query, maxQuery)
		if ok {
			e.Target = path + "?" + query
		} else {
			e.Target = path
		}
	}
	e.RequestID = bound(e.RequestID, MaxRequestIDLen)
	e.UserAgent = bound(e.UserAgent, maxUserAgent)
	e.Client = bound(e.Client, maxOther)
	e.Upstream = bound(e.Upstream, maxOther)
	e.ClientCert = bound(e.ClientCert, maxOther)
	e.ClientCertNames = bound(e.ClientCertNames, maxOther)
	e.Project = bound(e.Project, maxHost)
	e.Service = bound(e.Service, maxHost)
	e.Proto = bound(e.Proto, maxMethod)
}

// record is e as a slog record: the message "access" and the fields in a
// fixed order. Fields that do not apply (no route, no query, no upstream,
// plain HTTP, no client certificate, no User-Agent) are left out.
func (e *Entry) record() slog.Record {
	r := slog.NewRecord(e.Time, slog.LevelInfo, "access", 0)
	path, query, _ := strings.Cut(e.Target, "?")
	r.AddAttrs(
		slog.String("request_id", e.RequestID),
		slog.String("host", e.Host),
	)
	if e.Project != "" || e.Service != "" {
		r.AddAttrs(slog.String("project", e.Project), slog.String("service", e.Service))
	}
	r.AddAttrs(
		slog.String("method", e.Method),
		slog.String("path", bound(path, maxPath)),
	)
	if query != "" {
		r.AddAttrs(slog.String("query", queryNames(query)))
	}
	r.AddAttrs(
		slog.String("proto", e.Proto),
		slog.Int("status", e.Status),
		slog.Int64("bytes_in", e.BytesIn),
		slog.Int64("bytes_out", e.BytesOut),
		slog.Int64("duration_us", e.Duration.Microseconds()),
	)
	if e.Upstream != "" {
		r.AddAttrs(slog.String("upstream", e.Upstream), slog.Int64("upstream_duration_us", e.UpstreamDuration.Microseconds()))
	}
	r.AddAttrs(slog.String("client", e.Client))
	if e.TLSVersion != 0 {
		r.AddAttrs(
			slog.String("tls_version", tls.VersionName(e.TLSVersion)),
			slog.String("tls_group", groupName(e.TLSGroup)),
			slog.Bool("tls_resumed", e.TLSResumed),
		)
	}
	if e.ClientCertVerified != "" {
		r.AddAttrs(slog.String("client_cert_verified", e.ClientCertVerified))
	}
	if e.ClientCert != "" {
		r.AddAttrs(slog.String("client_cert", e.ClientCert))
	}
	if e.ClientCertNames != "" {
		r.AddAttrs(slog.String("client_cert_names", e.ClientCertNames))
	}
	if e.ClientCertSHA256 != "" {
		r.AddAttrs(slog.String("client_cert_sha256", e.ClientCertSHA256))
	}
	if e.UserAgent != "" {
		r.AddAttrs(slog.String("user_agent", e.UserAgent))
	}
	return r
}

// groupName names a key exchange group. A resumed TLS 1.2 session or a
// TLS 1.3 resumption without key exchange has none: "".
func groupName(g tls.CurveID) string {
	if g == 0 {
		return ""
	}
	return g.String()
}

// queryNames returns the parameter names of a raw query, in order, joined
// by "&", without their values: "q&page&token" for
// "q=shoes&page=2&token=s3cret". A name is written as it was sent (still
// percent-encoded).
func queryNames(query string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(query, "&") {
		name, _, _ := strings.Cut(part, "=")
		if name == "" {
			continue
		}
		if b.Len()+len(name)+1 > maxQuery {
			break
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(name)
	}
	return b.String()
}
