package edge

import (
	"errors"
	"fmt"
	"hash/maphash"
	"iter"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/spine-platform/spine/internal/sched"
)

// tableShards is the number of shards of a route table. A change of one
// route copies its shard only: about 1/1024 of the table (a thousand
// routes, 36 KiB, at a million) plus the 8 KiB array of shard pointers.
const tableShards = 1024

// table is one immutable snapshot of the routes, split in shards by a hash
// of the host, so that UpdateRoutes builds the next snapshot by copying the
// shards it touches and sharing the others with the current one. A shard
// is never written once the table holding it is published (Server.table);
// a nil shard is empty.
type table struct {
	shards [tableShards]*shard
	n      int // routes in all shards
}

// shard holds its routes as values, sorted by their host's key (hashOf)
// then host, with the keys alongside: a route costs its 32 bytes and 4
// of key (a map of pointers to routes cost about 70 more), and lookup
// hands out a pointer into routes. The keys make a lookup read a few
// cache lines of them and then one route, where a bisection of the routes
// by host would read a route and its host's bytes at each of ten steps.
type shard struct {
	keys   []uint32
	routes []route
}

// tableSeed hashes a name to pick its shard and key: the runtime's string
// hash (hash/maphash), which allocates nothing and costs a few nanoseconds
// on the request path. The seed is the process's; shards are never
// persisted.
var tableSeed = maphash.MakeSeed()

// hashOf returns host's shard (the hash's low bits) and its key in the
// shard (the high 32).
func hashOf(host string) (sh int, key uint32) {
	h := maphash.String(tableSeed, host)
	return int(h % tableShards), uint32(h >> 32)
}

