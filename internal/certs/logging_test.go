package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

// lockedBuffer is a bytes.Buffer safe for the manager's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes the JSON lines written so far.
func (b *lockedBuffer) lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		out = append(out, m)
	}
	return out
}

// TestLogsAtInfo checks what an operator sees at Info from a manager whose
// Logger is a JSON handler: certmagic's line for the certificate issued,
// with the name and the issuer, and Spine's plain-words line for a
// failure; none of the routine per-hostname steps.
func TestLogsAtInfo(t *testing.T) {
	var logs lockedBuffer
	st, c := caStorage(t)
	m, err := New(Config{
		Storage: st,
		Issuers: []certmagic.Issuer{&failingFor{Issuer: c, name: "bad.localhost", err: errors.New("rate limited by the CA")}},
		Logger:  slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	m.Sync(context.Background(), []string{"good.localhost", "bad.localhost"})
	// certmagic logs the issuance before it caches the certificate, and
	// the manager logs a failure before it records it.
	poll.Until(t, "good.localhost active", waitTimeout, poll.True(func() bool { return m.Status("good.localhost").Status == store.CertActive }))
	poll.Until(t, "bad.localhost failed", waitTimeout, poll.True(func() bool { return m.Status("bad.localhost").Status == store.CertFailed }))

	var issued, failed bool
	for _, l := range logs.lines(t) {
		switch {
		case l["level"] == "DEBUG":
			t.Errorf("a Debug line at Info: %v", l)
		case l["msg"] == "certificate obtained successfully":
			issued = l["logger"] == "certmagic.obtain" && l["identifier"] == "good.localhost" && l["issuer"] == c.IssuerKey() && l["level"] == "INFO"
		case l["msg"] == "could not get a certificate; certmagic retries":
			failed = l["hostname"] == "bad.localhost" && l["err"] == "rate limited by the CA" && l["level"] == "WARN"
		case l["level"] == "INFO":
			for _, routine := range []string{"managing certificate", "acquiring lock", "lock acquired", "releasing lock", "obtaining certificate"} {
				if l["msg"] == routine {
					t.Errorf("a routine step at Info: %v", l)
				}
			}
		}
	}
	if !issued || !failed {
		t.Errorf("issuance line %v, failure line %v; logs:\n%s", issued, failed, &logs.buf)
	}
}

// failingFor is an issuer that fails for one name.
type failingFor struct {
	certmagic.Issuer
	name string
	err  error
}

func (f *failingFor) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if slices.Contains(csr.DNSNames, f.name) {
		return nil, f.err
	}
	return f.Issuer.Issue(ctx, csr)
}
