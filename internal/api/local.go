package api

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// Local is the API called in-process, for the dashboard: Handler is the API
// itself (every route checked, and every change audited, as over the
// network), and Identify, Services and Certificates are the reads the
// dashboard makes on every page, answered by the same code as GET
// /v1/project, /v1/services, /v1/certificates and /v1/events but without JSON, which
// for a project with 10,000 hostnames costs more than the read. Errors are
// *client.Error, the API's answer.
type Local struct {
	s *server
	h http.Handler
}

// NewLocal returns the API as New does, with its in-process reads.
func NewLocal(cfg Config) *Local {
	s := newServer(cfg)
	h, _ := s.routes()
	return &Local{s: s, h: h}
}

// Handler is the API's HTTP handler.
func (l *Local) Handler() http.Handler { return l.h }

// Identity is who a token is: its project, name and scopes (every one
// spelled out).
type Identity struct {
	Project client.Project
	Token   string
	Scopes  []string
}

// Has reports whether the identity has scope.
func (id Identity) Has(scope string) bool { return slices.Contains(id.Scopes, scope) }

// Identify checks token as every route does, asking for no scope.
func (l *Local) Identify(ctx context.Context, token string) (Identity, error) {
	c, err := l.s.cfg.Platform.Authenticate(ctx, token)
	if err != nil {
		return Identity{}, l.s.answer("LOCAL", "identify", err)
	}
	return Identity{Project: projectOut(c.Project), Token: c.Token.Name, Scopes: platform.EffectiveScopes(c.Token.Scopes)}, nil
}

// Services is GET /v1/services for token.
func (l *Local) Services(ctx context.Context, token string) ([]client.Service, error) {
	c, err := l.caller(ctx, token, "/v1/services")
	if err != nil {
		return nil, err
	}
	ss, err := l.s.services(ctx, c.Project.ID)
	if err != nil {
		return nil, l.s.answer("GET", "/v1/services", err)
	}
	return ss, nil
}

// Certificates is GET /v1/certificates for token.
func (l *Local) Certificates(ctx context.Context, token string) ([]client.Certificate, error) {
	c, err := l.caller(ctx, token, "/v1/certificates")
	if err != nil {
		return nil, err
	}
	cs, err := l.s.certificates(ctx, c.Project.ID)
	if err != nil {
		return nil, l.s.answer("GET", "/v1/certificates", err)
	}
	return cs, nil
}

// LastEventID is the ID of the latest event of token's project, 0 if
// none: where GET /v1/events/stream?after= starts so that nothing
// recorded after a read is missed.
func (l *Local) LastEventID(ctx context.Context, token string) (int64, error) {
	c, err := l.caller(ctx, token, "/v1/events")
	if err != nil {
		return 0, err
	}
	id, err := l.s.cfg.Platform.LastEventID(ctx, c.Project.ID)
	if err != nil {
		return 0, l.s.answer("GET", "/v1/events", err)
	}
	return id, nil
}

// Events is GET /v1/events?after=&limit= for token: an event's data is
// kept as stored, not encoded again.
func (l *Local) Events(ctx context.Context, token string, after, limit int64) (client.EventPage, error) {
	c, err := l.caller(ctx, token, "/v1/events")
	if err != nil {
		return client.EventPage{}, err
	}
	page, err := l.s.events(ctx, c.Project.ID, after, limit)
	if err != nil {
		return client.EventPage{}, l.s.answer("GET", "/v1/events", err)
	}
	return page, nil
}

func (l *Local) caller(ctx context.Context, token, path string) (platform.Caller, error) {
	c, err := l.s.cfg.Platform.Authenticate(ctx, token)
	if err == nil {
		err = c.Require(platform.ScopeRead)
	}
	if err != nil {
		return platform.Caller{}, l.s.answer("GET", path, err)
	}
	return c, nil
}

// HostnameCounts is how many of a project's hostnames have each
// certificate status (as GET /v1/certificates reports them), and how
// many certificates end before a time.
type HostnameCounts = platform.HostnameCounts

// HostnameCounts counts the hostnames of token's project by status, in
// the store (not reading them); Expiring counts the certificates that end
// before endsBefore.
func (l *Local) HostnameCounts(ctx context.Context, token string, endsBefore time.Time) (HostnameCounts, error) {
	c, err := l.caller(ctx, token, "/v1/certificates")
	if err != nil {
		return HostnameCounts{}, err
	}
	n, err := l.s.cfg.Platform.CountHostnames(ctx, c.Project.ID, endsBefore)
	if err != nil {
		return HostnameCounts{}, l.s.answer("GET", "/v1/certificates", err)
	}
	return n, nil
}

