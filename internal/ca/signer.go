package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"time"
)

// Errors of loadSigner for a certificate in storage that cannot be used.
var (
	errMismatch   = errors.New("key does not match certificate")
	errKeyMissing = errors.New("certificate without its key")
)

// newRoot makes a self-signed root: CA, path length 1, 10 years.
func newRoot(name string, now time.Time) (*signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generating root key: %w", err)
	}
	tmpl, err := caTemplate(name, &key.PublicKey, now, now.Add(rootLifetime))
	if err != nil {
		return nil, err
	}
	tmpl.MaxPathLen = 1
	return sign(tmpl, &key.PublicKey, tmpl, key, key)
}

// newIntermediate makes an intermediate signed by root: CA, path length 0,
// one year but never beyond the root.
func newIntermediate(name string, root *signer, now time.Time) (*signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generating intermediate key: %w", err)
	}
	notAfter := now.Add(intermediateLifetime)
	if notAfter.After(root.cert.NotAfter) {
		notAfter = root.cert.NotAfter
	}
	tmpl, err := caTemplate(name+" Intermediate", &key.PublicKey, now, notAfter)
	if err != nil {
		return nil, err
	}
	tmpl.MaxPathLenZero = true
	return sign(tmpl, &key.PublicKey, root.cert, root.key, key)
}

func caTemplate(cn string, pub *ecdsa.PublicKey, now, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          ski,
	}, nil
}

// sign creates the certificate tmpl for pub, signed by parent's key, and
// returns it with key (the certificate's own private key).
func sign(tmpl *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, key *ecdsa.PrivateKey) (*signer, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		return nil, fmt.Errorf("ca: signing %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing %q: %w", tmpl.Subject.CommonName, err)
	}
	return &signer{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}, nil
}

// randomSerial returns a random positive 128-bit serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("ca: generating serial: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// subjectKeyID is the SHA-1 of the public key bits (RFC 5280 4.2.1.2 (1)).
func subjectKeyID(pub *ecdsa.PublicKey) ([]byte, error) {
	k, err := pub.ECDH()
	if err != nil {
		return nil, fmt.Errorf("ca: subject key id: %w", err)
	}
	sum := sha1.Sum(k.Bytes())
	return sum[:], nil
}

// loadSigner reads a certificate and its key from the storage. It returns
// an error wrapping fs.ErrNotExist if the certificate is missing,
// errKeyMissing if only the key is, and errMismatch if they do not belong
// together. Error texts name storage
// keys, never their contents.
func (c *CA) loadSigner(ctx context.Context, certKey, keyKey string) (*signer, error) {
	certPEM, err := c.st.Load(ctx, certKey)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", certKey, err)
	}
	keyPEM, err := c.st.Load(ctx, keyKey)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w %s", certKey, errKeyMissing, keyKey)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", keyKey, err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("decoding %s: no CERTIFICATE PEM block", certKey)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", certKey, err)
	}
	key, err := decodeKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", keyKey, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s and %s: %w", certKey, keyKey, errMismatch)
	}
	return &signer{cert: cert, key: key, certPEM: certPEM}, nil
}

// decodeKey parses a PEM-encoded ECDSA key. Its errors are generic on
// purpose: parser errors could quote the input.
func decodeKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, errors.New("not an EC private key")
	}
	return key, nil
}

// storeSigner writes the key first and then the certificate, so that a
// certificate in the storage always has its key next to it.
func (c *CA) storeSigner(ctx context.Context, s *signer, certKey, keyKey string) error {
	der, err := x509.MarshalECPrivateKey(s.key)
	if err != nil {
		return errors.New("encoding private key failed")
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	if err := c.st.Store(ctx, keyKey, keyPEM); err != nil {
		return fmt.Errorf("writing %s: %w", keyKey, err)
	}
	if err := c.st.Store(ctx, certKey, s.certPEM); err != nil {
		return fmt.Errorf("writing %s: %w", certKey, err)
	}
	return nil
}
