// Package pkitest makes certificate authorities and certificates for
// tests: a private root, intermediates, server and client leaves of any
// key type, validity and names, as PEM and as crypto/tls values. Nothing
// here reaches a network.
//
// Imports: only the standard library.
// Imported by: tests only.
package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"time"
)

// KeyType names a key algorithm and size.
type KeyType string

// Key types.
const (
	P256    KeyType = "p256"
	P384    KeyType = "p384"
	P521    KeyType = "p521"
	RSA1024 KeyType = "rsa1024"
	RSA2048 KeyType = "rsa2048"
	Ed25519 KeyType = "ed25519"
)

// NewKey returns a new private key of type kt; it panics on an unknown type.
func NewKey(kt KeyType) crypto.Signer {
	var (
		k   crypto.Signer
		err error
	)
	switch kt {
	case P256, "":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case P384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case P521:
		k, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case RSA1024:
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case RSA2048:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case Ed25519:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		panic("pkitest: unknown key type " + string(kt))
	}
	if err != nil {
		panic(err)
	}
	return k
}

// CA is a certificate authority: a root, or an intermediate under one.
type CA struct {
	Cert   *x509.Certificate
	Key    crypto.Signer
	Parent *CA // nil for a root
}

// NewRoot returns a self-signed root named cn, valid from an hour ago for ten years.
func NewRoot(cn string) *CA {
	key := NewKey(P256)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"pkitest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return &CA{Cert: sign(tmpl, tmpl, key.Public(), key), Key: key}
}

// Intermediate returns a CA named cn signed by c.
func (c *CA) Intermediate(cn string) *CA {
	key := NewKey(P256)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"pkitest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return &CA{Cert: sign(tmpl, c.Cert, key.Public(), c.Key), Key: key, Parent: c}
}

// RootPEM returns the root of c's chain, PEM encoded.
func (c *CA) RootPEM() []byte {
	r := c
	for r.Parent != nil {
		r = r.Parent
	}
	return PEM(r.Cert)
}

// Pool returns a pool holding c's root.
func (c *CA) Pool() *x509.CertPool {
	r := c
	for r.Parent != nil {
		r = r.Parent
	}
	p := x509.NewCertPool()
	p.AddCert(r.Cert)
	return p
}

// Leaf describes a certificate to issue.
type Leaf struct {
	CommonName string
	DNSNames   []string
	URIs       []string
	Key        KeyType // default P256
	// NotBefore and NotAfter default to an hour ago and 90 days from now.
	NotBefore, NotAfter time.Time
	// Client makes a client certificate (clientAuth) instead of a server one.
	Client bool
	// NoServerAuth leaves serverAuth out of a server certificate's usages.
	NoServerAuth bool
}

// Issued is an issued leaf with the chain up to (not including) the root.
type Issued struct {
	Cert     *x509.Certificate
	Key      crypto.Signer
	Chain    []*x509.Certificate // leaf first, then intermediates
	ChainPEM []byte
	KeyPEM   []byte // PKCS #8
}

// TLS returns the certificate as crypto/tls uses it.
func (i *Issued) TLS() tls.Certificate {
	c := tls.Certificate{PrivateKey: i.Key, Leaf: i.Cert}
	for _, x := range i.Chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

// SHA256 is the hex SHA-256 of the leaf.
func (i *Issued) SHA256() string {
	s := sha256.Sum256(i.Cert.Raw)
	return fmt.Sprintf("%x", s[:])
}

// Issue signs l with c.
func (c *CA) Issue(l Leaf) *Issued {
	key := NewKey(l.Key)
	now := time.Now()
	if l.NotBefore.IsZero() {
		l.NotBefore = now.Add(-time.Hour)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = now.Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.CommonName, Organization: []string{"pkitest"}},
		DNSNames:     l.DNSNames,
		NotBefore:    l.NotBefore,
		NotAfter:     l.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, u := range l.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			panic(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	switch {
	case l.Client:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case l.NoServerAuth:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	default:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	cert := sign(tmpl, c.Cert, key.Public(), c.Key)
	out := &Issued{Cert: cert, Key: key, Chain: []*x509.Certificate{cert}}
	for p := c; p.Parent != nil; p = p.Parent {
		out.Chain = append(out.Chain, p.Cert)
	}
	for _, x := range out.Chain {
		out.ChainPEM = append(out.ChainPEM, PEM(x)...)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	out.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return out
}

// PEM encodes certificates.
func PEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n
}
