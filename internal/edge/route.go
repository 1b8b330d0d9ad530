package edge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/metrics"
)

// Route sends the requests for one hostname to the upstreams of a service.
type Route struct {
	// Host is the hostname served, in normal form (hostname.Check): lower
	// case, punycode, no port, no trailing dot.
	Host string
	// Project and Service name the owner, for logs and error pages.
	Project, Service string
	// Upstreams are absolute http:// or https:// URLs, used in turn. A path
	// in the URL is prepended to the request's path.
	Upstreams []string
	// HSTSMaxAge is the max-age, in seconds, of the Strict-Transport-Security
	// header set on every HTTPS response; 0 sets none (an upstream's own
	// header then passes through).
	HSTSMaxAge int
	// HealthPath is the path (with an optional query) that the active
	// health check asks each upstream for, after the upstream URL's own
	// path. Default: Config.HealthPath.
	HealthPath string
	// HealthInterval is the time between two active health checks of each
	// upstream. Default: Config.HealthInterval.
	HealthInterval time.Duration
	// Suspended: the owner's project is suspended by the operator; every
	// request gets 503 with a page that says so, and no upstream is
	// contacted (not even health checks).
	Suspended bool
	// ClientAuth asks the clients of this hostname for a certificate
	// (mTLS): ClientAuthRequire or ClientAuthOptional, verified against
	// ClientCA (PEM certificates); "" asks for none. Decided per server
	// name during the handshake.
	ClientAuth string
	ClientCA   []byte
}

// ErrInvalidRoute is wrapped by SetRoutes errors about a malformed route.
var ErrInvalidRoute = errors.New("edge: invalid route")

// Route returns the Route rt was built from, with its upstream URLs in
// canonical form.
func (rt *route) Route() Route {
	st := rt.routeSettings
	return Route{Host: rt.Host, Project: rt.Project(), Service: rt.Service, Upstreams: st.Upstreams,
		HSTSMaxAge: st.HSTSMaxAge, HealthPath: st.HealthPath, HealthInterval: st.HealthInterval,
		Suspended: st.Suspended, ClientAuth: st.ClientAuth, ClientCA: st.ClientCA}
}

// recorder returns the metrics recorder of rt's service, made on first
// use; nil without a registry or once the service has left the table (a
// request still in flight on an old table counts nothing more).
func (s *Server) recorder(rt *route) *metrics.Service {
	reg := s.cfg.Metrics
	if reg == nil {
		return nil
	}
	if m := s.svcs.recorder(rt.svc); m != nil && !m.Gone() {
		return m
	}
	s.recMu.Lock()
	defer s.recMu.Unlock()
	// A recorder the registry dropped for its bound (metrics.Registry's
	// Service) is made anew, its counters from zero.
	if !s.svcs.live(rt.svc) {
		return nil
	}
	if m := s.svcs.rec(rt.svc.slot).Load(); m != nil && !m.Gone() {
		return m
	}
	m := reg.Service(rt.Project(), rt.Service)
	s.svcs.rec(rt.svc.slot).Store(m)
	return m
}

// retire frees the slot of a service that left the table and deletes its
// series, if it made any.
func (s *Server) retire(ref svcRef) {
	s.recMu.Lock()
	m := s.svcs.release(ref)
	s.recMu.Unlock()
	if m != nil {
		s.cfg.Metrics.ForgetService(m.Label()) // a service that left takes its series along
	}
}

// routeSettings is a validated Route's settings (all but its host and its
// service) with everything the request path needs precomputed, shared by
// the routes that have the same (settingsKey). Immutable once made.
type routeSettings struct {
	Upstreams      []string // canonical
	HSTSMaxAge     int
	HealthPath     string
	HealthInterval time.Duration
	Suspended      bool
	ClientAuth     string
	ClientCA       []byte

	hsts    []string // Strict-Transport-Security value, nil if none
	pool    pool     // shared by the routes of these settings: one turn for all
	mtls    *clientAuth
	authKey string // clientAuthKey, "" without mtls
	key     string // settingsKey, by which a table's settings are shared
}

// settingsKey identifies r's settings as given (upstream URLs before
// canonicalisation): each part prefixed by its length, so that no two
// different settings share a key.
func settingsKey(buf []byte, r *Route) []byte {
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(r.Upstreams)))
	for _, u := range r.Upstreams {
		str(u)
	}
	buf = binary.AppendVarint(buf, int64(r.HSTSMaxAge))
	str(r.HealthPath)
	buf = binary.AppendVarint(buf, int64(r.HealthInterval))
	if r.Suspended {
		buf = append(buf, 1)
	} else {
		buf = append(buf, 0)
	}
	str(r.ClientAuth)
	buf = binary.AppendUvarint(buf, uint64(len(r.ClientCA)))
	return append(buf, r.ClientCA...)
}

