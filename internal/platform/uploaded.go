package platform

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/store"
)

// Checks an uploaded certificate goes through, in this order; a refusal's
// Error.Code is "certificate_" + the check that failed.
const (
	CheckParse    = "parse"    // the files hold PEM certificates and one unencrypted private key
	CheckKeyType  = "key_type" // RSA of 2048 to 8192 bits, or ECDSA P-256 / P-384
	CheckKeyMatch = "key_match"
	CheckNames    = "names"    // the leaf's names cover the hostname
	CheckValidity = "validity" // valid now and for at least MinUploadValidity
	CheckChain    = "chain"    // a chain to a public root (or the root given) with serverAuth
)

// MinUploadValidity is how long an uploaded certificate must still be
// valid when it is uploaded.
const MinUploadValidity = 24 * time.Hour

// maxChainCerts bounds the certificates of an uploaded chain (leaf,
// intermediates, perhaps a root) and of a root file.
const maxChainCerts = 8

// Upload is a certificate a project uploads for one of its hostnames.
type Upload struct {
	Host  string
	Chain []byte // PEM: the leaf first, then its intermediates
	Key   []byte // PEM private key (PKCS #1, SEC 1 or PKCS #8), unencrypted
	// Root is PEM root certificates the chain must build to instead of the
	// system's public roots (a company's own CA). Never served.
	Root []byte
}

// UploadedCertificate describes an uploaded certificate without its key.
type UploadedCertificate struct {
	Hostname   string
	Issuer     string
	Subject    string
	Names      []string
	NotBefore  time.Time
	NotAfter   time.Time
	SHA256     string
	UploadedAt time.Time
}

func refuse(check, format string, args ...any) error {
	return &Error{Kind: Invalid, Code: "certificate_" + check, Message: "certificate refused (check " + check + "): " + fmt.Sprintf(format, args...)}
}

// UploadCertificate checks u (see the Check constants) and stores it for
// u.Host, which must be under a verified domain of the project; it
// replaces an earlier upload of the same hostname. Nothing is stored on a
// refusal. The certificate is served instead of a managed one on every
// node, and managed issuance of the hostname stops while it is there.
func (p *Platform) UploadCertificate(ctx context.Context, projectID string, u Upload) (UploadedCertificate, error) {
	host, err := NormalizeHostname(u.Host)
	if err != nil {
		return UploadedCertificate{}, err
	}
	dom, err := p.verifiedDomainOf(ctx, projectID, host)
	if err != nil {
		return UploadedCertificate{}, err
	}
	roots, err := p.uploadRoots(u.Root)
	if err != nil {
		return UploadedCertificate{}, err
	}
	c, info, err := CheckUpload(host, u.Chain, u.Key, roots, p.now())
	if err != nil {
		return UploadedCertificate{}, err
	}
	c.ProjectID = projectID
	c.UploadedAt = p.now()
	if err := p.store.PutUploadedCert(ctx, dom, c); err != nil {
		return UploadedCertificate{}, fromStore(err, fmt.Sprintf("verified domain %q", dom))
	}
	info.UploadedAt = c.UploadedAt
	return info, nil
}

// RemoveCertificate removes the project's uploaded certificate of host.
// The hostname goes back to managed issuance; nodes keep serving the
// uploaded certificate until the managed one is there.
func (p *Platform) RemoveCertificate(ctx context.Context, projectID, host string) error {
	h, err := NormalizeHostname(host)
	if err != nil {
		return err
	}
	return fromStore(p.store.DeleteUploadedCert(ctx, projectID, h), fmt.Sprintf("uploaded certificate for %q", h))
}

// ListUploadedCertificates returns the project's uploaded certificates,
// without keys, by hostname.
func (p *Platform) ListUploadedCertificates(ctx context.Context, projectID string) (map[string]UploadedCertificate, error) {
	cs, err := p.store.ListUploadedCerts(ctx, projectID, false)
	if err != nil {
		return nil, fromStore(err, "uploaded certificates")
	}
	out := make(map[string]UploadedCertificate, len(cs))
	for _, c := range cs {
		out[c.Hostname] = UploadedCertificate{Hostname: c.Hostname, Issuer: c.Issuer, NotBefore: c.NotBefore,
			NotAfter: c.NotAfter, SHA256: c.SHA256, UploadedAt: c.UploadedAt}
	}
	return out, nil
}

