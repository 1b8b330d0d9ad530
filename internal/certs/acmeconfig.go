package certs

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/store"
)

// ACMEConfig configures certificates from ACME CAs, domain verification and
// DNS-01, as an operator gives them (config.Config.ACME). The zero value keeps
// the internal CA as the only issuer.
type ACMEConfig struct {
	// CAs are ACME directory URLs, tried in order for each certificate
	// until one issues. The internal CA comes after them unless
	// NoInternalFallback. Default: none (the internal CA alone).
	CAs []string
	// TrustedRoots, if set, are the roots trusted for the CAs' own HTTPS
	// (a private CA such as Pebble or a company CA). Default: the system's.
	TrustedRoots *x509.CertPool
	// Email is the ACME account contact. Default: none.
	Email string
	// EAB is the External Account Binding some CAs require. Default: none.
	EAB *acme.EAB
	// NoInternalFallback leaves the internal CA out of the issuers, so a
	// name no ACME CA issues for gets no certificate at all.
	NoInternalFallback bool

	// Resolver is the DNS resolver (host:port) that ownership records
	// (_spine-challenge TXT), delegation CNAMEs and CAA records are
	// looked up with.
	// Default: the first name server of /etc/resolv.conf.
	Resolver string
	// CheckInterval is how often domains waiting for verification, and
	// verified domains' delegation CNAMEs, are looked up again. Default 1m
	// (config.DefaultCheckInterval).
	CheckInterval time.Duration

	// DelegationZone is a zone that Spine's own DNS server answers for
	// (e.g. "acme.spine.example.net", delegated to it with NS records).
	// A domain whose _acme-challenge CNAME points into it (see the
	// domain's delegation_record) gets wildcard certificates through
	// DNS-01 without DNS credentials. Default: none.
	DelegationZone string
	// DNSAddr is where that DNS server listens, UDP and TCP. Default ":53"
	// (config.DefaultDNSAddr).
	DNSAddr string
	// DNSProviders solve DNS-01 for domains under each zone (the key,
	// e.g. "example.com") with a libdns provider such as
	// rfc2136.Provider; those domains get wildcard certificates too.
	DNSProviders map[string]certmagic.DNSProvider
	// DNSPropagationTimeout bounds the wait for a provider's record to be
	// visible; -1 skips the check. Default: certmagic's (2 minutes).
	DNSPropagationTimeout time.Duration

	// RenewCheckInterval and RenewalWindowRatio: see Config.
	// Renewal follows the CA's ARI window when it offers one.
	RenewCheckInterval time.Duration
	RenewalWindowRatio float64

	// Budgets are the limits each CA (by directory URL) sets the account
	// that every tenant shares; Spine counts its orders in the store and
	// keeps within them (ACMEIssuer.Budget). A zero CABudget turns the
	// count off for that CA. Default: Let's Encrypt's published limits
	// for its directories (BudgetFor), none for other CAs.
	Budgets map[string]store.CABudget

	// OrderBurst and OrderInterval pace the orders of each CA and account:
	// see Config.ACMEOrderBurst. Defaults 50 and 1s.
	OrderBurst    int
	OrderInterval time.Duration
}

// ACMEConfigError is a field of ACMEConfig that Validate refuses.
type ACMEConfigError struct {
	// Field is the field's path in ACMEConfig, e.g. "CAs", "EAB.MACKey".
	Field string
	// Value is the refused value as it may be shown (quoted where it is
	// text), or "" if it is not shown: it may hold a secret.
	Value string
	// Err says what is wrong and what to give instead.
	Err error
}

