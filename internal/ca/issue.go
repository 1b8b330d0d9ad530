package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/caddyserver/certmagic"
)

// Issue signs a server certificate for the DNS names and IP addresses of
// csr, valid from a minute ago (clock skew) for Options.LeafLifetime, and
// returns it PEM-encoded followed by the intermediate. It implements
// certmagic.Issuer. The CSR's signature must verify, and it must ask for at
// least one name and nothing but DNS names and IP addresses.
func (c *CA) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if csr == nil {
		return nil, errors.New("ca: no certificate request")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("ca: certificate request signature: %w", err)
	}
	if len(csr.DNSNames) == 0 && len(csr.IPAddresses) == 0 {
		return nil, errors.New("ca: certificate request names no DNS name or IP address")
	}
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return nil, errors.New("ca: certificate request asks for e-mail or URI names; only DNS names and IP addresses are issued")
	}

	inter, err := c.intermediate(ctx)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := c.opts.Now()
	notAfter := now.Add(c.opts.LeafLifetime)
	if notAfter.After(inter.cert.NotAfter) {
		notAfter = inter.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName(csr)},
		DNSNames:              csr.DNSNames,
		IPAddresses:           csr.IPAddresses,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// AuthorityKeyId is taken from the intermediate's SubjectKeyId.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, inter.cert, csr.PublicKey, inter.key)
	if err != nil {
		return nil, fmt.Errorf("ca: signing certificate for %v: %w", names(csr), err)
	}
	if err := c.record(ctx, serial, tmpl); err != nil {
		return nil, err
	}
	chain := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	chain = append(chain, inter.certPEM...)
	return &certmagic.IssuedCertificate{Certificate: chain}, nil
}

// commonName is the first name of csr if it fits a common name (64
// characters), else empty: clients use the SANs anyway.
func commonName(csr *x509.CertificateRequest) string {
	n := names(csr)[0]
	if len(n) > 64 {
		return ""
	}
	return n
}

func names(csr *x509.CertificateRequest) []string {
	out := make([]string, 0, len(csr.DNSNames)+len(csr.IPAddresses))
	out = append(out, csr.DNSNames...)
	for _, ip := range csr.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}
