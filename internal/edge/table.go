package edge

import (
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"maps"
	"net/url"
	"strconv"

	"github.com/spine-platform/spine/internal/metrics"
)

// tableShards is the number of shards of a route table. A change of one
// route copies the map of its shard only: about 1/1024 of the table (a
// thousand routes at a million) plus the 8 KiB array of shard pointers.
const tableShards = 1024

// table is one immutable snapshot of the routes, keyed by normalised host
// and split in shards by a hash of the host, so that UpdateRoutes builds
// the next snapshot by copying the shards it touches and sharing the
// others with the current one. A shard's map is never written once the
// table holding it is published (Server.table); a nil shard is empty.
type table struct {
	shards [tableShards]map[string]*route
	n      int // routes in all shards
}

// tableSeed hashes a name to pick its shard: the runtime's string hash
// (hash/maphash), which allocates nothing and costs a few nanoseconds on the
// request path. The seed is the process's; shards are never persisted.
var tableSeed = maphash.MakeSeed()

func shardOf(name string) int { return int(maphash.String(tableSeed, name) % tableShards) }

func (t *table) lookup(host string) *route { return t.shards[shardOf(host)][host] }

func (t *table) has(host string) bool { return t.lookup(host) != nil }

// all yields every route of the table, shard by shard.
func (t *table) all() iter.Seq[*route] {
	return func(yield func(*route) bool) {
		for _, m := range t.shards {
			for _, rt := range m {
				if !yield(rt) {
					return
				}
			}
		}
	}
}

// tableBuilder builds a table, either from nothing (SetRoutes) or as a
// copy of another that shares the shards it does not touch (UpdateRoutes).
type tableBuilder struct {
	t        *table
	copied   [tableShards]bool // the shard's map is this builder's own
	sizeHint int               // routes expected in all, for the maps' first size
}

func newTableBuilder(from *table, sizeHint int) *tableBuilder {
	b := &tableBuilder{t: &table{}, sizeHint: sizeHint}
	if from != nil {
		*b.t = *from
	}
	return b
}

// shard returns host's shard map, ready to be written.
func (b *tableBuilder) shard(host string) map[string]*route {
	i := shardOf(host)
	if !b.copied[i] {
		old := b.t.shards[i]
		m := make(map[string]*route, max(len(old)+1, b.sizeHint/tableShards))
		maps.Copy(m, old)
		b.t.shards[i] = m
		b.copied[i] = true
	}
	return b.t.shards[i]
}

func (b *tableBuilder) get(host string) *route { return b.t.lookup(host) }

func (b *tableBuilder) put(rt *route) {
	m := b.shard(rt.Host)
	if _, ok := m[rt.Host]; !ok {
		b.t.n++
	}
	m[rt.Host] = rt
}

func (b *tableBuilder) remove(host string) {
	if b.t.lookup(host) == nil {
		return
	}
	delete(b.shard(host), host)
	b.t.n--
}

// counted is a value shared by the routes of the table, with how many use it.
type counted[T any] struct {
	v T
	n int
}

