package platform

import (
	"context"
	"fmt"

	"github.com/spine-platform/spine/internal/store"
)

// Quota returns the project's limits in force and what it holds.
func (p *Platform) Quota(ctx context.Context, projectID string) (store.Quota, store.QuotaUsage, error) {
	q, u, err := p.store.ProjectQuota(ctx, projectID, p.now())
	return q, u, fromStore(err, "quota")
}

// ProjectQuota is Quota for the operator, with the project's own limits:
// the project must exist.
func (p *Platform) ProjectQuota(ctx context.Context, projectID string) (store.QuotaOverride, store.Quota, store.QuotaUsage, error) {
	if err := p.checkProject(ctx, projectID); err != nil {
		return store.QuotaOverride{}, store.Quota{}, store.QuotaUsage{}, err
	}
	o, err := p.store.GetQuotaOverride(ctx, projectID)
	if err != nil {
		return store.QuotaOverride{}, store.Quota{}, store.QuotaUsage{}, fromStore(err, "quota")
	}
	q, u, err := p.Quota(ctx, projectID)
	return o, q, u, err
}

// SetQuota replaces a project's own limits; a nil field follows the
// operator's default, 0 is no limit. A limit below what the project holds
// refuses new objects; nothing it has is removed.
func (p *Platform) SetQuota(ctx context.Context, projectID string, o store.QuotaOverride) error {
	for _, f := range []struct {
		name string
		v    *int
	}{{"domains", o.Domains}, {"services", o.Services}, {"hostnames", o.Hostnames}, {"orders_per_hour", o.OrdersPerHour}} {
		if f.v != nil && (*f.v < 0 || *f.v > store.MaxQuota) {
			return invalid("invalid_quota", fmt.Sprintf("%s=%d: give a limit from 0 (no limit) to %d, or null to follow the operator's default", f.name, *f.v, store.MaxQuota))
		}
	}
	if err := p.checkProject(ctx, projectID); err != nil {
		return err
	}
	return fromStore(p.store.SetQuotaOverride(ctx, projectID, o), fmt.Sprintf("project %q", projectID))
}

// checkProject returns a not_found error unless the project exists.
func (p *Platform) checkProject(ctx context.Context, projectID string) error {
	if projectID == "" || len(projectID) > 64 {
		return invalid("invalid_project", fmt.Sprintf("%.80q is not a project ID (spine project list)", projectID))
	}
	_, err := p.store.GetProject(ctx, projectID)
	if e, ok := fromStore(err, "project").(*Error); ok && e.Kind == NotFound {
		e.Message = fmt.Sprintf("project %q does not exist (spine project list)", projectID)
		return e
	}
	return fromStore(err, "project")
}
