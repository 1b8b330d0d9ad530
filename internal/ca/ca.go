package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// Storage keys of the CA's certificates and keys, and the name of the lock
// that guards creating or renewing them.
const (
	keyRootCert         = "spine/ca/root.crt"
	keyRootKey          = "spine/ca/root.key"
	keyIntermediateCert = "spine/ca/intermediate.crt"
	keyIntermediateKey  = "spine/ca/intermediate.key"
	lockName            = "spine-ca"
)

// Lifetimes of the CA certificates, and the clock skew that every
// certificate's NotBefore is backdated by.
const (
	rootLifetime         = 10 * 365 * 24 * time.Hour
	intermediateLifetime = 365 * 24 * time.Hour
	clockSkew            = time.Minute
)

// Bounds and default of Options.LeafLifetime. With certmagic's renewal
// window and check interval, a lifetime under an hour could lapse before
// it is renewed; the intermediate lives a year, and a leaf never outlives
// it.
const (
	MinLeafLifetime     = time.Hour
	MaxLeafLifetime     = intermediateLifetime
	DefaultLeafLifetime = 24 * time.Hour
)

// CheckLeafLifetime refuses a lifetime outside MinLeafLifetime and
// MaxLeafLifetime, saying what to give; 0 (the default) is fine.
func CheckLeafLifetime(d time.Duration) error {
	if d != 0 && (d < MinLeafLifetime || d > MaxLeafLifetime) {
		return errors.New("give a duration from 1h to 8760h (a year), e.g. 24h")
	}
	return nil
}

// Options configures a CA. The zero value is ready to use.
type Options struct {
	// Name is the common name of the root; the intermediate is called
	// Name + " Intermediate". It only matters when the CA is created.
	// Default: "Spine Internal CA".
	Name string

	// LeafLifetime is how long issued certificates are valid (after the
	// one-minute backdating of NotBefore). A leaf never outlives the
	// intermediate that signed it. Default: 24h.
	LeafLifetime time.Duration

	// Now is the clock used for validity periods and renewal decisions.
	// Default: time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = "Spine Internal CA"
	}
	if o.LeafLifetime <= 0 {
		o.LeafLifetime = DefaultLeafLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// CA is an internal certificate authority whose root and intermediate live
// in a certmagic.Storage. It is safe for concurrent use.
type CA struct {
	st   certmagic.Storage
	opts Options

	root    *x509.Certificate
	rootKey *ecdsa.PrivateKey
	rootPEM []byte

	// renewMu makes one goroutine at a time renew the intermediate.
	renewMu sync.Mutex

	mu    sync.RWMutex // guards inter
	inter *signer
}

// signer is an intermediate certificate with its key and PEM encoding.
type signer struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

// Load loads the CA from st, creating the root and the intermediate if they
// do not exist yet and renewing the intermediate if less than a third of its
// life is left. Creation happens under the storage lock "spine-ca" and
// re-reads the storage once the lock is held, so concurrent Loads on one
// storage (one process or many nodes) end up with one CA.
func Load(ctx context.Context, st certmagic.Storage, opts Options) (*CA, error) {
	if st == nil {
		return nil, errors.New("ca: storage is nil")
	}
	c := &CA{st: st, opts: opts.withDefaults()}

	m, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	if !m.complete() || c.needsRenewal(m.inter.cert) {
		if m, err = c.createUnderLock(ctx); err != nil {
			return nil, err
		}
	}
	c.root, c.rootKey, c.rootPEM = m.root.cert, m.root.key, m.root.certPEM
	c.inter = m.inter
	return c, nil
}

// material is what the storage holds; nil fields are missing.
type material struct {
	root  *signer
	inter *signer // nil if missing, unusable, or not signed by root
}

func (m material) complete() bool { return m.root != nil && m.inter != nil }

// read loads whatever CA material the storage has. A missing root is not an
// error (it is created); a root certificate without its key is, because
// replacing the root would break every client that trusts it.
func (c *CA) read(ctx context.Context) (material, error) {
	var m material
	root, err := c.loadSigner(ctx, keyRootCert, keyRootKey)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return m, nil
	case err != nil:
		return m, fmt.Errorf("ca: loading root: %w", err)
	}
	m.root = root

	inter, err := c.loadSigner(ctx, keyIntermediateCert, keyIntermediateKey)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, errKeyMissing), errors.Is(err, errMismatch):
		// A missing or torn intermediate (a crash between writing its key
		// and its certificate) is simply made again.
		return m, nil
	case err != nil:
		return m, fmt.Errorf("ca: loading intermediate: %w", err)
	}
	if inter.cert.CheckSignatureFrom(root.cert) != nil {
		return m, nil // signed by some earlier root: replace it
	}
	m.inter = inter
	return m, nil
}

