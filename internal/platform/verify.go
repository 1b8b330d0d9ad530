package platform

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"slices"
	"strings"

	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// Ownership checks the DNS record that proves control of a domain: a TXT
// record at _spine-challenge.<domain> holding value (the domain's
// VerifyToken, "spine-verify=..."). ok is false when the record is missing
// or holds other values; detail then says, for the user, what was found
// instead. err is set only when the lookup itself failed (the resolver
// did not answer); detail says so too.
type Ownership func(ctx context.Context, domain, value string) (ok bool, detail string, err error)

// Verification is the outcome of VerifyDomain.
type Verification struct {
	Domain store.Domain
	// Moved is set when the domain came from another project: that
	// project's services on it are no longer served.
	Moved bool
	// Detail says what the lookup found ("verified", or what is there
	// instead of the expected record).
	Detail string
}

// claimToken is the value with which a project proves control of a domain
// that another project holds. It is derived from the project and the
// domain rather than stored, so a claim needs no state until it succeeds;
// it need not be secret: publishing it requires control of the domain's
// DNS, and it only ever benefits projectID.
func claimToken(projectID, domain string) string {
	sum := sha256.Sum256([]byte("spine-claim\x00" + projectID + "\x00" + domain))
	return "spine-verify=" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:20]))
}

// ClaimRecord is the DNS record with which projectID takes over a domain
// that another project holds.
func ClaimRecord(projectID, domain string) string {
	return VerificationRecord(store.Domain{Name: domain, VerifyToken: claimToken(projectID, domain)})
}

// VerifyDomain looks up the ownership record of the domain name for
// projectID and records what it found. A domain of the project moves to
// verified when its record is there. A domain that another project holds
// (verified or not) moves to projectID when projectID's own claim record
// (ClaimRecord) is there; otherwise the answer is a domain_taken conflict
// that says which record to create.
func (p *Platform) VerifyDomain(ctx context.Context, projectID, name string) (Verification, error) {
	if p.ownership == nil {
		return Verification{}, &Error{Kind: Unavailable, Code: "verification_unavailable", Message: "this server has no DNS resolver configured for domain verification (spine serve --dns-resolver ADDR)"}
	}
	norm, err := NormalizeHostname(name)
	if err != nil {
		return Verification{}, err
	}
	d, err := p.store.GetDomain(ctx, norm)
	if err != nil {
		return Verification{}, fromStore(err, fmt.Sprintf("domain %q", norm))
	}
	if d.ProjectID == projectID {
		return p.verifyOwn(ctx, d)
	}
	return p.claim(ctx, projectID, d)
}

func (p *Platform) verifyOwn(ctx context.Context, d store.Domain) (Verification, error) {
	ok, detail, _ := p.ownership(ctx, d.Name, d.VerifyToken)
	now := p.now().UTC()
	d.CheckedAt = now
	if ok {
		if d.Status != store.DomainVerified {
			d.VerifiedAt = now
		}
		d.Status, d.CheckError = store.DomainVerified, ""
	} else {
		// A verified domain stays verified when its record goes away:
		// the record proves control once, and removing it must not take
		// a site down. Only another project's proof moves it.
		d.CheckError = detail
	}
	if err := p.store.UpdateDomain(ctx, d); err != nil {
		return Verification{}, fromStore(err, fmt.Sprintf("domain %q", d.Name))
	}
	return Verification{Domain: d, Detail: detail}, nil
}

func (p *Platform) claim(ctx context.Context, projectID string, d store.Domain) (Verification, error) {
	token := claimToken(projectID, d.Name)
	ok, detail, _ := p.ownership(ctx, d.Name, token)
	if !ok {
		return Verification{}, &Error{Kind: Conflict, Code: "domain_taken", Message: fmt.Sprintf(
			"domain %q belongs to another project; to take it over, prove that you control it: create\n  %s\nand run `spine domain verify %s` again (%s)",
			d.Name, ClaimRecord(projectID, d.Name), d.Name, detail)}
	}
	now := p.now().UTC()
	d.ProjectID, d.VerifyToken = projectID, token
	d.Status, d.VerifiedAt, d.CheckedAt, d.CheckError = store.DomainVerified, now, now, ""
	if err := p.store.UpdateDomain(ctx, d); err != nil {
		return Verification{}, fromStore(err, fmt.Sprintf("domain %q", d.Name))
	}
	return Verification{Domain: d, Moved: true, Detail: detail}, nil
}

