package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/spine-platform/spine/internal/ca"
)

// newConfig builds a certmagic config over the manager's cache. ACME
// issuers (*ACMEIssuer) are bound to the manager; for wildcard names they
// solve DNS-01 only, with cfg.DNS01Solver, and are left out when there is
// none.
func (m *Manager) newConfig(cfg Config, issuers []certmagic.Issuer, wildcard bool) (*certmagic.Config, error) {
	magic := certmagic.New(m.cache, certmagic.Config{
		Storage:            cfg.Storage,
		KeySource:          certmagic.StandardKeyGenerator{KeyType: certmagic.P256},
		OnEvent:            m.onEvent,
		ShouldEmitFunc:     shouldEmit,
		Logger:             m.zlog,
		RenewalWindowRatio: cfg.RenewalWindowRatio,
	})
	// certmagic.New fills unset fields from the package-level
	// certmagic.Default; whatever it holds, a Manager never issues during
	// handshakes and never answers an unknown name with another's
	// certificate.
	magic.OnDemand = nil
	magic.DefaultServerName = ""
	magic.FallbackServerName = ""

	var bound []certmagic.Issuer
	for _, iss := range issuers {
		tmpl, ok := iss.(*ACMEIssuer)
		if !ok {
			if cfg.Orders != nil {
				iss = budgetGuard{Issuer: iss, waits: &m.waits}
			}
			bound = append(bound, iss)
			continue
		}
		var dns01 acmez.Solver
		if wildcard {
			if cfg.DNS01Solver == nil {
				continue
			}
			dns01 = cfg.DNS01Solver
		}
		bound = append(bound, m.bindACME(*tmpl, cfg.Storage, dns01))
	}
	if len(bound) == 0 {
		if wildcard {
			bound = append(bound, noIssuer{})
		} else {
			return nil, errors.New("certs: no issuer")
		}
	}
	magic.Issuers = bound
	// The internal CA's certificates name no OCSP responder, so stapling
	// one of them always ends in certmagic's "no OCSP server": with only
	// that CA, each certificate load skips the staple's storage key and
	// its second parse of the chain (about 10 KB of the 39 KB of garbage a
	// load made, BENCHMARKS.md, "The garbage of a certificate load").
	magic.OCSP.DisableStapling = internalOnly(bound)
	return magic, nil
}

// internalOnly reports whether every issuer is Spine's internal CA.
func internalOnly(issuers []certmagic.Issuer) bool {
	for _, iss := range issuers {
		if g, ok := iss.(budgetGuard); ok {
			iss = g.Issuer
		}
		switch iss.(type) {
		case *ca.CA, *CAIssuer:
		default:
			return false
		}
	}
	return len(issuers) > 0
}

// noIssuer stands in when no issuer can obtain wildcard certificates.
type noIssuer struct{}

func (noIssuer) IssuerKey() string { return "none" }
func (noIssuer) Issue(context.Context, *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	return nil, certmagic.ErrNoRetry{Err: errors.New("no issuer can obtain wildcard certificates: DNS-01 is not set up")}
}

// holds remembers, per certificate subject, until when a CA asked us not
// to try again (a rate limit's "retry after"), so that certmagic's retries
// do not reach the CA before then.
type holds struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (h *holds) get(name string, now time.Time) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.until[name]
	if ok && !now.Before(t) {
		delete(h.until, name)
		return time.Time{}, false
	}
	return t, ok
}

func (h *holds) set(name string, t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.until == nil {
		h.until = make(map[string]time.Time)
	}
	if len(h.until) > 10000 {
		clear(h.until) // bounded: a flood of names must not grow it forever
	}
	h.until[name] = t
}

func (h *holds) forget(name string) {
	h.mu.Lock()
	delete(h.until, name)
	h.mu.Unlock()
}

// retryAfterRE finds the time a rate-limited CA names in its problem
// detail, as Let's Encrypt does ("retry after 2025-05-29 18:09:26 UTC").
var retryAfterRE = regexp.MustCompile(`(?i)retry after (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:Z| UTC)?)`)

// retryAfter returns the time a rate-limit error allows the next attempt:
// the CA's Retry-After header (see retryAfterError), else the time named
// in its problem detail, as Let's Encrypt does.
func retryAfter(err error) (time.Time, bool) {
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return ra.until, true
	}
	var p acme.Problem
	if !errors.As(err, &p) || !isProblem(p, acme.ProblemTypeRateLimited) {
		return time.Time{}, false
	}
	m := retryAfterRE.FindStringSubmatch(p.Detail)
	if m == nil {
		return time.Time{}, false
	}
	s := strings.TrimSuffix(strings.TrimSuffix(m[1], " UTC"), "Z")
	t, err2 := time.Parse("2006-01-02 15:04:05", strings.Replace(s, "T", " ", 1))
	if err2 != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// isProblem reports whether p, or one of its subproblems, has type typ.
func isProblem(p acme.Problem, typ string) bool {
	if p.Type == typ {
		return true
	}
	for _, sp := range p.Subproblems {
		if sp.Type == typ {
			return true
		}
	}
	return false
}

// describe turns an issuance error into plain words a user can act on:
// what the CA found, not its problem URN.
func describe(err error) string {
	if err == nil {
		return "certificate could not be obtained"
	}
	var p acme.Problem
	if !errors.As(err, &p) {
		var ne net.Error
		if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such host") {
			return "the certificate authority could not be reached: " + err.Error()
		}
		return err.Error()
	}
	detail := p.Detail
	for _, sp := range p.Subproblems {
		if sp.Detail != "" && !strings.Contains(detail, sp.Detail) {
			detail += "; " + sp.Detail
		}
	}
	if detail == "" {
		detail = p.Title
	}
	switch {
	case isProblem(p, acme.ProblemTypeCAA):
		return "the domain's CAA records forbid this certificate authority: " + detail
	case isProblem(p, acme.ProblemTypeDNS):
		return "DNS lookup failed at the certificate authority: " + detail
	case isProblem(p, acme.ProblemTypeRateLimited):
		if t, ok := retryAfter(err); ok {
			return fmt.Sprintf("rate limited by the certificate authority until %s: %s", t.Format(time.RFC3339), detail)
		}
		return "rate limited by the certificate authority: " + detail
	case isProblem(p, acme.ProblemTypeConnection):
		return "the certificate authority could not connect to this server (does DNS point here, are ports 80 and 443 open?): " + detail
	case isProblem(p, acme.ProblemTypeUnauthorized), isProblem(p, acme.ProblemTypeIncorrectResponse):
		return "the certificate authority did not see the expected answer (does DNS point here?): " + detail
	case isProblem(p, acme.ProblemTypeRejectedIdentifier):
		return "the certificate authority refuses to issue for this name: " + detail
	case isProblem(p, acme.ProblemTypeExternalAccountRequired):
		return "the certificate authority requires an external account binding (--acme-eab-kid, --acme-eab-hmac): " + detail
	case isProblem(p, acme.ProblemTypeTLS):
		return "the certificate authority's TLS connection to this server failed: " + detail
	}
	if detail != "" {
		return detail
	}
	return err.Error()
}

// logIssuerFailure is certmagic's own logging; kept here for the fields.
func (m *Manager) logHold(name string, until time.Time) {
	m.log.Warn("rate limited; holding retries", "hostname", name, "until", until)
}
