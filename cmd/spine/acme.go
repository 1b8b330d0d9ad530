package main

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/dnsprovider/rfc2136"
	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/node/config"
)

// acmeFlags are the certificate-authority and DNS flags of `spine serve`
// and `spine up`.
type acmeFlags struct {
	cas           []string
	caRoots       []string
	email         string
	eabKID        string
	eabHMAC       string
	resolver      string
	noInternal    bool
	zone          string
	dnsAddr       string
	rfc2136       []string
	checkInterval time.Duration
}

// acmePresets are names accepted by --acme-ca instead of a URL.
var acmePresets = map[string]string{
	"letsencrypt":         config.LetsEncryptProduction,
	"letsencrypt-staging": config.LetsEncryptStaging,
}

func (f *acmeFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.cas, "acme-ca", nil, "ACME directory URL, or a preset: letsencrypt, letsencrypt-staging (repeatable: tried in order, the next when one fails; the internal CA comes last)")
	fl.StringArrayVar(&f.caRoots, "acme-ca-root", nil, "PEM file of a root to trust for the ACME CA's own HTTPS (a private CA such as Pebble; repeatable)")
	fl.StringVar(&f.email, "acme-email", "", "contact email of the ACME account")
	fl.StringVar(&f.eabKID, "acme-eab-kid", "", "External Account Binding key ID (CAs that require EAB)")
	// No env default here: cobra would print it in --help.
	fl.StringVar(&f.eabHMAC, "acme-eab-hmac", "", "External Account Binding HMAC key, base64url (env SPINE_ACME_EAB_HMAC)")
	fl.BoolVar(&f.noInternal, "no-internal-ca-fallback", false, "with --acme-ca: never fall back to the internal CA")
	fl.StringVar(&f.resolver, "dns-resolver", "", "DNS resolver (host:port) for domain verification, delegation and CAA checks (default: /etc/resolv.conf)")
	fl.StringVar(&f.zone, "dns-delegation-zone", "", "zone served by Spine's own DNS server for delegated DNS-01 (customers CNAME _acme-challenge.<domain> into it)")
	fl.StringVar(&f.dnsAddr, "dns-addr", config.DefaultDNSAddr, "listen address (UDP and TCP) of the delegation zone's DNS server")
	fl.StringArrayVar(&f.rfc2136, "dns-rfc2136", nil, "DNS-01 through RFC 2136 dynamic updates for a zone: ZONE=SERVER[,KEYNAME,BASE64SECRET] (TSIG hmac-sha256; repeatable)")
	fl.DurationVar(&f.checkInterval, "domain-check-interval", config.DefaultCheckInterval, "how often pending domains and delegation CNAMEs are looked up again")
}