// CheckRoute reports whether SetRoutes would accept r, so a caller can leave
// out one bad route instead of having the whole table refused.
func CheckRoute(r Route) error {
	_, err := validateRoute(&r, nil)
	return err
}

// RouteChecker is CheckRoute for the many routes of one table: each
// distinct upstream URL is parsed once, and the settings of routes that
// have the same (all but the host, service and project: settingsKey) are
// checked once. Its zero value is ready to use; it is not safe for
// concurrent use, and keeps what it parsed and checked (at most 4,096
// URLs and 4,096 settings) until it is dropped.
type RouteChecker struct {
	parsed upstreamParses
	valid  map[string]bool // settings checked and found valid, by settingsKey
	key    []byte
}

// Check reports whether SetRoutes would accept r, as CheckRoute does.
func (c *RouteChecker) Check(r Route) error {
	if c.parsed == nil {
		c.parsed, c.valid = upstreamParses{}, map[string]bool{}
	}
	if err := validateHost(&r); err != nil {
		return err
	}
	c.key = settingsKey(c.key[:0], &r)
	if c.valid[string(c.key)] {
		return nil
	}
	if _, err := validateSettings(&r, c.parsed); err != nil {
		return err
	}
	if len(c.valid) < 4096 {
		c.valid[string(c.key)] = true
	}
	return nil
}

// upstreamParses remembers parseUpstream's answers for one table build:
// the routes of 100,000 services name few distinct upstreams. nil
// remembers nothing.
type upstreamParses map[string]*url.URL

// parse is parseUpstream(raw); each call returns a URL of its own.
func (p upstreamParses) parse(raw string) (*url.URL, error) {
	if t, ok := p[raw]; ok {
		u := *t
		return &u, nil
	}
	u, err := parseUpstream(raw)
	if err == nil && p != nil && len(p) < 4096 {
		t := *u
		p[raw] = &t
	}
	return u, err
}

// validateRoute checks r and returns the parsed upstream URLs (parsed
// through parsed, which may be nil).
func validateRoute(r *Route, parsed upstreamParses) ([]*url.URL, error) {
	if err := validateHost(r); err != nil {
		return nil, err
	}
	return validateSettings(r, parsed)
}

// validateHost checks r's host.
func validateHost(r *Route) error {
	if err := hostname.Check(r.Host); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRoute, err)
	}
	if len(r.Project) > maxNameLen || len(r.Service) > maxNameLen {
		return fmt.Errorf("%w: host %s: a project ID or service name longer than %d bytes", ErrInvalidRoute, r.Host, maxNameLen)
	}
	return nil
}

// validateSettings checks the rest of r (validateRoute).
func validateSettings(r *Route, parsed upstreamParses) ([]*url.URL, error) {
	if r.HSTSMaxAge < 0 {
		return nil, fmt.Errorf("%w: host %s: negative HSTS max-age %d", ErrInvalidRoute, r.Host, r.HSTSMaxAge)
	}
	if len(r.Upstreams) == 0 {
		return nil, fmt.Errorf("%w: host %s: no upstream", ErrInvalidRoute, r.Host)
	}
	if err := validateHealthPath(r.HealthPath); err != nil {
		return nil, fmt.Errorf("%w: host %s: health path %q: %v", ErrInvalidRoute, r.Host, r.HealthPath, err)
	}
	if r.HealthInterval < 0 {
		return nil, fmt.Errorf("%w: host %s: negative health interval %s", ErrInvalidRoute, r.Host, r.HealthInterval)
	}
	if err := validateClientAuth(r); err != nil {
		return nil, fmt.Errorf("%w: host %s: %v", ErrInvalidRoute, r.Host, err)
	}
	urls := make([]*url.URL, 0, len(r.Upstreams))
	for _, raw := range r.Upstreams {
		u, err := parsed.parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: host %s: upstream %q: %v", ErrInvalidRoute, r.Host, raw, err)
		}
		urls = append(urls, u)
	}
	return urls, nil
}

// validateHealthPath accepts "" (the default) or a path starting with '/'
// of printable ASCII, which a health-check request can carry as it is.
func validateHealthPath(p string) error {
	if p == "" {
		return nil
	}
	if p[0] != '/' {
		return errors.New("must start with /")
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return fmt.Errorf("character %q not allowed", c)
		}
	}
	return nil
}

// parseUpstream parses an upstream URL and returns it in canonical form:
// lower-case scheme and host, the port as a number ("08443" is 8443), a
// path of "/" dropped.
func parseUpstream(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("no host")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, errors.New("user info, query and fragment are not allowed")
	}
	if p := u.Port(); p != "" {
		n, err := hostname.ParsePort(p)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("bad port %q", p)
		}
		u.Host = u.Host[:len(u.Host)-len(p)] + strconv.Itoa(n)
	}
	u.Host = strings.ToLower(u.Host)
	if u.Path == "/" && u.RawPath == "" {
		u.Path = ""
	}
	return u, nil
}