// verifiedDomainOf returns the project's verified domain that host is
// under (the longest, if several).
func (p *Platform) verifiedDomainOf(ctx context.Context, projectID, host string) (string, error) {
	ds, err := p.store.ListDomains(ctx, projectID)
	if err != nil {
		return "", fromStore(err, "domains")
	}
	best, pending := "", ""
	for _, d := range ds {
		if !hostname.InDomain(host, d.Name) {
			continue
		}
		if d.Status != store.DomainVerified {
			pending = d.Name
			continue
		}
		if len(d.Name) > len(best) {
			best = d.Name
		}
	}
	switch {
	case best != "":
		return best, nil
	case pending != "":
		return "", invalid("domain_not_verified", fmt.Sprintf("domain %s is not verified yet; verify it (spine domain verify %s) before uploading a certificate for %s", pending, pending, host))
	}
	return "", invalid("host_outside_domains", fmt.Sprintf("hostname %q is not under any of this project's domains; add and verify its domain first", host))
}

// uploadRoots returns the roots an upload's chain must build to: those
// given, else Options.UploadRoots, else the system's.
func (p *Platform) uploadRoots(rootPEM []byte) (*x509.CertPool, error) {
	if len(rootPEM) > 0 {
		certs, err := parseCerts(rootPEM, "root")
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		return pool, nil
	}
	if p.opts.UploadRoots != nil {
		return p.opts.UploadRoots, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		return nil, &Error{Kind: Invalid, Code: "certificate_" + CheckChain, Err: err,
			Message: "certificate refused (check chain): this server has no public roots to check the chain against; give the root with --root"}
	}
	return pool, nil
}

// parseCerts reads the PEM certificates of what ("certificate" or "root").
func parseCerts(data []byte, what string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if len(strings.TrimSpace(string(rest))) > 0 && len(out) == 0 {
				return nil, refuse(CheckParse, "the %s file is not PEM (-----BEGIN CERTIFICATE-----); convert DER with `openssl x509 -inform der`", what)
			}
			break
		}
		if b.Type != "CERTIFICATE" {
			// Never echo the block: it may be a key given by mistake.
			return nil, refuse(CheckParse, "the %s file holds %s; it may hold only CERTIFICATE blocks (the key goes in its own file)", what, blockKind(b.Type))
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, refuse(CheckParse, "certificate %d of the %s file cannot be read: %v", len(out)+1, what, err)
		}
		out = append(out, c)
		if len(out) > maxChainCerts {
			return nil, refuse(CheckParse, "the %s file holds more than %d certificates", what, maxChainCerts)
		}
	}
	if len(out) == 0 {
		return nil, refuse(CheckParse, "the %s file holds no certificate", what)
	}
	return out, nil
}

// blockKind names a PEM block that is not a certificate, for a message:
// never the words of a key's block (which log scanners rightly flag).
func blockKind(typ string) string {
	if strings.Contains(typ, "PRIVATE KEY") {
		return "a private key"
	}
	return fmt.Sprintf("a %q block", truncate(typ, 40))
}

// parseKey reads one private key. Its errors never include the key.
func parseKey(data []byte) (any, error) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, refuse(CheckParse, "the key file holds no PEM private key (a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)")
		}
		switch b.Type {
		case "ENCRYPTED PRIVATE KEY":
			return nil, refuse(CheckParse, "the private key is encrypted; give it unencrypted (openssl pkey -in key.pem -out plain.pem)")
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, refuse(CheckParse, "the PKCS #8 private key cannot be read")
			}
			return k, nil
		case "RSA PRIVATE KEY":
			if _, enc := b.Headers["DEK-Info"]; enc {
				return nil, refuse(CheckParse, "the private key is encrypted; give it unencrypted (openssl pkey -in key.pem -out plain.pem)")
			}
			k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
			if err != nil {
				return nil, refuse(CheckParse, "the RSA private key cannot be read")
			}
			return k, nil
		case "EC PRIVATE KEY":
			if _, enc := b.Headers["DEK-Info"]; enc {
				return nil, refuse(CheckParse, "the private key is encrypted; give it unencrypted (openssl pkey -in key.pem -out plain.pem)")
			}
			k, err := x509.ParseECPrivateKey(b.Bytes)
			if err != nil {
				return nil, refuse(CheckParse, "the EC private key cannot be read")
			}
			return k, nil
		}
		// Other blocks (EC PARAMETERS, a certificate) are skipped.
	}
}

