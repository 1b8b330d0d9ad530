package platform

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/store"
	"golang.org/x/net/publicsuffix"
)

// AddDomain gives a domain to a project. The domain starts as
// pending_verification with a fresh verification token, unless verified is
// set (the operator vouches for it, as `spine up` does for localhost). A
// domain nobody vouches for must be registrable: not a public suffix.
//
// A domain that another project holds, or that sits above or below a domain
// another project holds, is refused: one tenant must never be able to serve
// names under another tenant's domain.
func (p *Platform) AddDomain(ctx context.Context, projectID, name string, verified bool) (store.Domain, error) {
	name, err := NormalizeHostname(name)
	if err != nil {
		return store.Domain{}, err
	}
	if !verified {
		if err := checkRegistrable(name); err != nil {
			return store.Domain{}, err
		}
	}
	if err := p.checkDomainFree(ctx, projectID, name); err != nil {
		return store.Domain{}, err
	}
	d := store.Domain{
		Name:        name,
		ProjectID:   projectID,
		Status:      store.DomainPending,
		VerifyToken: newVerifyToken(),
		CreatedAt:   p.now().UTC(),
	}
	if verified {
		d.Status = store.DomainVerified
		d.VerifiedAt = d.CreatedAt
	}
	if err := p.store.CreateDomain(ctx, d); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Another write won a race since the check above; the store
			// refused this one in its transaction. Say who holds what.
			if err := p.checkDomainFree(ctx, projectID, name); err != nil {
				return store.Domain{}, err
			}
		}
		return store.Domain{}, fromStore(err, fmt.Sprintf("domain %q", name))
	}
	return d, nil
}

// checkDomainFree returns the error that explains why name cannot join the
// project, or nil. The store checks the same rule again inside its write.
func (p *Platform) checkDomainFree(ctx context.Context, projectID, name string) error {
	all, err := p.store.ListDomains(ctx, "")
	if err != nil {
		return fromStore(err, fmt.Sprintf("domain %q", name))
	}
	for _, d := range all {
		if d.ProjectID == projectID {
			if d.Name == name {
				return &Error{Kind: Conflict, Code: "conflict", Message: fmt.Sprintf("domain %q is already in this project", name)}
			}
			continue
		}
		if d.Name == name {
			return &Error{Kind: Conflict, Code: "domain_taken", Message: fmt.Sprintf("domain %q belongs to another project; to take it over, prove that you control it: create\n  %s\nthen run `spine domain verify %s`", name, ClaimRecord(projectID, name), name)}
		}
		if hostname.InDomain(name, d.Name) || hostname.InDomain(d.Name, name) {
			return &Error{Kind: Conflict, Code: "domain_taken", Message: fmt.Sprintf("domain %q overlaps a domain that another project holds; ask its owner to remove it, or prove ownership (spine domain verify)", name)}
		}
	}
	return nil
}

// checkRegistrable refuses a public suffix ("com", "co.uk", "github.io") or
// a single label as a project's own domain: holding one would block every
// other project from every name under it. The operator can still vouch for
// such a domain (`spine up` does for "localhost").
func checkRegistrable(name string) error {
	if suffix, _ := publicsuffix.PublicSuffix(name); suffix == name {
		what := "a public suffix"
		if !strings.Contains(name, ".") {
			what = "a top-level name"
		}
		return &Error{Kind: Invalid, Code: "invalid_domain", Message: fmt.Sprintf(
			"domain %q is %s, which many owners share; add the domain you own under it (for example \"example.%s\")", name, what, name)}
	}
	return nil
}

// EnsureDomain is AddDomain that succeeds when the project already holds the
// domain. `spine up` uses it on every start.
func (p *Platform) EnsureDomain(ctx context.Context, projectID, name string, verified bool) (store.Domain, error) {
	d, err := p.AddDomain(ctx, projectID, name, verified)
	var pe *Error
	if err != nil && asError(err, &pe) && pe.Code == "conflict" {
		norm, _ := NormalizeHostname(name)
		return p.GetDomain(ctx, projectID, norm)
	}
	return d, err
}

// GetDomain returns one of the project's domains.
func (p *Platform) GetDomain(ctx context.Context, projectID, name string) (store.Domain, error) {
	norm, err := NormalizeHostname(name)
	if err != nil {
		return store.Domain{}, err
	}
	d, err := p.store.GetDomain(ctx, norm)
	if err == nil && d.ProjectID != projectID {
		err = store.ErrNotFound // another project's domain looks like no domain at all
	}
	if err != nil {
		return store.Domain{}, fromStore(err, fmt.Sprintf("domain %q", norm))
	}
	return d, nil
}

// ListDomains returns the project's domains.
func (p *Platform) ListDomains(ctx context.Context, projectID string) ([]store.Domain, error) {
	ds, err := p.store.ListDomains(ctx, projectID)
	return ds, fromStore(err, "domains")
}

// RemoveDomain takes a domain away from a project. It is refused while a
// service of the project still uses it.
func (p *Platform) RemoveDomain(ctx context.Context, projectID, name string) error {
	norm, err := NormalizeHostname(name)
	if err != nil {
		return err
	}
	err = p.store.DeleteDomain(ctx, projectID, norm)
	if err != nil {
		e := fromStore(err, fmt.Sprintf("domain %q", norm)).(*Error)
		if e.Kind == InUse {
			// The store names the service (and the hostname, if the service
			// holds one under the domain without using it as its domain).
			e.Message = fmt.Sprintf("%v; delete them first: the services that use the domain, or their hostnames under it (spine service list)", err)
		}
		return e
	}
	return nil
}

// VerificationRecord is the DNS record that proves a project owns a domain.
func VerificationRecord(d store.Domain) string {
	return fmt.Sprintf("_spine-challenge.%s. 300 IN TXT %q", d.Name, d.VerifyToken)
}

func newVerifyToken() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "spine-verify=" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
