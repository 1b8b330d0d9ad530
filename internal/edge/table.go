package edge

import (
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"maps"
	"net/url"
	"strconv"

	"github.com/spine-platform/spine/internal/sched"
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
	// Client-certificate settings by mode and CA, route settings by
	// settingsKey, services by project and name: the routes that have the
	// same share one, and a swap keeps the previous table's (the
	// client-certificate configurations and ticket keys, the upstreams the
	// settings name, the services' metrics recorders).
	auths := map[string]*counted[*clientAuth]{}
	settings := map[string]*counted[*routeSettings]{}
	services := make(map[[2]string]*routeService, len(s.services))
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
		return up
	}
	authOf := func(r *Route) (*clientAuth, error) {
		key := clientAuthKey(r)
		if c := auths[key]; c != nil {
			return c.v, nil
		}
		if old := s.auths[key]; old != nil {
			return old.v, nil
		}
		return s.newClientAuth(r)
	}
	var key []byte
	// Long at a million routes (seconds of one processor): handshakes run
	// in between (sched.Yield), except those that need s.mu.
	var y sched.Yielder
	for i := range routes {
		if i%64 == 0 {
			y.Maybe()
		}
		r := &routes[i]
		if err := validateHost(r); err != nil {
			return err
		}
		key = settingsKey(key[:0], r)
		c := settings[string(key)]
		if c == nil {
			c = &counted[*routeSettings]{}
			if old := s.settings[string(key)]; old != nil {
				c.v = old.v
			} else {
				var err error
				if c.v, err = s.newSettings(r, string(key), parsed, upstreamOf, authOf); err != nil {
					return err
				}
			}
			settings[c.v.key] = c
		}
		if b.get(r.Host) != nil {
			return fmt.Errorf("%w: host %s appears twice", ErrInvalidRoute, r.Host)
		}
		c.n++
		k := [2]string{r.Project, r.Service}
		sv := services[k]
		if sv == nil {
			if sv = s.services[k]; sv == nil {
				sv = &routeService{Project: r.Project, Service: r.Service}
			}
			services[k] = sv
		}
		st := c.v
		for _, up := range st.pool.ups {
			k := up.health.key(up.key)
			ups[k] = up
			upRefs[k]++
		}
		if st.mtls != nil {
			a := auths[st.authKey]
			if a == nil {
				a = &counted[*clientAuth]{v: st.mtls}
				auths[st.authKey] = a
			}
			a.n++
		}
		b.put(&route{Host: r.Host, routeService: sv, routeSettings: st})
	}

	s.table.Store(b.t)
	s.warm.Store(nil) // a whole table: the warm-up, if any, is over (warm.go)
	s.certs.Clear()
	for k, sv := range s.services {
		if services[k] != sv {
			sv.retire(s.cfg.Metrics)
		}
	}
	for _, sv := range services {
		sv.routes = 0
	}
	n := 0
	for rt := range b.t.all() {
		if n++; n%256 == 0 {
			y.Maybe()
		}
		rt.routes++
	}
	for _, up := range created {
		up.start(&s.cfg)
	}
	for key, up := range s.upstreams {
		if ups[key] == nil {
			up.stop() // drained: requests in flight finish, then its connections close
		}
	}
	s.upstreams, s.upRefs, s.auths, s.settings, s.services = ups, upRefs, auths, settings, services
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
	setDelta := map[string]int{}
	newSettings := map[string]*routeSettings{}
	svcDelta := map[*routeService]int{}
	newSvcs := map[[2]string]*routeService{}
	count := func(rt *route, d int) {
		for _, up := range rt.pool.ups {
			upDelta[up.health.key(up.key)] += d
		}
		if rt.mtls != nil {
			authDelta[rt.authKey] += d
		}
		setDelta[rt.key] += d
		svcDelta[rt.routeService] += d
	}
	upstreamOf := func(key string, u *url.URL, h healthCheck) *upstream {
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
			count(old, -1)
			b.remove(h)
			touched = append(touched, h)
		}
	}
	seen := make(map[string]bool, len(set))
	var key []byte
	for i := range set {
		r := &set[i]
		if err := validateHost(r); err != nil {
			return err
		}
		key = settingsKey(key[:0], r)
		st := newSettings[string(key)]
		if st == nil {
			if c := s.settings[string(key)]; c != nil {
				st = c.v
			} else {
				var err error
				if st, err = s.newSettings(r, string(key), parsed, upstreamOf, authOf); err != nil {
					return err
				}
				newSettings[st.key] = st
			}
		}
		if seen[r.Host] {
			return fmt.Errorf("%w: host %s appears twice", ErrInvalidRoute, r.Host)
		}
		seen[r.Host] = true
		k := [2]string{r.Project, r.Service}
		sv := s.services[k]
		if sv == nil {
			if sv = newSvcs[k]; sv == nil {
				sv = &routeService{Project: r.Project, Service: r.Service}
				newSvcs[k] = sv
			}
		}
		if old := b.get(r.Host); old != nil {
			count(old, -1)
		}
		rt := &route{Host: r.Host, routeService: sv, routeSettings: st}
		count(rt, +1)
		b.put(rt)
		touched = append(touched, r.Host)
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
	for key, d := range setDelta {
		c := s.settings[key]
		if c == nil {
			c = &counted[*routeSettings]{v: newSettings[key]}
			s.settings[key] = c
		}
		if c.n += d; c.n <= 0 {
			delete(s.settings, key)
		}
	}
	for k, sv := range newSvcs {
		s.services[k] = sv
	}
	for sv, d := range svcDelta {
		if sv.routes += d; sv.routes <= 0 {
			delete(s.services, [2]string{sv.Project, sv.Service})
			sv.retire(s.cfg.Metrics)
		}
	}
	s.log.Debug("routes changed", "routes", b.t.n, "set", len(set), "removed", len(remove),
		"new_upstreams", started, "stopped_upstreams", stopped)
	return nil
}

// newSettings validates the settings of r (all but its host: validateRoute)
// and makes them, under key (settingsKey). upstreamOf returns the upstream
// of a key (healthCheck.key), shared or new; authOf the client-certificate
// settings of r.
func (s *Server) newSettings(r *Route, key string, parsed upstreamParses,
	upstreamOf func(key string, u *url.URL, h healthCheck) *upstream,
	authOf func(r *Route) (*clientAuth, error)) (*routeSettings, error) {
	urls, err := validateSettings(r, parsed)
	if err != nil {
		return nil, err
	}
	st := &routeSettings{HSTSMaxAge: r.HSTSMaxAge, HealthPath: r.HealthPath, HealthInterval: r.HealthInterval,
		Suspended: r.Suspended, ClientAuth: r.ClientAuth, ClientCA: r.ClientCA, key: key}
	if r.HSTSMaxAge > 0 {
		st.hsts = []string{"max-age=" + strconv.Itoa(r.HSTSMaxAge)}
	}
	if r.ClientAuth != "" {
		if st.mtls, err = authOf(r); err != nil {
			return nil, fmt.Errorf("%w: host %s: %v", ErrInvalidRoute, r.Host, err)
		}
		st.authKey = clientAuthKey(r)
	}
	if r.Suspended {
		return st, nil
	}
	health := s.healthOf(r)
	st.Upstreams = make([]string, len(urls))
	st.pool.ups = make([]*upstream, len(urls))
	for j, u := range urls {
		st.Upstreams[j] = u.String()
		st.pool.ups[j] = upstreamOf(health.key(st.Upstreams[j]), u, health)
	}
	return st, nil
}