// createUnderLock creates the root and intermediate, or renews the
// intermediate, holding the storage lock. It re-reads the storage after
// taking the lock so that what another node wrote meanwhile is kept.
func (c *CA) createUnderLock(ctx context.Context) (material, error) {
	if err := c.st.Lock(ctx, lockName); err != nil {
		return material{}, fmt.Errorf("ca: locking %s: %w", lockName, err)
	}
	defer c.st.Unlock(context.WithoutCancel(ctx), lockName) //nolint:errcheck // the lock expires anyway

	m, err := c.read(ctx)
	if err != nil {
		return material{}, err
	}
	now := c.opts.Now()
	if m.root == nil {
		if m.root, err = newRoot(c.opts.Name, now); err != nil {
			return material{}, err
		}
		// The key is written before the certificate: a certificate in the
		// storage always has its key.
		if err := c.storeSigner(ctx, m.root, keyRootCert, keyRootKey); err != nil {
			return material{}, fmt.Errorf("ca: storing root: %w", err)
		}
		m.inter = nil
	}
	if m.inter == nil || c.needsRenewal(m.inter.cert) {
		if m.inter, err = newIntermediate(c.opts.Name, m.root, now); err != nil {
			return material{}, err
		}
		if err := c.storeSigner(ctx, m.inter, keyIntermediateCert, keyIntermediateKey); err != nil {
			return material{}, fmt.Errorf("ca: storing intermediate: %w", err)
		}
	}
	return m, nil
}

// needsRenewal reports whether less than a third of cert's life is left.
func (c *CA) needsRenewal(cert *x509.Certificate) bool {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Sub(c.opts.Now()) < life/3
}

// intermediate returns the current intermediate, renewing it first if it is
// due. Renewal goes through the storage so that a fleet shares the result.
func (c *CA) intermediate(ctx context.Context) (*signer, error) {
	c.mu.RLock()
	inter := c.inter
	c.mu.RUnlock()
	if !c.needsRenewal(inter.cert) {
		return inter, nil
	}

	c.renewMu.Lock()
	defer c.renewMu.Unlock()
	c.mu.RLock()
	inter = c.inter
	c.mu.RUnlock()
	if !c.needsRenewal(inter.cert) {
		return inter, nil // renewed while we waited
	}
	m, err := c.createUnderLock(ctx)
	if err != nil {
		return nil, err
	}
	if !m.root.cert.Equal(c.root) {
		return nil, errors.New("ca: the root in storage changed; reload the CA")
	}
	c.mu.Lock()
	c.inter = m.inter
	c.mu.Unlock()
	return m.inter, nil
}

// IssuerKey identifies this issuer's certificates in certmagic's storage.
func (c *CA) IssuerKey() string { return "spine-internal" }

// Root returns the root certificate. Callers must not modify it.
func (c *CA) Root() *x509.Certificate { return c.root }

// RootPEM returns the PEM encoding of the root certificate.
func (c *CA) RootPEM() []byte { return append([]byte(nil), c.rootPEM...) }

// Intermediate returns the current intermediate certificate. Callers must
// not modify it.
func (c *CA) Intermediate() *x509.Certificate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.inter.cert
}

// WriteRootPEM writes the root certificate to path (mode 0644), creating its
// folder (mode 0700) if needed, so that clients can be told to trust it
// (curl --cacert path).
func (c *CA) WriteRootPEM(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ca: writing root: %w", err)
	}
	// Write a temporary file and rename it so that a reader never sees half
	// a certificate.
	f, err := os.CreateTemp(dir, ".root-*.pem")
	if err != nil {
		return fmt.Errorf("ca: writing root: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(c.rootPEM)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ca: writing root: %w", err)
	}
	return nil
}

var _ certmagic.Issuer = (*CA)(nil)
