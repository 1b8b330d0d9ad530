package edge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
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

// route is one hostname's entry of a table: its host, its service and its
// settings, the last two shared with the other routes that have the same
// (a service's hostnames share its routeService; routes whose settings are
// the same, the services of one upstream say, share one routeSettings), so
// that a hostname costs these 32 bytes (and a 4-byte key) in its table
// shard. It is immutable once in a table.
type route struct {
	Host string
	*routeService
	*routeSettings
}

// Route returns the Route rt was built from, with its upstream URLs in
// canonical form.
func (rt *route) Route() Route {
	st := rt.routeSettings
	return Route{Host: rt.Host, Project: rt.Project(), Service: rt.Service, Upstreams: st.Upstreams,
		HSTSMaxAge: st.HSTSMaxAge, HealthPath: st.HealthPath, HealthInterval: st.HealthInterval,
		Suspended: st.Suspended, ClientAuth: st.ClientAuth, ClientCA: st.ClientCA}
}

// routeService is what the routes of one service share: its names and its
// metrics recorder, made at its first request (an idle service holds
// none), never after the service has left the table. 32 bytes (48 with
// the project's ID and the recorder each a field; a million of them at a
// million services of one hostname each): the project's ID and the
// recorder are behind meta, which points to a serviceMeta that the
// services of one project share until their first request (newRouteService).
// The lock that orders a recorder's making with retire is the Server's
// (recMu).
type routeService struct {
	Service string
	meta    atomic.Pointer[serviceMeta] // never nil
	routes  int32                       // routes of the table naming it; under Server.mu
	gone    bool                        // retired: it left the table, make no recorder; under Server.recMu
}

// serviceMeta is a service's project and its metrics recorder: one per
// service that has had a request, one shared by a project's other
// services (rec nil). Immutable.
type serviceMeta struct {
	project string
	rec     *metrics.Service
}

// newRouteService returns the routeService of project's service, its
// meta the project's shared one in metas (made there if missing), taken
// from slab if it is not nil (svcSlab).
func newRouteService(project, service string, metas map[string]*serviceMeta, slab *svcSlab) *routeService {
	m := metas[project]
	if m == nil {
		m = &serviceMeta{project: project}
		metas[project] = m
	}
	var sv *routeService
	if slab != nil {
		sv = slab.next()
	} else {
		sv = new(routeService)
	}
	sv.Service = service
	sv.meta.Store(m)
	return sv
}

// svcSlab hands out the routeServices of a whole table's build (SetRoutes)
// from arrays of up to svcSlabLen, made as needed, so that a million
// services are 245 objects for the collector to mark, not a million of 32
// bytes: a forced collection after a sync of 100k services took 16.7 ms
// instead of 18.7 (BenchmarkSyncMemory's gc-ms; the heap in use is the
// same). An array lives while any of its services does, so deletions that
// leave one service of an array keep the array's other 127 KiB: at worst
// what the build made, never more.
type svcSlab struct {
	free []routeService
	left int // services the build may still make (its routes not yet read)
}

const svcSlabLen = 4096

func (sl *svcSlab) next() *routeService {
	if len(sl.free) == 0 {
		sl.free = make([]routeService, max(1, min(sl.left, svcSlabLen)))
	}
	sv := &sl.free[0]
	sl.free = sl.free[1:]
	return sv
}

// Project returns the ID of sv's project.
func (sv *routeService) Project() string { return sv.meta.Load().project }

// rec returns sv's metrics recorder, nil if none was made.
func (sv *routeService) rec() *metrics.Service { return sv.meta.Load().rec }

// setRec makes m sv's recorder (under Server.recMu).
func (sv *routeService) setRec(m *metrics.Service) {
	sv.meta.Store(&serviceMeta{project: sv.Project(), rec: m})
}

// recorder returns sv's metrics recorder, made on first use; nil without a
// registry or once sv has left the table (a request still in flight on an
// old table counts nothing more).
func (s *Server) recorder(sv *routeService) *metrics.Service {
	reg := s.cfg.Metrics
	if m := sv.rec(); m != nil && !m.Gone() || reg == nil {
		return m
	}
	s.recMu.Lock()
	defer s.recMu.Unlock()
	// A recorder the registry dropped for its bound (metrics.Registry's
	// Service) is made anew, its counters from zero.
	if m := sv.rec(); m != nil && !m.Gone() || sv.gone {
		return m
	}
	m := reg.Service(sv.Project(), sv.Service)
	sv.setRec(m)
	return m
}

// retire marks sv as gone from the table and deletes its series, if it
// made any.
func (s *Server) retire(sv *routeService) {
	s.recMu.Lock()
	sv.gone = true
	m := sv.rec()
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