// SetRoutes replaces the route table with routes, whole. It validates every
// route first; on error the current table stays as it was. Upstreams keep
// their health state and connections across calls for as long as some route
// names them; upstreams no longer named are stopped. Requests in flight
// finish on the table they started with.
func (s *Server) SetRoutes(routes []Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("edge: server is shut down")
	}

	b := newTableBuilder(nil, len(routes))
	parsed := upstreamParses{}
	ups := make(map[string]*upstream, len(s.upstreams))
	upRefs := make(map[string]int, len(s.upRefs))
	// Client-certificate settings by mode and CA: the routes of one
	// service share one, and a swap keeps the previous table's (their
	// configurations and ticket keys).
	auths := map[string]*counted[*clientAuth]{}
	services := map[[2]string]*counted[*metrics.Service]{}
	var created []*upstream
	upstreamOf := func(key string, u *url.URL, h healthCheck) *upstream {
		// Routes that name one URL with the same health check share its
		// connections and health state.
		up := ups[key]
		if up == nil {
			up = s.upstreams[key]
		}
		if up == nil {
			up = newUpstream(u.String(), u, h, &s.cfg)
			created = append(created, up)
		}
		ups[key] = up
		upRefs[key]++
		return up
	}
	authOf := func(r *Route) (*clientAuth, error) {
		key := clientAuthKey(r)
		c := auths[key]
		if c == nil {
			c = &counted[*clientAuth]{}
			if old := s.auths[key]; old != nil {
				c.v = old.v
			} else {
				var err error
				if c.v, err = s.newClientAuth(r); err != nil {
					return nil, err
				}
			}
			auths[key] = c
		}
		c.n++
		return c.v, nil
	}
	for i := range routes {
		k := [2]string{routes[i].Project, routes[i].Service}
		svc := services[k]
		if svc == nil {
			svc = &counted[*metrics.Service]{v: s.cfg.Metrics.Service(k[0], k[1])}
			services[k] = svc
		}
		rt, err := s.build(routes[i], parsed, upstreamOf, authOf, svc.v)
		if err != nil {
			return err
		}
		if b.get(rt.Host) != nil {
			return fmt.Errorf("%w: host %s appears twice", ErrInvalidRoute, rt.Host)
		}
		svc.n++
		b.put(rt)
	}

	s.table.Store(b.t)
	s.warm.Store(nil) // a whole table: the warm-up, if any, is over (warm.go)
	s.certs.Clear()
	if s.cfg.Metrics != nil {
		keep := make(map[string]bool, len(services))
		for _, svc := range services {
			keep[svc.v.Label()] = true
		}
		s.cfg.Metrics.ForgetServices(keep) // a service that left takes its series along
	}
	for _, up := range created {
		up.start(&s.cfg)
	}
	for key, up := range s.upstreams {
		if ups[key] == nil {
			up.stop() // drained: requests in flight finish, then its connections close
		}
	}
	s.upstreams, s.upRefs, s.auths, s.services = ups, upRefs, auths, services
	s.log.Info("routes updated", "routes", b.t.n, "upstreams", len(ups), "new_upstreams", len(created))
	return nil
}

// UpdateRoutes changes the route table by a delta: the routes of remove
// (hostnames in normal form) leave it, then set's are added or replace
// those of their hostnames. It costs what changed, not the table's size:
// the next table shares every shard it does not touch with the current
// one. As with SetRoutes, every route is validated first and on error the
// table stays as it was; an upstream is started with the first route that
// names it and stopped with the last; requests in flight finish on the
// table they started with. A hostname of set appearing twice is an error;
// one of remove that is not in the table is ignored.
func (s *Server) UpdateRoutes(set []Route, remove []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateRoutes(set, remove)
}