func (e *ACMEConfigError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("certs: ACMEConfig.%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("certs: ACMEConfig.%s %s: %v", e.Field, e.Value, e.Err)
}

func (e *ACMEConfigError) Unwrap() error { return e.Err }

// Validate reports the first field of a that the certificate manager, the
// domain checks or the delegation zone would refuse, as an
// *ACMEConfigError; a zero field stands for its default and is valid.
// DNSAddr is a listen address, checked by the caller with its others.
func (a ACMEConfig) Validate() error {
	bad := func(field, value, format string, args ...any) error {
		return &ACMEConfigError{Field: field, Value: value, Err: fmt.Errorf(format, args...)}
	}
	for _, d := range []struct {
		field string
		d     time.Duration
	}{{"CheckInterval", a.CheckInterval}, {"RenewCheckInterval", a.RenewCheckInterval}, {"OrderInterval", a.OrderInterval}} {
		if d.d < 0 {
			return bad(d.field, d.d.String(), "give a positive duration, e.g. 1m")
		}
	}
	if r := a.RenewalWindowRatio; r != 0 && !(r > 0 && r < 1) {
		return bad("RenewalWindowRatio", strconv.FormatFloat(r, 'g', -1, 64), "give the part of the lifetime to renew in, between 0 and 1 (e.g. 0.33: the last third)")
	}
	for u, b := range a.Budgets {
		for _, l := range []struct {
			n int
			w time.Duration
		}{{b.Orders, b.OrdersWindow}, {b.DomainCerts, b.DomainCertsWindow}, {b.FailedValidations, b.FailedValidationsWindow}} {
			if l.n < 0 || l.w < 0 || (l.n > 0) != (l.w > 0) {
				return bad("Budgets", store.ShownURL(u), "give each limit as a positive count per a positive window, e.g. 300/3h")
			}
		}
	}
	if a.OrderBurst < 0 {
		return bad("OrderBurst", strconv.Itoa(a.OrderBurst), "give how many orders may be placed at once, e.g. 50")
	}
	if a.DNSPropagationTimeout < -1 {
		return bad("DNSPropagationTimeout", a.DNSPropagationTimeout.String(), "give a positive duration, or -1 to skip the check")
	}
	for _, ca := range a.CAs {
		if u, err := url.Parse(ca); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			return bad("CAs", store.ShownURL(ca), "give an https://HOST/... directory URL (without credentials)")
		}
	}
	if a.EAB != nil {
		if a.EAB.KeyID == "" || a.EAB.MACKey == "" {
			return bad("EAB", "", "the key ID and the HMAC key go together: give both (your CA shows them with your account's EAB credentials), or neither")
		}
		// acmez decodes the key as unpadded base64url.
		if _, err := base64.RawURLEncoding.DecodeString(a.EAB.MACKey); err != nil {
			return bad("EAB.MACKey", "", "the key (not shown) is not base64url: copy the HMAC key exactly as your CA shows it")
		}
	}
	zones := []string{a.DelegationZone}
	for z := range a.DNSProviders {
		zones = append(zones, z)
	}
	for i, z := range zones {
		if z == "" {
			continue
		}
		if _, err := hostname.Normalize(z); err != nil {
			field := "DNSProviders"
			if i == 0 {
				field = "DelegationZone"
			}
			return bad(field, strconv.Quote(z), "%w; give a DNS zone, e.g. acme.example.net", err)
		}
	}
	return nil
}

// Manager returns base with what a sets of the certificate manager's
// Config: the issuers (Issuers: the CAs in order, then internal), the
// renewal check and window, the order pace, and DNS-01 through dns01
// (nil: none).
func (a ACMEConfig) Manager(base Config, internal certmagic.Issuer, dns01 *DNS01) Config {
	base.Issuers = a.Issuers(internal)
	base.RenewCheckInterval, base.RenewalWindowRatio = a.RenewCheckInterval, a.RenewalWindowRatio
	base.ACMEOrderBurst, base.ACMEOrderInterval = a.OrderBurst, a.OrderInterval
	if dns01 != nil {
		base.DNS01Solver = dns01.Solver()
	}
	return base
}

// Issuers are the issuers of a, in the order they are tried: an
// ACMEIssuer per CA (its budget BudgetFor's), then internal unless
// NoInternalFallback (or always, without CAs).
func (a ACMEConfig) Issuers(internal certmagic.Issuer) []certmagic.Issuer {
	var issuers []certmagic.Issuer
	for _, u := range a.CAs {
		issuers = append(issuers, &ACMEIssuer{
			CA:           u,
			TrustedRoots: a.TrustedRoots,
			Email:        a.Email,
			EAB:          a.EAB,
			Resolver:     a.Resolver,
			Budget:       BudgetFor(u, a.Budgets),
		})
	}
	if len(issuers) == 0 || !a.NoInternalFallback {
		issuers = append(issuers, internal)
	}
	return issuers
}
