package certs

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/miekg/dns"

	"github.com/spine-platform/spine/internal/pebbletest"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

func TestCAAAllows(t *testing.T) {
	caa := func(tag, v string) *dns.CAA { return &dns.CAA{Tag: tag, Value: v} }
	ids := []string{"letsencrypt.org"}
	for _, tc := range []struct {
		name     string
		records  []*dns.CAA
		wildcard bool
		want     bool
	}{
		{"issue for the CA", []*dns.CAA{caa("issue", "letsencrypt.org")}, false, true},
		{"issue with parameters, any case", []*dns.CAA{caa("issue", "LetsEncrypt.org; validationmethods=http-01")}, false, true},
		{"issue for another CA", []*dns.CAA{caa("issue", "pki.goog")}, false, false},
		{"one of several", []*dns.CAA{caa("issue", "pki.goog"), caa("issue", "letsencrypt.org")}, false, true},
		{"no CA at all", []*dns.CAA{caa("issue", ";")}, false, false},
		{"iodef only", []*dns.CAA{caa("iodef", "mailto:sec@example.com")}, false, true},
		{"issuewild governs wildcards", []*dns.CAA{caa("issue", "letsencrypt.org"), caa("issuewild", ";")}, true, false},
		{"issuewild does not govern plain names", []*dns.CAA{caa("issue", "letsencrypt.org"), caa("issuewild", ";")}, false, true},
		{"issue governs wildcards without issuewild", []*dns.CAA{caa("issue", "letsencrypt.org")}, true, true},
	} {
		if got, _ := caaAllows(tc.records, ids, tc.wildcard); got != tc.want {
			t.Errorf("%s: allowed=%v, want %v", tc.name, got, tc.want)
		}
	}
}

// A name whose CAA records (on a parent) allow another CA fails before any
// order, with the records named; once they allow this CA it is issued.
func TestCAAForbidsBeforeOrdering(t *testing.T) {
	dns := pebbletest.StartDNS(t)
	tlsLn, httpLn := listen(t), listen(t)
	p := pebbletest.Start(t, pebbletest.Options{HTTPPort: portOf(httpLn.Addr().String()), TLSPort: portOf(tlsLn.Addr().String()), Resolver: dns.Addr})
	dns.SetCAA("caa.test", "ca.other.test")
	e := newACMEEnv(t, acmeOptions{dns: dns, tlsLn: tlsLn, httpLn: httpLn, issuers: func(int, int) []certmagic.Issuer {
		return []certmagic.Issuer{pebbleIssuer(p, func(i *ACMEIssuer) { i.Resolver = dns.Addr })}
	}})
	e.m.Sync(context.Background(), []string{"www.caa.test"})
	poll.Until(t, "the certificate to fail", waitTimeout, poll.True(func() bool { return e.m.Status("www.caa.test").Status == store.CertFailed }))
	msg := e.m.Status("www.caa.test").Error
	if !strings.HasPrefix(msg, "the domain's CAA records forbid this certificate authority") || !strings.Contains(msg, `issue "ca.other.test"`) || !strings.Contains(msg, "pebble.letsencrypt.org") {
		t.Errorf("status says %q", msg)
	}
	if n := p.NewOrders(); n != 0 {
		t.Errorf("%d orders placed for a name CAA forbids, want 0", n)
	}

	dns.SetCAA("caa.test", "pebble.letsencrypt.org")
	e.m.Sync(context.Background(), []string{"ok.caa.test"})
	e.waitActive(t, "ok.caa.test")
}