// find returns where (key, host) is, or would be inserted, in sh, and
// whether host is there. Keys are uniform (a hash), so the search starts
// where key would be if they were evenly spread, and gallops from there
// before the bisection: within a few dozen keys of the guess, in one or
// two cache lines, where a bisection from the middle reads ten.
func (sh *shard) find(key uint32, host string) (int, bool) {
	keys := sh.keys
	n := len(keys)
	lo, hi := 0, n // keys[:lo] < key <= keys[hi:]
	if n > 0 {
		g := int(uint64(key) * uint64(n) >> 32)
		if keys[g] < key {
			lo = g + 1
			for step := 1; g+step < n; step *= 2 {
				if keys[g+step] >= key {
					hi = g + step
					break
				}
				lo = g + step + 1
			}
		} else {
			hi = g
			for step := 1; g-step >= 0; step *= 2 {
				if keys[g-step] < key {
					lo = g - step + 1
					break
				}
				hi = g - step
			}
		}
	}
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if keys[m] < key {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for ; lo < n && keys[lo] == key; lo++ {
		if h := sh.routes[lo].Host; h >= host {
			return lo, h == host
		}
	}
	return lo, false
}

// lookup returns host's route, nil if none; allocation-free.
func (t *table) lookup(host string) *route {
	i, key := hashOf(host)
	sh := t.shards[i]
	if sh == nil {
		return nil
	}
	if j, ok := sh.find(key, host); ok {
		return &sh.routes[j]
	}
	return nil
}

func (t *table) has(host string) bool { return t.lookup(host) != nil }

// all yields every route of the table, shard by shard.
func (t *table) all() iter.Seq[*route] {
	return func(yield func(*route) bool) {
		for _, sh := range t.shards {
			if sh == nil {
				continue
			}
			for i := range sh.routes {
				if !yield(&sh.routes[i]) {
					return
				}
			}
		}
	}
}

// byKey sorts a shard by key, then host.
type byKey shard

func (s *byKey) Len() int { return len(s.keys) }
func (s *byKey) Less(i, j int) bool {
	return s.keys[i] < s.keys[j] || s.keys[i] == s.keys[j] && s.routes[i].Host < s.routes[j].Host
}
func (s *byKey) Swap(i, j int) {
	s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
	s.routes[i], s.routes[j] = s.routes[j], s.routes[i]
}

// tableFill builds a whole table (SetRoutes) from routes whose number is
// known: each shard is allocated once at its size, filled in the given
// order, then sorted.
type tableFill struct {
	t     *table
	shard []uint16 // shard of the i-th route given
	key   []uint32 // key of the i-th route given
}

// newTableFill makes a tableFill for routes (only their hosts are read).
func newTableFill(routes RouteSeq, y *sched.Yielder, l sync.Locker) (*tableFill, error) {
	n := routes.Len()
	f := &tableFill{t: &table{}, shard: make([]uint16, n), key: make([]uint32, n)}
	var sizes [tableShards]int
	i := 0
	for r := range routes.All() {
		if i == n {
			return nil, fmt.Errorf("edge: a route source of %d routes yielded more", n)
		}
		y.EveryUnlocked(i, l)
		sh, key := hashOf(r.Host)
		f.shard[i], f.key[i] = uint16(sh), key
		sizes[sh]++
		i++
	}
	if i != n {
		return nil, fmt.Errorf("edge: a route source of %d routes yielded %d", n, i)
	}
	for sh, n := range sizes {
		if n > 0 {
			f.t.shards[sh] = &shard{keys: make([]uint32, 0, n), routes: make([]route, 0, n)}
		}
	}
	return f, nil
}

// add puts rt, made of the i-th route given, in its shard.
func (f *tableFill) add(i int, rt route) {
	sh := f.t.shards[f.shard[i]]
	sh.keys = append(sh.keys, f.key[i])
	sh.routes = append(sh.routes, rt)
	f.t.n++
}

// finish sorts the shards and returns the table, or an error if a host
// was added twice. y yields between shards.
func (f *tableFill) finish(y *sched.Yielder, l sync.Locker) (*table, error) {
	for _, sh := range f.t.shards {
		if sh == nil {
			continue
		}
		y.MaybeUnlocked(l)
		sort.Sort((*byKey)(sh))
		for i := 1; i < len(sh.routes); i++ {
			if sh.routes[i].Host == sh.routes[i-1].Host {
				return nil, fmt.Errorf("%w: host %s appears twice", ErrInvalidRoute, sh.routes[i].Host)
			}
		}
	}
	return f.t, nil
}

// tableBuilder builds a table as a copy of another that shares the shards
// it does not touch (UpdateRoutes).
type tableBuilder struct {
	t      *table
	copied [tableShards]bool // the shard is this builder's own
}

func newTableBuilder(from *table) *tableBuilder {
	b := &tableBuilder{t: &table{}}
	*b.t = *from
	return b
}

// own returns shard i, copied first if it is still the published table's.
func (b *tableBuilder) own(i int) *shard {
	if !b.copied[i] {
		sh := &shard{}
		if old := b.t.shards[i]; old != nil {
			sh.keys = append(make([]uint32, 0, len(old.keys)+1), old.keys...)
			sh.routes = append(make([]route, 0, len(old.routes)+1), old.routes...)
		}
		b.t.shards[i] = sh
		b.copied[i] = true
	}
	return b.t.shards[i]
}

// get returns host's route in the table being built: a pointer that the
// next put or remove may move.
func (b *tableBuilder) get(host string) *route { return b.t.lookup(host) }

func (b *tableBuilder) put(rt route) {
	i, key := hashOf(rt.Host)
	sh := b.own(i)
	j, ok := sh.find(key, rt.Host)
	if ok {
		sh.routes[j] = rt
		return
	}
	sh.keys = slices.Insert(sh.keys, j, key)
	sh.routes = slices.Insert(sh.routes, j, rt)
	b.t.n++
}

func (b *tableBuilder) remove(host string) {
	i, key := hashOf(host)
	if b.t.shards[i] == nil {
		return
	}
	j, ok := b.t.shards[i].find(key, host)
	if !ok {
		return
	}
	sh := b.own(i)
	sh.keys = slices.Delete(sh.keys, j, j+1)
	sh.routes = slices.Delete(sh.routes, j, j+1)
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
//
// At a million routes the build takes seconds of a processor. Handshakes
// run in between (sched.Yielder), and so does the warm-up's putting of a
// route it read (putWarm), which needs s.mu: the build lets go of s.mu at
// each yield. If a route left the table meanwhile (ForgetWarm: an upstream
// or a service the build took from the table may have been stopped or
// retired since), the table is built again, holding s.mu throughout.
func (s *Server) SetRoutes(routes []Route) error {
	return s.SetRouteSeq(RouteSlice(routes))
}

// RouteSeq is routes read one at a time: Len of them, in the order All
// yields them, each *Route valid until the next (a source may reuse one).
// SetRouteSeq reads them twice or more. A node's full sync makes its
// routes as the table's build reads them (serving.RouteList): a list of
// a million (152 B each) was 152 MB of garbage at its first sync.
type RouteSeq interface {
	Len() int
	All() iter.Seq[*Route]
}

// RouteSlice is the RouteSeq of a list of routes.
type RouteSlice []Route

func (l RouteSlice) Len() int { return len(l) }

func (l RouteSlice) All() iter.Seq[*Route] {
	return func(yield func(*Route) bool) {
		for i := range l {
			if !yield(&l[i]) {
				return
			}
		}
	}
}

// SetRouteSeq is SetRoutes of routes read one at a time.
func (s *Server) SetRouteSeq(routes RouteSeq) error {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	released := s.released
	b, err := s.buildTable(routes, &s.mu)
	if err == nil && s.released != released {
		b, err = s.buildTable(routes, nil)
	}
	if err != nil {
		return err
	}
	if s.closed {
		return errors.New("edge: server is shut down")
	}
	t := b.t
	s.table.Store(t)
	s.warm.Store(nil) // a whole table: the warm-up, if any, is over (warm.go)
	s.certs.Clear()
	// Count the routes of each service anew; a service of the previous
	// table that counts none has left it.
	for sv := range s.services.all() {
		sv.routes = 0
	}
	// At most a service a route: sized once (at a million services the
	// list grew through 42 MB).
	svs := make([]*routeService, 0, t.n)
	n := 0
	var y sched.Yielder
	for rt := range t.all() {
		// Lets go of s.mu too: a warm-up's put that waited for it since
		// before the swap finds the full table and returns.
		n++
		y.EveryUnlocked(n, &s.mu)
		if rt.routes == 0 {
			svs = append(svs, rt.routeService)
		}
		rt.routes++
	}
	services := indexServices(svs, &y, &s.mu)
	for sv := range s.services.all() {
		if sv.routes != 0 {
			continue
		}
		if same := services.get(sv.Project(), sv.Service); same != nil {
			// The same service, made anew by a build that let a warm-up
			// put its route meanwhile: its series stay, with its recorder.
			s.recMu.Lock()
			sv.gone = true
			if m := sv.rec(); m != nil && same.rec() == nil {
				same.setRec(m)
			}
			s.recMu.Unlock()
			continue
		}
		s.retire(sv)
	}
	for _, up := range b.created {
		if s.closed { // Shutdown ran during a yield: it stopped the table's upstreams, not these
			up.stop()
			continue
		}
		up.start(&s.cfg)
	}
	for key, up := range s.upstreams {
		if b.ups[key] != up { // no longer named, or named by the build's own (made while a warm-up put one)
			up.stop() // drained: requests in flight finish, then its connections close
		}
	}
	s.upstreams, s.upRefs, s.auths, s.settings, s.services = b.ups, b.upRefs, b.auths, b.settings, services
	s.log.Info("routes updated", "routes", t.n, "upstreams", len(b.ups), "new_upstreams", len(b.created))
	return nil
}

// testHookBuildYield, set by tests, runs at every 64th route of a build
// that lets go of s.mu, as a yield would (i: the route's index).
var testHookBuildYield func(i int)

// tableBuild is what SetRoutes builds: the table and the shared things of
// its routes, with the upstreams it made (not started).
type tableBuild struct {
	t        *table
	ups      map[string]*upstream
	upRefs   map[string]int
	auths    map[string]*counted[*clientAuth]
	settings map[string]*counted[*routeSettings]
	created  []*upstream
}

// agrees reports whether st's upstreams are the build's for their keys
// (or keys it has none for yet): the settings of a route a warm-up put
// while the build let go of s.mu may name an upstream of its own for a
// key the build has made one for already.
func (b *tableBuild) agrees(st *routeSettings) bool {
	for _, up := range st.pool.ups {
		if u := b.ups[up.mapKey]; u != nil && u != up {
			return false
		}
	}
	return true
}

// buildTable builds SetRoutes's table for routes, sharing with the
// current one what it can (the client-certificate configurations and
// ticket keys, the upstreams the settings name, the services' metrics
// recorders), with s.mu held; it lets go of l (s.mu, or nil: held
// throughout) at each yield.
func (s *Server) buildTable(routes RouteSeq, l sync.Locker) (*tableBuild, error) {
	var y sched.Yielder
	fill, err := newTableFill(routes, &y, l)
	if err != nil {
		return nil, err
	}
	parsed := upstreamParses{}
	b := &tableBuild{ups: make(map[string]*upstream, len(s.upstreams)), upRefs: make(map[string]int, len(s.upRefs)),
		auths: map[string]*counted[*clientAuth]{}, settings: map[string]*counted[*routeSettings]{}}
	// Client-certificate settings by mode and CA, route settings by
	// settingsKey, services by project and name: the routes that have the
	// same share one, and a swap keeps the previous table's. newSvcs holds
	// the services the previous table lacks, for this build only. The
	// first build's are every service: a map by project and name grew
	// through 193 MB of garbage at a million (BENCHMARKS.md), so it is
	// sized at once, and keyed by a hash (serviceSet); later builds' are
	// few.
	n, hint := routes.Len(), 0
	if s.services.empty() {
		hint = n
	}
	newSvcs := newServiceSet(hint)
	metas := map[string]*serviceMeta{} // the new services' projects
	slab := &svcSlab{}
	upstreamOf := func(key string, u *url.URL, h healthCheck) *upstream {
		// Routes that name one URL with the same health check share its
		// connections and health state.
		up := b.ups[key]
		if up == nil {
			up = s.upstreams[key]
		}
		if up == nil {
			up = newUpstream(u.String(), u, h, &s.cfg)
			b.created = append(b.created, up)
		}
		b.ups[key] = up
		return up
	}
	authOf := func(r *Route) (*clientAuth, error) {
		key := clientAuthKey(r)
		if c := b.auths[key]; c != nil {
			return c.v, nil
		}
		if old := s.auths[key]; old != nil {
			return old.v, nil
		}
		return s.newClientAuth(r)
	}
	var key []byte
	i := -1
	for r := range routes.All() {
		if i++; i == n {
			break // newTableFill saw n: the source changed meanwhile
		}
		if i%64 == 0 {
			y.MaybeUnlocked(l)
			if testHookBuildYield != nil && l != nil {
				l.Unlock()
				testHookBuildYield(i)
				l.Lock()
			}
		}
		if err := validateHost(r); err != nil {
			return nil, err
		}
		key = settingsKey(key[:0], r)
		c := b.settings[string(key)]
		if c == nil {
			c = &counted[*routeSettings]{}
			if old := s.settings[string(key)]; old != nil && b.agrees(old.v) {
				c.v = old.v
			} else {
				var err error
				if c.v, err = s.newSettings(r, string(key), parsed, upstreamOf, authOf); err != nil {
					return nil, err
				}
			}
			b.settings[c.v.key] = c
		}
		c.n++
		sv := s.services.get(r.Project, r.Service)
		if sv == nil {
			sv = newSvcs.getOrAdd(r.Project, r.Service, func() *routeService {
				slab.left = n - i
				return newRouteService(r.Project, r.Service, metas, slab)
			})
		}
		st := c.v
		for _, up := range st.pool.ups {
			k := up.mapKey
			b.ups[k] = up
			b.upRefs[k]++
		}
		if st.mtls != nil {
			a := b.auths[st.authKey]
			if a == nil {
				a = &counted[*clientAuth]{v: st.mtls}
				b.auths[st.authKey] = a
			}
			a.n++
		}
		fill.add(i, route{Host: r.Host, routeService: sv, routeSettings: st})
	}
	if i+1 != n {
		return nil, fmt.Errorf("edge: a route source of %d routes yielded %d", n, i+1)
	}
	if b.t, err = fill.finish(&y, l); err != nil {
		return nil, err
	}
	return b, nil
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
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateRoutes(set, remove)
}

// updateRoutes is UpdateRoutes, with s.mu held.
func (s *Server) updateRoutes(set []Route, remove []string) error {
	if s.closed {
		return errors.New("edge: server is shut down")
	}

	b := newTableBuilder(s.table.Load())
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
	metas := map[string]*serviceMeta{} // the new services' projects
	count := func(rt *route, d int) {
		for _, up := range rt.pool.ups {
			upDelta[up.mapKey] += d
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
		sv := s.services.get(r.Project, r.Service)
		if sv == nil {
			k := [2]string{r.Project, r.Service}
			if sv = newSvcs[k]; sv == nil {
				sv = newRouteService(r.Project, r.Service, metas, nil)
				newSvcs[k] = sv
			}
		}
		if old := b.get(r.Host); old != nil {
			count(old, -1)
		}
		rt := route{Host: r.Host, routeService: sv, routeSettings: st}
		count(&rt, +1)
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
			s.released++
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
	for _, sv := range newSvcs {
		s.services.add(sv)
	}
	for sv, d := range svcDelta {
		if sv.routes += int32(d); sv.routes <= 0 {
			s.services.remove(sv)
			s.retire(sv)
			s.released++
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
