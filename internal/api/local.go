package api

import (
	"context"
	"net/http"
	"slices"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/platform"
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
