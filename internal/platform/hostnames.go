package platform

import (
	"context"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// The reads of this file are ListCertificates and ListServices a page at a
// time, counted and filtered in the store, for a project with many
// hostnames (the dashboard's pages). A hostname's status is the one
// ListCertificates gives it: a hostname that is not served (Serving) is
// pending, with the reason as its error.

// HostnameCounts is how many of a project's hostnames have each status.
type HostnameCounts struct {
	Total    int
	ByStatus map[string]int // by status: CertPending ... CertUploaded
	// Expiring is how many certificates (of served hostnames) end before
	// the time CountHostnames was given.
	Expiring int
}

// CountHostnames counts the project's hostnames by status, as
// ListCertificates reports them.
func (p *Platform) CountHostnames(ctx context.Context, projectID string, endsBefore time.Time) (HostnameCounts, error) {
	unserved, _, err := p.unserved(ctx, projectID)
	if err != nil {
		return HostnameCounts{}, err
	}
	counts, err := p.store.CountHostnames(ctx, projectID, endsBefore, keys(unserved))
	if err != nil {
		return HostnameCounts{}, fromStore(err, "hostnames")
	}
	out := HostnameCounts{ByStatus: map[string]int{}}
	for _, c := range counts {
		out.Total += c.Count
		out.ByStatus[c.Status] += c.Count
		out.Expiring += c.Expiring
	}
	return out, nil
}

// unserved returns the zones of the project's hostnames whose hostnames
// are not served (store.HostnameZones), and the domains above them by name.
func (p *Platform) unserved(ctx context.Context, projectID string) (map[string]bool, map[string]store.Domain, error) {
	zones, err := p.store.HostnameZones(ctx, projectID)
	if err != nil {
		return nil, nil, fromStore(err, "hostnames")
	}
	byName, err := p.domainsByName(ctx, zones)
	if err != nil {
		return nil, nil, err
	}
	unserved := map[string]bool{}
	owner := store.Service{ProjectID: projectID}
	for _, z := range zones {
		// A zone is a hostname that is a domain, or a hostname's parent:
		// either way, its hostnames are served as it would be.
		if !Serving(owner, z, byName) {
			unserved[z] = true
		}
	}
	return unserved, byName, nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// HostnameFilter selects some of a project's hostnames (ListHostnames):
// the fields of store.HostnameQuery that a caller sets.
type HostnameFilter struct {
	Service, Hostname, Search, Status string
	EndsBefore                        time.Time
	Problems                          *store.Problems
	Offset, Limit                     int
}

// ListHostnames returns the page of the project's hostnames that f
// selects, as ListCertificates reports them, sorted by hostname, and how
// many f selects in all.
func (p *Platform) ListHostnames(ctx context.Context, projectID string, f HostnameFilter) ([]Certificate, int, error) {
	unserved, byName, err := p.unserved(ctx, projectID)
	if err != nil {
		return nil, 0, err
	}
	rows, total, err := p.store.ListHostnames(ctx, store.HostnameQuery{ProjectID: projectID, Service: f.Service, Hostname: f.Hostname,
		Search: f.Search, Status: f.Status, EndsBefore: f.EndsBefore, Problems: f.Problems, Unserved: keys(unserved),
		Offset: f.Offset, Limit: f.Limit})
	if err != nil {
		return nil, 0, fromStore(err, "hostnames")
	}
	out := make([]Certificate, 0, len(rows))
	owner := store.Service{ProjectID: projectID}
	for _, r := range rows {
		c := Certificate{Service: r.Service, CertStatus: r.Cert}
		if r.Unserved {
			c.Error = notServedReason(owner, r.Cert.Hostname, byName)
		}
		out = append(out, c)
	}
	return out, total, nil
}

// ServiceSummaries returns the page of the project's services that q
// selects (q.ProjectID and q.Unserved are set here), with counts of their
// hostnames, and how many q selects in all.
func (p *Platform) ServiceSummaries(ctx context.Context, projectID string, q store.ServiceQuery) ([]store.ServiceSummary, int, error) {
	q.ProjectID, q.Unserved = projectID, nil
	if q.Counts {
		unserved, _, err := p.unserved(ctx, projectID)
		if err != nil {
			return nil, 0, err
		}
		q.Unserved = keys(unserved)
	}
	ss, total, err := p.store.ListServiceSummaries(ctx, q)
	return ss, total, fromStore(err, "services")
}
