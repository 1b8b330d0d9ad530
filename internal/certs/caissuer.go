// The internal CA as an issuer of a fleet: given its CA once the store
// answers, and stopped when the issuance lock's lease is lost.

package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/ca"
)

// CAIssuer is the internal CA as a certmagic.Issuer for Config.Issuers. It
// can be built before the CA is loaded (a node that starts from its
// snapshot loads the CA once the store answers): until SetCA, Issue fails
// and certmagic retries later. Each issuance runs under the lease of the
// name's issuance lock in Leases (Storage.IssuanceContext), so a node cut
// off from the store stops signing a certificate it could not store while
// another node, once the lease ends, issues it again.
type CAIssuer struct {
	ca          atomic.Pointer[ca.CA]
	leases      *Storage
	beforeIssue func(ctx context.Context, names []string) error
}

var _ certmagic.Issuer = (*CAIssuer)(nil)

// NewCAIssuer returns a CAIssuer whose issuances run under the issuance
// leases of leases (the Manager's Config.Storage). beforeIssue, if not
// nil, runs in each Issue under the issuance lease, while certmagic holds
// the name's issuance lock; its error stops the issuance. Spine passes
// nil; tests pass a hook that holds the lock (config.Config.BeforeIssue).
func NewCAIssuer(leases *Storage, beforeIssue func(ctx context.Context, names []string) error) *CAIssuer {
	return &CAIssuer{leases: leases, beforeIssue: beforeIssue}
}

// SetCA gives the issuer its CA.
func (i *CAIssuer) SetCA(c *ca.CA) { i.ca.Store(c) }

// CA returns the CA given by SetCA, or nil.
func (i *CAIssuer) CA() *ca.CA { return i.ca.Load() }

// RootPEM is the CA's root certificate in PEM (what the API and the
// dashboard hand out), nil until SetCA.
func (i *CAIssuer) RootPEM() []byte {
	if c := i.CA(); c != nil {
		return c.RootPEM()
	}
	return nil
}

// Issue signs csr with the CA, under the issuance lease of its names.
func (i *CAIssuer) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	c := i.ca.Load()
	if c == nil {
		return nil, errors.New("certs: the internal CA is not loaded yet (the store is unreachable)")
	}
	names := namesOf(csr)
	ctx, cancel := i.leases.IssuanceContext(ctx, names)
	defer cancel()
	if i.beforeIssue != nil {
		if err := i.beforeIssue(ctx, names); err != nil {
			return nil, fmt.Errorf("certs: issuance for %v stopped: %w", names, err)
		}
	}
	cert, err := c.Issue(ctx, csr)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("certs: issuance for %v stopped: %w (%w)", names, context.Cause(ctx), err)
	}
	return cert, err
}

// IssuerKey is the internal CA's, so that certificates are stored where
// ca.CA would store them.
func (i *CAIssuer) IssuerKey() string { return (*ca.CA).IssuerKey(nil) }