// config turns the flags into the node's ACME configuration, refusing
// what is about the flags' syntax (config.Config.Validate checks the
// values). Its errors name the flag and say what to write; they never
// repeat a value that may hold a secret (the EAB HMAC key, a TSIG secret).
func (f *acmeFlags) config() (certs.ACMEConfig, error) {
	c := certs.ACMEConfig{
		Email:              f.email,
		NoInternalFallback: f.noInternal,
		Resolver:           f.resolver,
		CheckInterval:      f.checkInterval,
		DelegationZone:     f.zone,
		DNSAddr:            f.dnsAddr,
	}
	for _, ca := range f.cas {
		if u, ok := acmePresets[strings.ToLower(ca)]; ok {
			ca = u
		}
		c.CAs = append(c.CAs, ca) // config.Config.Validate checks it
	}
	if len(f.caRoots) > 0 {
		pool := x509.NewCertPool()
		for _, file := range f.caRoots {
			pem, err := os.ReadFile(file)
			if err != nil {
				return c, fmt.Errorf("--acme-ca-root: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return c, fmt.Errorf("--acme-ca-root %s: no PEM certificate in it", file)
			}
		}
		c.TrustedRoots = pool
	}
	hmac := f.eabHMAC
	if hmac == "" {
		hmac = os.Getenv("SPINE_ACME_EAB_HMAC")
	}
	if (f.eabKID == "") != (hmac == "") {
		return c, fmt.Errorf("--acme-eab-kid and --acme-eab-hmac go together: give both (your CA shows them with your account's EAB credentials), or neither")
	}
	if f.eabKID != "" {
		// acmez decodes the key as unpadded base64url; some CAs show it
		// padded. config.Config.Validate checks the rest.
		c.EAB = &acme.EAB{KeyID: f.eabKID, MACKey: strings.TrimRight(hmac, "=")}
	}
	for _, spec := range f.rfc2136 {
		zone, p, err := parseRFC2136(spec)
		if err != nil {
			return c, err
		}
		if c.DNSProviders == nil {
			c.DNSProviders = map[string]certmagic.DNSProvider{}
		}
		c.DNSProviders[zone] = p
	}
	return c, nil
}

const rfc2136Syntax = "write ZONE=SERVER[:PORT] or ZONE=SERVER[:PORT],KEYNAME,BASE64SECRET"

// parseRFC2136 reads one --dns-rfc2136 value. Its errors show the zone at
// most: the rest may hold the TSIG secret.
func parseRFC2136(spec string) (string, *rfc2136.Provider, error) {
	zone, rest, ok := strings.Cut(spec, "=")
	zone = strings.TrimSpace(zone)
	if !ok || zone == "" {
		return "", nil, fmt.Errorf("--dns-rfc2136 (value not shown, it may hold a secret): no ZONE= at its start; %s", rfc2136Syntax)
	}
	if _, err := hostname.Normalize(zone); err != nil {
		return "", nil, fmt.Errorf("--dns-rfc2136 zone: %w; %s", err, rfc2136Syntax)
	}
	parts := strings.Split(rest, ",")
	if len(parts) != 1 && len(parts) != 3 {
		return "", nil, fmt.Errorf("--dns-rfc2136 for zone %q (rest not shown, it may hold a secret): %d comma-separated values after '=', want 1 or 3; %s", zone, len(parts), rfc2136Syntax)
	}
	p := &rfc2136.Provider{Server: strings.TrimSpace(parts[0])}
	if p.Server == "" {
		return "", nil, fmt.Errorf("--dns-rfc2136 for zone %q: the SERVER is empty; %s", zone, rfc2136Syntax)
	}
	if !validServer(p.Server) {
		// Not shown either: a secret written in the wrong place would land here.
		return "", nil, fmt.Errorf("--dns-rfc2136 for zone %q: SERVER (before the first comma, not shown) is not HOST or HOST:PORT; %s", zone, rfc2136Syntax)
	}
	if len(parts) == 3 {
		p.KeyName, p.Key = strings.TrimSpace(parts[1]), strings.TrimSpace(parts[2])
		if p.KeyName == "" || p.Key == "" {
			return "", nil, fmt.Errorf("--dns-rfc2136 for zone %q: KEYNAME and BASE64SECRET must both be set; %s", zone, rfc2136Syntax)
		}
		if _, err := base64.StdEncoding.DecodeString(p.Key); err != nil {
			return "", nil, fmt.Errorf("--dns-rfc2136 for zone %q: the TSIG secret (not shown) is not base64; copy it from the key file of your DNS server (the secret \"...\"; line)", zone)
		}
	}
	return zone, p, nil
}

// validServer reports whether s is HOST or HOST:PORT (a bare IPv6 address
// is a HOST).
func validServer(s string) bool {
	if host, port, err := net.SplitHostPort(s); err == nil {
		n, err := hostname.ParsePort(port)
		return host != "" && err == nil && n > 0
	}
	return !strings.ContainsAny(s, ":/ ") || net.ParseIP(strings.Trim(s, "[]")) != nil
}
