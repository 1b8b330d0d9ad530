// The periodic domain checks: pending verifications, and verified domains'
// DNS-01 delegation CNAMEs.

package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/store"
)

const (
	// maxChecksPerRound bounds the domains of each kind a round looks up,
	// so that a round stays bounded however many domains there are.
	maxChecksPerRound = 100
	// checkRoundTimeout bounds a whole round.
	checkRoundTimeout = 2 * time.Minute
)

// CheckDomains runs one round of domain checks: the ownership records of
// up to 100 domains waiting for verification (RecheckPending), then, with
// Options.CheckDelegations, the delegation CNAMEs of up to 100 verified
// domains. Rounds run one at a time, each within 2 minutes. It reports
// whether a domain's state changed.
func (p *Platform) CheckDomains(ctx context.Context) (bool, error) {
	p.checkMu.Lock()
	defer p.checkMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, checkRoundTimeout)
	defer cancel()
	var errs []error
	verified, err := p.RecheckPending(ctx, maxChecksPerRound)
	if err != nil {
		errs = append(errs, fmt.Errorf("re-checking pending domains: %w", err))
	}
	changed := verified > 0
	if p.checkDelegations != nil {
		c, err := p.checkDelegationsRound(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("checking DNS-01 delegations: %w", err))
		}
		changed = changed || c
	}
	return changed, errors.Join(errs...)
}

// checkDelegationsRound hands the first maxChecksPerRound verified domains
// (by name; names under localhost have no public DNS) to CheckDelegations.
func (p *Platform) checkDelegationsRound(ctx context.Context) (bool, error) {
	all, err := p.store.ListDomains(ctx, "")
	if err != nil {
		return false, fromStore(err, "domains")
	}
	var verified []store.Domain
	for _, d := range all {
		if d.Status != store.DomainVerified || hostname.InDomain(d.Name, "localhost") {
			continue
		}
		if len(verified) == maxChecksPerRound {
			break
		}
		verified = append(verified, d)
	}
	return p.checkDelegations(ctx, verified)
}

// RunDomainChecks runs CheckDomains every interval until ctx ends. After a
// round that changed something it calls changed (a delegation seen is a
// change no store notice announces); a round's errors go to log.
func (p *Platform) RunDomainChecks(ctx context.Context, interval time.Duration, changed func(context.Context), log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.RecheckDomains(ctx, changed, log)
	}
}

// RecheckDomains runs one round of CheckDomains now, as RunDomainChecks
// does: changed is called after a round that changed something, the
// round's errors go to log.
func (p *Platform) RecheckDomains(ctx context.Context, changed func(context.Context), log *slog.Logger) {
	c, err := p.CheckDomains(ctx)
	if err != nil && ctx.Err() == nil {
		log.Warn("domain checks", "err", err)
	}
	if c {
		changed(ctx)
	}
}