// checkKeyType allows what every browser accepts in a server certificate:
// RSA of 2048 bits and more (at most 8192, which already costs a handshake
// tens of milliseconds), and ECDSA on P-256 or P-384. Ed25519 is refused:
// no major browser accepts Ed25519 certificates, so a site with one fails
// for its visitors. P-521 is refused for the same reason (Chrome).
func checkKeyType(pub any) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return refuse(CheckKeyType, "an RSA key of %d bits; use 2048 to 8192 bits", n)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return refuse(CheckKeyType, "an ECDSA key on %s; use P-256 or P-384, the curves browsers accept", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		return refuse(CheckKeyType, "an Ed25519 key; browsers do not accept Ed25519 certificates, use ECDSA P-256 or RSA 2048+")
	default:
		return refuse(CheckKeyType, "a %T key; use ECDSA P-256/P-384 or RSA 2048+", pub)
	}
	return nil
}

// CheckUpload checks an upload for host (normalised) at now against roots
// and returns what to store (without project and time) and what to show.
func CheckUpload(host string, chainPEM, keyPEM []byte, roots *x509.CertPool, now time.Time) (store.UploadedCert, UploadedCertificate, error) {
	var none store.UploadedCert
	chain, err := parseCerts(chainPEM, "certificate")
	if err != nil {
		return none, UploadedCertificate{}, err
	}
	leaf := chain[0]
	key, err := parseKey(keyPEM)
	if err != nil {
		return none, UploadedCertificate{}, err
	}
	if err := checkKeyType(leaf.PublicKey); err != nil {
		return none, UploadedCertificate{}, err
	}
	if !keyMatches(leaf.PublicKey, key) {
		return none, UploadedCertificate{}, refuse(CheckKeyMatch, "the private key is not the key of the certificate %q (the first certificate of the file must be the leaf)", leaf.Subject.String())
	}
	if err := leaf.VerifyHostname(host); err != nil {
		return none, UploadedCertificate{}, refuse(CheckNames, "the certificate is for %s, not %s", namesOf(leaf), host)
	}
	switch {
	case now.Before(leaf.NotBefore):
		return none, UploadedCertificate{}, refuse(CheckValidity, "the certificate is valid only from %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(leaf.NotAfter):
		return none, UploadedCertificate{}, refuse(CheckValidity, "the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case leaf.NotAfter.Sub(now) < MinUploadValidity:
		return none, UploadedCertificate{}, refuse(CheckValidity, "the certificate expires at %s, in less than %s", leaf.NotAfter.UTC().Format(time.RFC3339), MinUploadValidity)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return none, UploadedCertificate{}, refuse(CheckChain, "no chain to a trusted root: %s", chainReason(err))
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return none, UploadedCertificate{}, refuse(CheckParse, "the private key cannot be stored")
	}
	sum := sha256.Sum256(leaf.Raw)
	c := store.UploadedCert{
		Hostname: host, Chain: chainPEMOf(chain), Key: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		Issuer: issuerName(leaf), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, SHA256: hex.EncodeToString(sum[:]),
	}
	info := UploadedCertificate{Hostname: host, Issuer: c.Issuer, Subject: leaf.Subject.String(), Names: leaf.DNSNames,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, SHA256: c.SHA256}
	return c, info, nil
}

// keyMatches reports whether key is the private key of pub (the check
// crypto/tls.X509KeyPair makes; platform does not import crypto/tls).
func keyMatches(pub crypto.PublicKey, key any) bool {
	signer, ok := key.(crypto.Signer)
	if !ok {
		return false
	}
	p, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	return ok && p.Equal(signer.Public())
}

// chainPEMOf encodes chain as PEM, in its order.
func chainPEMOf(chain []*x509.Certificate) []byte {
	var out []byte
	for _, c := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// namesOf lists a certificate's DNS names (or its common name) for a message.
func namesOf(c *x509.Certificate) string {
	names := c.DNSNames
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = []string{c.Subject.CommonName + " (common name only, which browsers ignore)"}
	}
	if len(names) == 0 {
		return "no DNS name"
	}
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}

// issuerName is the issuer's common name, or its whole name without one.
func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// chainReason says in plain words why x509 found no chain.
func chainReason(err error) string {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return fmt.Sprintf("the issuer %q is not a trusted root and no intermediate in the file leads to one; put the intermediates after the leaf, or give a private root with --root", issuerName(ua.Cert))
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return "a certificate of the chain is expired or not yet valid: " + ci.Error()
	case errors.As(err, &ci) && ci.Reason == x509.IncompatibleUsage:
		return "the certificate may not be used for TLS servers (extended key usage lacks serverAuth)"
	}
	return err.Error()
}
