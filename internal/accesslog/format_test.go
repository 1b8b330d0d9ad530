package accesslog

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/logging"
)

// record is e as a slog record (the reference for appendLine): the message "access" and the fields in a
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

// viaSlog is e's line as the logging pipeline's handler writes it.
func viaSlog(t testing.TB, e *Entry, format logging.Format) string {
	var buf bytes.Buffer
	if err := logging.New(&buf, format, slog.LevelInfo).Handler().Handle(context.Background(), e.record()); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// hostileStrings are values that exercise every branch of JSON escaping
// and text quoting.
var hostileStrings = []string{
	"", " ", "=", "a=b", `"`, `\`, `a\"b`, "\n", "\r\n", "\t", "\x00", "\x1f", "\x7f", "é", "日本",
	"\u2028", "\u2029", "\xff", "a\xc3", "\u00a0", "\u200b", "\ufeff", "<script>&", "x y", "emoji 🎉",
	strings.Repeat("a", 300), "%0d%0a", "\U0001F600", "\u0085",
}

// TestLineMatchesSlog checks appendLine against the pipeline's slog
// handlers, in both formats, for sample entries and every hostile string
// in every string field.
func TestLineMatchesSlog(t *testing.T) {
	entries := []Entry{sample(), {Time: time.Unix(0, 0).UTC(), RequestID: "r", Status: 404}, {}}
	plain := sample()
	plain.TLSVersion, plain.Upstream, plain.Target, plain.UserAgent, plain.Project, plain.Service = 0, "", "/", "", "", ""
	entries = append(entries, plain)
	for _, s := range hostileStrings {
		e := sample()
		e.RequestID, e.Host, e.Project, e.Method, e.Proto, e.Client, e.Upstream, e.ClientCert, e.UserAgent = s, s, s, s, s, s, s, s, s
		e.ClientCertVerified, e.ClientCertNames, e.ClientCertSHA256 = s, s, s
		e.Target = s + "?" + s + "=v&" + s
		entries = append(entries, e)
		e.Time = time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.FixedZone("x", 5*3600+1800))
		entries = append(entries, e)
	}
	for i := range entries {
		for _, format := range []logging.Format{logging.JSON, logging.Text} {
			e := entries[i]
			want := viaSlog(t, &e, format)
			if got := string(appendLine(nil, &e, format == logging.JSON)); got != want {
				t.Errorf("%s, entry %d:\n got  %q\n want %q", format, i, got, want)
			}
		}
	}
}

// FuzzLine checks appendLine against the pipeline's slog handlers for any
// strings, counts and times.
func FuzzLine(f *testing.F) {
	for _, s := range hostileStrings {
		f.Add(s, s, "/p?"+s, int64(1), int64(1700000000123456789), true)
	}
	f.Fuzz(func(t *testing.T, a, b, target string, n, unixNano int64, resumed bool) {
		e := Entry{
			Time: time.Unix(0, unixNano).UTC(), RequestID: a, Project: b, Service: a, Host: b, Method: a,
			Target: target, Proto: b, Status: int(n), BytesIn: n, BytesOut: -n, Duration: time.Duration(n),
			Upstream: a, UpstreamDuration: time.Duration(n), Client: b, TLSVersion: tls.VersionTLS12,
			TLSGroup: tls.CurveID(n), TLSResumed: resumed, ClientCert: a, UserAgent: b,
			ClientCertVerified: b, ClientCertNames: a, ClientCertSHA256: b,
		}
		if y := e.Time.Year(); y < 0 || y >= 10000 {
			return // slog writes an error for such a time; the edge's clock has none
		}
		for _, format := range []logging.Format{logging.JSON, logging.Text} {
			if got, want := string(appendLine(nil, &e, format == logging.JSON)), viaSlog(t, &e, format); got != want {
				t.Fatalf("%s:\n got  %q\n want %q", format, got, want)
			}
		}
	})
}
