package accesslog

import (
	"crypto/tls"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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

// appendLine appends e's line to b: byte for byte what the logging
// pipeline's slog handler of the format writes for e.record() (the
// reference, in format_test.go, which checks the two against each other on
// every input shape). Written out because a line through slog cost a few
// microseconds and about 1 KiB of garbage (a Record's attributes past the
// fifth, interface dispatch per attribute), a tenth of what an edge
// spends proxying a request; this costs a few hundred nanoseconds and no
// allocation.
func appendLine(b []byte, e *Entry, json bool) []byte {
	w := lineWriter{b: b, json: json}
	w.start(e.Time)
	path, query, _ := strings.Cut(e.Target, "?")
	w.str("request_id", e.RequestID)
	w.str("host", e.Host)
	if e.Project != "" || e.Service != "" {
		w.str("project", e.Project)
		w.str("service", e.Service)
	}
	w.str("method", e.Method)
	w.str("path", bound(path, maxPath))
	if query != "" {
		w.str("query", queryNames(query))
	}
	w.str("proto", e.Proto)
	w.int("status", int64(e.Status))
	w.int("bytes_in", e.BytesIn)
	w.int("bytes_out", e.BytesOut)
	w.int("duration_us", e.Duration.Microseconds())
	if e.Upstream != "" {
		w.str("upstream", e.Upstream)
		w.int("upstream_duration_us", e.UpstreamDuration.Microseconds())
	}
	w.str("client", e.Client)
	if e.TLSVersion != 0 {
		w.str("tls_version", tls.VersionName(e.TLSVersion))
		w.str("tls_group", groupName(e.TLSGroup))
		w.bool("tls_resumed", e.TLSResumed)
	}
	if e.ClientCertVerified != "" {
		w.str("client_cert_verified", e.ClientCertVerified)
	}
	if e.ClientCert != "" {
		w.str("client_cert", e.ClientCert)
	}
	if e.ClientCertNames != "" {
		w.str("client_cert_names", e.ClientCertNames)
	}
	if e.ClientCertSHA256 != "" {
		w.str("client_cert_sha256", e.ClientCertSHA256)
	}
	if e.UserAgent != "" {
		w.str("user_agent", e.UserAgent)
	}
	return w.end()
}

// lineWriter appends one line in slog's JSON or text form. Keys are
// constants that need no escaping or quoting in either.
type lineWriter struct {
	b    []byte
	json bool
}

func (w *lineWriter) start(t time.Time) {
	if w.json {
		w.b = append(w.b, '{')
		if !t.IsZero() {
			w.b = append(w.b, `"time":"`...)
			w.b = t.AppendFormat(w.b, time.RFC3339Nano)
			w.b = append(w.b, `",`...)
		}
		w.b = append(w.b, `"level":"INFO","msg":"access"`...)
		return
	}
	if !t.IsZero() {
		w.b = append(w.b, "time="...)
		w.b = appendRFC3339Millis(w.b, t)
		w.b = append(w.b, ' ')
	}
	w.b = append(w.b, "level=INFO msg=access"...)
}

func (w *lineWriter) key(k string) {
	if w.json {
		w.b = append(w.b, ',', '"')
		w.b = append(w.b, k...)
		w.b = append(w.b, '"', ':')
		return
	}
	w.b = append(w.b, ' ')
	w.b = append(w.b, k...)
	w.b = append(w.b, '=')
}

func (w *lineWriter) str(k, v string) {
	w.key(k)
	switch {
	case w.json:
		w.b = append(w.b, '"')
		w.b = appendEscapedJSONString(w.b, v)
		w.b = append(w.b, '"')
	case needsQuoting(v):
		w.b = strconv.AppendQuote(w.b, v)
	default:
		w.b = append(w.b, v...)
	}
}

func (w *lineWriter) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *lineWriter) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *lineWriter) end() []byte {
	if w.json {
		w.b = append(w.b, '}')
	}
	return append(w.b, '\n')
}

// appendRFC3339Millis is log/slog's (handler.go): the text handler's time,
// to the millisecond.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...) // drop the 4th digit
}

// safe reports an ASCII byte that a JSON string holds as it is (log/slog's
// and encoding/json's safeSet): all but control characters, the quote and
// the backslash.
func safe(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' }

// appendEscapedJSONString is log/slog's (json_handler.go): s as the inside
// of a JSON string; invalid UTF-8 becomes U+FFFD, and U+2028 and U+2029
// are escaped.
func appendEscapedJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safe(c) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, '\\')
			switch c {
			case '\\', '"':
				b = append(b, c)
			case '\n':
				b = append(b, 'n')
			case '\r':
				b = append(b, 'r')
			case '\t':
				b = append(b, 't')
			default:
				b = append(b, 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// needsQuoting is log/slog's (text_handler.go): whether the text handler
// quotes a value.
func needsQuoting(s string) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != '\\' && (c == ' ' || c == '=' || !safe(c)) {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
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