// RecheckPending verifies up to limit domains that wait for verification,
// of every project, the least recently checked first. It returns how many
// became verified. Each lookup is bounded by ctx.
func (p *Platform) RecheckPending(ctx context.Context, limit int) (int, error) {
	if p.ownership == nil {
		return 0, nil
	}
	all, err := p.store.ListDomains(ctx, "")
	if err != nil {
		return 0, fromStore(err, "domains")
	}
	var pending []store.Domain
	for _, d := range all {
		if d.Status == store.DomainPending {
			pending = append(pending, d)
		}
	}
	sortByChecked(pending)
	verified := 0
	for i, d := range pending {
		if i >= limit || ctx.Err() != nil {
			break
		}
		v, err := p.verifyOwn(ctx, d)
		if err != nil {
			return verified, err
		}
		if v.Domain.Status == store.DomainVerified {
			verified++
		}
	}
	return verified, nil
}

func sortByChecked(ds []store.Domain) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j].CheckedAt.Before(ds[j-1].CheckedAt); j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// DelegationRecord is the CNAME a project creates once so that Spine can
// answer DNS-01 challenges for the domain, and so get wildcard
// certificates, without DNS credentials; "" when this server runs no
// delegation zone.
func (p *Platform) DelegationRecord(d store.Domain) string {
	if p.delegation == nil {
		return ""
	}
	target := p.delegation(d.ProjectID, d.Name)
	if target == "" {
		return ""
	}
	return fmt.Sprintf("_acme-challenge.%s. 300 IN CNAME %s", d.Name, target)
}

// Serving reports, for each hostname of svc, whether it may be served:
// the hostname is under a domain that is verified and held by the
// service's project. byName holds every domain by name.
func Serving(svc store.Service, host string, byName map[string]store.Domain) bool {
	for name := host; name != ""; {
		if d, ok := byName[name]; ok {
			return d.ProjectID == svc.ProjectID && d.Status == store.DomainVerified
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			break
		}
		name = name[i+1:]
	}
	return false
}

// ServedOnly returns svcs with only the hostnames Serving allows, leaving
// out the services that keep none. domains is every domain. It filters
// svcs in place (a copy of a million services was 200 MB of a node's
// sync): the caller's list is its own, and what follows the returned
// slice in it is cleared. It yields the processor during long lists
// (sched.Yielder).
func ServedOnly(svcs []store.Service, domains []store.Domain) []store.Service {
	byName := make(map[string]store.Domain, len(domains))
	for _, d := range domains {
		byName[d.Name] = d
	}
	out := svcs[:0]
	var y sched.Yielder
	for _, s := range svcs {
		y.Maybe()
		// A new list only for a service that loses a hostname: at a
		// node's sync nearly every service keeps them all.
		hosts := s.Hostnames
		for i, h := range s.Hostnames {
			if !Serving(s, h, byName) {
				hosts = slices.Clone(s.Hostnames[:i])
				for _, h := range s.Hostnames[i+1:] {
					if Serving(s, h, byName) {
						hosts = append(hosts, h)
					}
				}
				break
			}
		}
		if len(hosts) > 0 {
			s.Hostnames = hosts
			out = append(out, s)
		}
	}
	clear(svcs[len(out):]) // what was left out holds no strings alive
	return out
}

// domainsByName returns, by name, the domains at or above any of hosts
// (whichever project holds them): what Serving and notServedReason look
// up for those hosts, read by name rather than every domain there is.
func (p *Platform) domainsByName(ctx context.Context, hosts []string) (map[string]store.Domain, error) {
	above := map[string]bool{}
	for _, h := range hosts {
		for name := h; name != "" && !above[name]; {
			above[name] = true
			i := strings.IndexByte(name, '.')
			if i < 0 {
				break
			}
			name = name[i+1:]
		}
	}
	names := make([]string, 0, len(above))
	for n := range above {
		names = append(names, n)
	}
	ds, err := p.store.DomainsNamed(ctx, names)
	if err != nil {
		return nil, fromStore(err, "domains")
	}
	byName := make(map[string]store.Domain, len(ds))
	for _, d := range ds {
		byName[d.Name] = d
	}
	return byName, nil
}

// notServedReason says why Serving is false for host.
func notServedReason(svc store.Service, host string, byName map[string]store.Domain) string {
	for name := host; name != ""; {
		if d, ok := byName[name]; ok {
			if d.ProjectID != svc.ProjectID {
				return fmt.Sprintf("domain %s now belongs to another project, which proved control of it; %s is not served", d.Name, host)
			}
			return fmt.Sprintf("domain %s is not verified yet: create %s and run `spine domain verify %s`", d.Name, VerificationRecord(d), d.Name)
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			break
		}
		name = name[i+1:]
	}
	return fmt.Sprintf("%s is under none of the project's domains", host)
}