// updateRoutes is UpdateRoutes, with s.mu held.
func (s *Server) updateRoutes(set []Route, remove []string) error {
	if s.closed {
		return errors.New("edge: server is shut down")
	}

	b := newTableBuilder(s.table.Load(), 0)
	parsed := upstreamParses{}
	// The change of each shared thing's count of routes, and what this
	// call makes: committed only once every route is valid.
	upDelta := map[string]int{}
	createdUps := map[string]*upstream{}
	authDelta := map[string]int{}
	newAuths := map[string]*clientAuth{}
	svcDelta := map[[2]string]int{}
	newRecs := map[[2]string]*metrics.Service{}
	unref := func(rt *route) {
		for _, up := range rt.pool.ups {
			upDelta[up.health.key(up.key)]--
		}
		if rt.mtls != nil {
			authDelta[clientAuthKey(&rt.Route)]--
		}
		svcDelta[[2]string{rt.Project, rt.Service}]--
	}
	upstreamOf := func(key string, u *url.URL, h healthCheck) *upstream {
		upDelta[key]++
		if up := s.upstreams[key]; up != nil {
			return up
		}
		up := createdUps[key]
		if up == nil {
			up = newUpstream(u.String(), u, h, &s.cfg)
			createdUps[key] = up
		}
		return up
	}
	authOf := func(r *Route) (*clientAuth, error) {
		key := clientAuthKey(r)
		authDelta[key]++
		if c := s.auths[key]; c != nil {
			return c.v, nil
		}
		if ca := newAuths[key]; ca != nil {
			return ca, nil
		}
		ca, err := s.newClientAuth(r)
		if err != nil {
			return nil, err
		}
		newAuths[key] = ca
		return ca, nil
	}
	touched := make([]string, 0, len(remove)+len(set))
	for _, h := range remove {
		if old := b.get(h); old != nil {
			unref(old)
			b.remove(h)
			touched = append(touched, h)
		}
	}
	seen := make(map[string]bool, len(set))
	for i := range set {
		k := [2]string{set[i].Project, set[i].Service}
		rec := newRecs[k]
		if c := s.services[k]; c != nil {
			rec = c.v
		} else if rec == nil {
			rec = s.cfg.Metrics.Service(k[0], k[1])
			newRecs[k] = rec
		}
		rt, err := s.build(set[i], parsed, upstreamOf, authOf, rec)
		if err != nil {
			return err
		}
		if seen[rt.Host] {
			return fmt.Errorf("%w: host %s appears twice", ErrInvalidRoute, rt.Host)
		}
		seen[rt.Host] = true
		if old := b.get(rt.Host); old != nil {
			unref(old)
		}
		svcDelta[k]++
		b.put(rt)
		touched = append(touched, rt.Host)
	}

	s.table.Store(b.t)
	for _, h := range touched {
		s.certs.Delete(h)
	}
	var started, stopped int
	for key, d := range upDelta {
		n := s.upRefs[key] + d
		switch up := createdUps[key]; {
		case up != nil: // named by a new route, so n > 0
			s.upstreams[key] = up
			up.start(&s.cfg)
			started++
		case n <= 0:
			s.upstreams[key].stop() // drained: requests in flight finish, then its connections close
			delete(s.upstreams, key)
			delete(s.upRefs, key)
			stopped++
			continue
		}
		s.upRefs[key] = n
	}
	for key, d := range authDelta {
		c := s.auths[key]
		if c == nil {
			c = &counted[*clientAuth]{v: newAuths[key]}
			s.auths[key] = c
		}
		if c.n += d; c.n <= 0 {
			delete(s.auths, key)
		}
	}
	for k, d := range svcDelta {
		c := s.services[k]
		if c == nil {
			c = &counted[*metrics.Service]{v: newRecs[k]}
			s.services[k] = c
		}
		if c.n += d; c.n <= 0 {
			delete(s.services, k)
			if c.v != nil {
				s.cfg.Metrics.ForgetService(c.v.Label()) // a service that left takes its series along
			}
		}
	}
	s.log.Debug("routes changed", "routes", b.t.n, "set", len(set), "removed", len(remove),
		"new_upstreams", started, "stopped_upstreams", stopped)
	return nil
}

// build validates r and makes its route. upstreamOf returns the upstream
// of a key (healthCheck.key), shared or new; authOf the client-certificate
// settings of r; rec is the service's metrics recorder.
func (s *Server) build(r Route, parsed upstreamParses, upstreamOf func(key string, u *url.URL, h healthCheck) *upstream,
	authOf func(r *Route) (*clientAuth, error), rec *metrics.Service) (*route, error) {
	urls, err := validateRoute(&r, parsed)
	if err != nil {
		return nil, err
	}
	r.Upstreams = make([]string, len(urls))
	rt := &route{Route: r, pool: pool{ups: make([]*upstream, len(urls))}, metrics: rec}
	if r.HSTSMaxAge > 0 {
		rt.hsts = []string{"max-age=" + strconv.Itoa(r.HSTSMaxAge)}
	}
	if r.ClientAuth != "" {
		if rt.mtls, err = authOf(&r); err != nil {
			return nil, fmt.Errorf("%w: host %s: %v", ErrInvalidRoute, r.Host, err)
		}
	}
	if r.Suspended {
		rt.Upstreams, rt.pool = nil, pool{}
		return rt, nil
	}
	health := s.healthOf(&r)
	for j, u := range urls {
		r.Upstreams[j] = u.String()
		rt.pool.ups[j] = upstreamOf(health.key(r.Upstreams[j]), u, health)
	}
	return rt, nil
}