// HostnameQuery selects some of a project's hostnames (Local.Hostnames).
// Its zero filters select every hostname.
type HostnameQuery struct {
	Service  string // only this service's
	Hostname string // only this hostname
	Search   string // only the hostnames that contain this
	Status   string // only those with this status
	// EndsBefore, if not zero, selects the certificates that end before it.
	EndsBefore time.Time
	// ProblemsAt, if not zero, selects the hostnames that need someone at
	// that time: a failed certificate, pending with an error or not served,
	// or ending within ProblemsWithin and more than half-way through its
	// renewal window.
	ProblemsAt     time.Time
	ProblemsWithin time.Duration
	// Offset and Limit page the answer, sorted by hostname; Limit 0 is no limit.
	Offset, Limit int
}

// HostnamePage is a page of a project's certificates, and how many the
// query selects in all.
type HostnamePage struct {
	Certificates []client.Certificate
	Total        int
}

// Hostnames is the page of GET /v1/certificates for token that q selects,
// read a page at a time from the store.
func (l *Local) Hostnames(ctx context.Context, token string, q HostnameQuery) (HostnamePage, error) {
	c, err := l.caller(ctx, token, "/v1/certificates")
	if err != nil {
		return HostnamePage{}, err
	}
	f := platform.HostnameFilter{Service: q.Service, Hostname: q.Hostname, Search: q.Search, Status: q.Status,
		EndsBefore: q.EndsBefore, Offset: q.Offset, Limit: q.Limit}
	if !q.ProblemsAt.IsZero() {
		f.Problems = &store.Problems{Now: q.ProblemsAt, EndsBefore: q.ProblemsAt.Add(q.ProblemsWithin), RenewalRatio: l.s.cfg.RenewalWindowRatio}
	}
	cs, total, err := l.s.cfg.Platform.ListHostnames(ctx, c.Project.ID, f)
	if err != nil {
		return HostnamePage{}, l.s.answer("GET", "/v1/certificates", err)
	}
	return HostnamePage{Certificates: l.s.certificatesOut(cs), Total: total}, nil
}

// ServiceQuery selects some of a project's services (Local.ServiceSummaries).
type ServiceQuery struct {
	// Search, if not "", selects the services whose name or one of whose
	// hostnames contains it.
	Search string
	// Hostnames is how many of each service's hostnames to return, those
	// that contain Search first.
	Hostnames int
	// Counts asks for ServiceSummary's counts (which read the hostnames of
	// the page's services); without it they are 0.
	Counts bool
	// Offset and Limit page the answer, sorted by name; Limit 0 is no limit.
	Offset, Limit int
}

// ServiceSummary is a service with some of its hostnames (Hostnames, URLs)
// and counts of them all.
type ServiceSummary struct {
	client.Service
	HostnameCount int // with ServiceQuery.Counts
	ActiveCount   int // hostnames whose certificate is active, with ServiceQuery.Counts
}

// ServicePage is a page of a project's services, and how many the query
// selects in all.
type ServicePage struct {
	Services []ServiceSummary
	Total    int
}

// ServiceSummaries is the page of GET /v1/services for token that q
// selects, read a page at a time from the store.
func (l *Local) ServiceSummaries(ctx context.Context, token string, q ServiceQuery) (ServicePage, error) {
	c, err := l.caller(ctx, token, "/v1/services")
	if err != nil {
		return ServicePage{}, err
	}
	ss, total, err := l.s.cfg.Platform.ServiceSummaries(ctx, c.Project.ID, store.ServiceQuery{Search: q.Search, Hostnames: q.Hostnames, Counts: q.Counts, Offset: q.Offset, Limit: q.Limit})
	if err != nil {
		return ServicePage{}, l.s.answer("GET", "/v1/services", err)
	}
	out := ServicePage{Services: make([]ServiceSummary, 0, len(ss)), Total: total}
	for _, s := range ss {
		out.Services = append(out.Services, ServiceSummary{Service: l.s.serviceOut(s.Service), HostnameCount: s.HostnameCount, ActiveCount: s.ActiveCount})
	}
	return out, nil
}
