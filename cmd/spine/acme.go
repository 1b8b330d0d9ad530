package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/dnsprovider/rfc2136"
	"github.com/spine-platform/spine/internal/node"
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
	"letsencrypt":         node.LetsEncryptProduction,
	"letsencrypt-staging": node.LetsEncryptStaging,
}

func (f *acmeFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.cas, "acme-ca", nil, "ACME directory URL, or a preset: letsencrypt, letsencrypt-staging (repeatable: tried in order, the next when one fails; the internal CA comes last)")
	fl.StringArrayVar(&f.caRoots, "acme-ca-root", nil, "PEM file of a root to trust for the ACME CA's own HTTPS (a private CA such as Pebble; repeatable)")
	fl.StringVar(&f.email, "acme-email", "", "contact email of the ACME account")
	fl.StringVar(&f.eabKID, "acme-eab-kid", "", "External Account Binding key ID (CAs that require EAB)")
	fl.StringVar(&f.eabHMAC, "acme-eab-hmac", envOr("SPINE_ACME_EAB_HMAC", ""), "External Account Binding HMAC key, base64url (env SPINE_ACME_EAB_HMAC)")
	fl.BoolVar(&f.noInternal, "no-internal-ca-fallback", false, "with --acme-ca: never fall back to the internal CA")
	fl.StringVar(&f.resolver, "dns-resolver", "", "DNS resolver (host:port) for domain verification, delegation and CAA checks (default: /etc/resolv.conf)")
	fl.StringVar(&f.zone, "dns-delegation-zone", "", "zone served by Spine's own DNS server for delegated DNS-01 (customers CNAME _acme-challenge.<domain> into it)")
	fl.StringVar(&f.dnsAddr, "dns-addr", ":53", "listen address (UDP and TCP) of the delegation zone's DNS server")
	fl.StringArrayVar(&f.rfc2136, "dns-rfc2136", nil, "DNS-01 through RFC 2136 dynamic updates for a zone: ZONE=SERVER[,KEYNAME,BASE64SECRET] (TSIG hmac-sha256; repeatable)")
	fl.DurationVar(&f.checkInterval, "domain-check-interval", time.Minute, "how often pending domains and delegation CNAMEs are looked up again")
}

// config turns the flags into the node's ACME configuration.
func (f *acmeFlags) config() (node.ACMEConfig, error) {
	c := node.ACMEConfig{
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
		if !strings.HasPrefix(ca, "https://") {
			return c, fmt.Errorf("--acme-ca %q: give an https:// directory URL or one of letsencrypt, letsencrypt-staging", ca)
		}
		c.CAs = append(c.CAs, ca)
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
	if (f.eabKID == "") != (f.eabHMAC == "") {
		return c, fmt.Errorf("--acme-eab-kid and --acme-eab-hmac go together")
	}
	if f.eabKID != "" {
		c.EAB = &acme.EAB{KeyID: f.eabKID, MACKey: f.eabHMAC}
	}
	for _, spec := range f.rfc2136 {
		zone, rest, ok := strings.Cut(spec, "=")
		parts := strings.Split(rest, ",")
		if !ok || zone == "" || parts[0] == "" || (len(parts) != 1 && len(parts) != 3) {
			return c, fmt.Errorf("--dns-rfc2136 %q: write ZONE=SERVER[,KEYNAME,BASE64SECRET]", spec)
		}
		p := &rfc2136.Provider{Server: parts[0]}
		if len(parts) == 3 {
			p.KeyName, p.Key = parts[1], parts[2]
		}
		if c.DNSProviders == nil {
			c.DNSProviders = map[string]certmagic.DNSProvider{}
		}
		c.DNSProviders[zone] = p
	}
	return c, nil
}
