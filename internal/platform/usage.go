package platform

import (
	"context"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// Bounds of the last-use book.
const (
	maxPendingUses = 10000  // uses waiting for the next flush; more are dropped until then
	maxTrackedUses = 100000 // tokens whose last written use is remembered; emptied when full
)

// usageBook records when tokens were used, so that "last used" costs no
// store write on the request path: Authenticate notes a use in memory, at
// most once per token per lastUsedStep, and FlushUsage writes the noted
// uses in one transaction. Bounded: at most maxPendingUses uses wait for a
// flush (further ones are dropped until the next flush, and counted), and
// at most maxTrackedUses tokens are remembered (the book is emptied when
// full, which costs at most one extra write per token). A flush that fails
// (the store is away) keeps its uses for the next one. The store moves a
// token's last use forward by at least lastUsedStep only, so that the
// nodes of a fleet do not each write every token every minute.
type usageBook struct {
	mu      sync.Mutex
	pending map[string]time.Time // token ID -> use not written yet
	noted   map[string]time.Time // token ID -> last use noted
	dropped int
}

func (u *usageBook) note(tokenID string, at time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if last, ok := u.noted[tokenID]; ok && at.Sub(last) < lastUsedStep {
		return
	}
	if u.pending == nil {
		u.pending, u.noted = map[string]time.Time{}, map[string]time.Time{}
	}
	if _, ok := u.pending[tokenID]; !ok && len(u.pending) >= maxPendingUses {
		u.dropped++
		return
	}
	if len(u.noted) >= maxTrackedUses {
		clear(u.noted)
	}
	u.noted[tokenID] = at
	u.pending[tokenID] = at
}

// take returns the pending uses and forgets them.
func (u *usageBook) take() ([]store.TokenUse, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]store.TokenUse, 0, len(u.pending))
	for id, at := range u.pending {
		out = append(out, store.TokenUse{ID: id, At: at})
	}
	clear(u.pending)
	dropped := u.dropped
	u.dropped = 0
	return out, dropped
}

// putBack returns uses that could not be written, keeping newer ones.
func (u *usageBook) putBack(uses []store.TokenUse) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, x := range uses {
		if at, ok := u.pending[x.ID]; ok && at.After(x.At) {
			continue
		}
		if len(u.pending) >= maxPendingUses {
			u.dropped++
			continue
		}
		u.pending[x.ID] = x.At
	}
}

// FlushUsage writes the token uses noted since the last flush. It returns
// how many it wrote; on error they are kept for the next flush.
func (p *Platform) FlushUsage(ctx context.Context) (int, error) {
	uses, dropped := p.usage.take()
	if dropped > 0 {
		p.log.Warn("token uses not recorded: too many tokens used between two flushes", "dropped", dropped, "bound", maxPendingUses)
	}
	if len(uses) == 0 {
		return 0, nil
	}
	if err := p.store.TouchTokens(ctx, uses, lastUsedStep); err != nil {
		p.usage.putBack(uses)
		return 0, fromStore(err, "token use")
	}
	return len(uses), nil
}

// Maintain runs the platform's background work until ctx ends: it writes
// token uses every UsageFlushInterval and prunes the audit trail every
// AuditPruneInterval. Failures (the store away) are logged and retried.
func (p *Platform) Maintain(ctx context.Context) {
	flush := time.NewTicker(p.opts.UsageFlushInterval)
	defer flush.Stop()
	prune := time.NewTicker(p.opts.AuditPruneInterval)
	defer prune.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			p.FlushUsage(fctx) //nolint:errcheck // best effort at shutdown
			cancel()
			return
		case <-flush.C:
			fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if _, err := p.FlushUsage(fctx); err != nil && ctx.Err() == nil {
				p.log.Debug("recording token uses", "err", err)
			}
			cancel()
		case <-prune.C:
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			if n, err := p.PruneAudit(pctx); err != nil && ctx.Err() == nil {
				p.log.Debug("pruning the audit trail", "err", err)
			} else if n > 0 {
				p.log.Info("pruned the audit trail", "entries", n)
			}
			cancel()
		}
	}
}
