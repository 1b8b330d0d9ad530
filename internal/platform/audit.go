package platform

import (
	"context"
	"fmt"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// AuditSettings bound the audit trail: entries older than MaxAge go, and
// of each project all but the newest MaxEntries. Zero or negative: the
// default.
type AuditSettings struct {
	MaxAge     time.Duration // default DefaultAuditMaxAge (90 days)
	MaxEntries int           // default DefaultAuditMaxEntries (10,000)
}

func (a AuditSettings) withDefaults() AuditSettings {
	if a.MaxAge <= 0 {
		a.MaxAge = DefaultAuditMaxAge
	}
	if a.MaxEntries <= 0 {
		a.MaxEntries = DefaultAuditMaxEntries
	}
	return a
}

// Audit trail defaults (AuditSettings).
const (
	DefaultAuditMaxAge     = 90 * 24 * time.Hour
	DefaultAuditMaxEntries = 10000 // per project
	maxAuditPage           = 1000
)

// Record stores one audit entry. Callers fill every field but ID; the API
// records each change it is asked for, refusals included, and never puts a
// token's value or a secret in it.
func (p *Platform) Record(ctx context.Context, e store.AuditEntry) error {
	if e.At.IsZero() {
		e.At = p.now().UTC()
	}
	return fromStore(p.store.AppendAudit(ctx, e), "audit entry")
}

// AuditQuery is what a caller asks of the audit trail.
type AuditQuery struct {
	// Project is a project's ID or name; "" is the caller's own project, or
	// every project for an operator. Only an operator may name another.
	Project string
	Before  int64 // entries older than this ID; 0: from the newest
	Limit   int   // default and most: 1000
}

// Audit returns audit entries, newest first.
func (p *Platform) Audit(ctx context.Context, caller Caller, q AuditQuery) ([]store.AuditEntry, error) {
	if q.Limit < 0 || q.Limit > maxAuditPage {
		return nil, invalid("invalid_limit", fmt.Sprintf("limit must be from 1 to %d", maxAuditPage))
	}
	if q.Before < 0 {
		return nil, invalid("invalid_before", "before must be the ID of an audit entry (a positive number)")
	}
	project := caller.Project.ID
	switch {
	case caller.Has(ScopeOperator) && q.Project == "":
		project = "" // every project
	case q.Project != "" && q.Project != caller.Project.ID && q.Project != caller.Project.Name:
		if err := caller.Require(ScopeOperator); err != nil {
			return nil, err
		}
		pr, err := p.findProject(ctx, q.Project)
		if err != nil {
			return nil, err
		}
		project = pr.ID
	}
	es, err := p.store.ListAudit(ctx, store.AuditQuery{ProjectID: project, Before: q.Before, Limit: q.Limit})
	return es, fromStore(err, "audit entries")
}

// PruneAudit deletes the audit entries older than Options.Audit.MaxAge and,
// of each project, all but the newest Options.Audit.MaxEntries.
func (p *Platform) PruneAudit(ctx context.Context) (int64, error) {
	n, err := p.store.PruneAudit(ctx, p.now().Add(-p.opts.Audit.MaxAge), p.opts.Audit.MaxEntries)
	return n, fromStore(err, "audit entries")
}
