// The delegation state a fleet shares: the key of the delegation labels,
// and which domains' _acme-challenge CNAMEs point at their label.

package dnsserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/spine-platform/spine/internal/store"
)

// Store keys of the delegation state, shared by a fleet.
const (
	delegationKeyKey = "spine/dns01/secret"
	delegatedPrefix  = "spine/dns01/delegated"
	lookupTimeout    = 5 * time.Second
)

// DelegationKV is the part of the store that Delegations needs: a KV, and
// the store's lease locks (so one node makes the key).
type DelegationKV interface {
	KV
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	Unlock(ctx context.Context, name, owner string) error
}

// Delegations is the delegated DNS-01 state of a fleet, kept in the store:
// the secret key of the delegation labels (DelegationLabel), made once for
// the fleet, and the domains whose _acme-challenge CNAME has been seen
// pointing at their label, with the project it was seen for (at
// delegatedPrefix/<domain>). It holds the set as last read (Refresh,
// Check): one map, replaced whole by each read, so it answers as of the
// last read: a delegation another node records is seen at this node's
// next Refresh (each sync). The key never changes once made. Safe for
// concurrent use.
type Delegations struct {
	kv       DelegationKV
	zone     string
	resolver string
	key      atomic.Pointer[[]byte]
	seen     atomic.Pointer[map[string]string] // domain -> project
}

// NewDelegations returns the delegation state of zone (e.g.
// "acme.spine.example.net") kept in kv; CNAMEs are looked up through
// resolver ("host:port"; "": the first server of /etc/resolv.conf).
func NewDelegations(kv DelegationKV, zone, resolver string) *Delegations {
	d := &Delegations{kv: kv, zone: zone, resolver: resolver}
	d.seen.Store(&map[string]string{})
	return d
}

// LoadKey reads the fleet's delegation key, or makes it under a lock if
// no node has yet; it waits (polling every 100 ms) while another node
// makes it, until ctx ends.
func (d *Delegations) LoadKey(ctx context.Context) error {
	owner := fmt.Sprintf("delegations-%p", d)
	for {
		v, err := d.kv.GetKey(ctx, delegationKeyKey)
		if err == nil && len(v) >= 32 {
			d.key.Store(&v)
			return nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		ok, err := d.kv.TryLock(ctx, delegationKeyKey, owner, time.Minute)
		if err != nil {
			return err
		}
		if ok {
			if _, err = d.kv.GetKey(ctx, delegationKeyKey); errors.Is(err, store.ErrNotFound) {
				b := make([]byte, 32)
				rand.Read(b)
				err = d.kv.PutKey(ctx, delegationKeyKey, b)
			}
			d.kv.Unlock(context.WithoutCancel(ctx), delegationKeyKey, owner)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Target is the name a project's domain's _acme-challenge CNAME must point
// to, or "" before the key is loaded.
func (d *Delegations) Target(projectID, domain string) string {
	key := d.key.Load()
	if key == nil {
		return ""
	}
	return CNAMETarget(DelegationLabel(*key, projectID, domain), d.zone)
}

// SolverTarget is Solver.Target: the target of a domain whose CNAME has
// been seen.
func (d *Delegations) SolverTarget(domain string) (string, bool) {
	project, ok := (*d.seen.Load())[domain]
	if !ok {
		return "", false
	}
	t := d.Target(project, domain)
	return t, t != ""
}

// Delegated reports whether domain's CNAME was seen pointing at projectID's
// label, so its wildcard names can be solved.
func (d *Delegations) Delegated(domain, projectID string) bool {
	return (*d.seen.Load())[domain] == projectID && d.Target(projectID, domain) != ""
}

// Refresh reads from the store which domains' CNAMEs have been seen (by
// any node).
func (d *Delegations) Refresh(ctx context.Context) error {
	keys, err := d.kv.ListKeys(ctx, delegatedPrefix, false)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		v, err := d.kv.GetKey(ctx, k)
		if err != nil {
			continue
		}
		m[strings.TrimPrefix(k, delegatedPrefix+"/")] = string(v)
	}
	d.seen.Store(&m)
	return nil
}

// Check looks up _acme-challenge.<domain> of each of verified (the
// caller's verified domains, as many as a round may look up) and records
// which point at their target and which no longer do. A failed look-up
// keeps what was recorded. It reports whether anything changed; before the
// key is loaded it does nothing.
func (d *Delegations) Check(ctx context.Context, verified []store.Domain) (bool, error) {
	if d.key.Load() == nil {
		return false, nil
	}
	if err := d.Refresh(ctx); err != nil {
		return false, err
	}
	seen := *d.seen.Load()
	changed := false
	for _, dom := range verified {
		if ctx.Err() != nil {
			break
		}
		got, err := lookupCNAME(ctx, d.resolver, "_acme-challenge."+dom.Name)
		if err != nil {
			continue // unknown: keep what was recorded
		}
		key := delegatedPrefix + "/" + dom.Name
		ok := strings.EqualFold(dns.CanonicalName(got), d.Target(dom.ProjectID, dom.Name))
		switch {
		case ok && seen[dom.Name] != dom.ProjectID:
			if err := d.kv.PutKey(ctx, key, []byte(dom.ProjectID)); err != nil {
				return changed, err
			}
			changed = true
		case !ok && seen[dom.Name] != "":
			if err := d.kv.DeleteKey(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
				return changed, err
			}
			changed = true
		}
	}
	if changed {
		return true, d.Refresh(ctx)
	}
	return false, nil
}

// lookupCNAME returns the target of name's CNAME ("" if it has none)
// through resolver.
func lookupCNAME(ctx context.Context, resolver, name string) (string, error) {
	if resolver == "" {
		cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cfg.Servers) == 0 {
			return "", errors.New("dnsserver: no DNS resolver configured")
		}
		resolver = net.JoinHostPort(cfg.Servers[0], cfg.Port)
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeCNAME)
	m.RecursionDesired = true
	in, _, err := (&dns.Client{}).ExchangeContext(ctx, m, resolver)
	if err != nil {
		return "", err
	}
	if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
		return "", fmt.Errorf("dnsserver: lookup of %s: %s", name, dns.RcodeToString[in.Rcode])
	}
	for _, rr := range in.Answer {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, dns.Fqdn(name)) {
			return c.Target, nil
		}
	}
	return "", nil
}
