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
// routes, 60 KiB, at a million) plus the 8 KiB array of shard pointers.
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

// shard holds its routes as records with no pointer, sorted by their
// host's key (hashOf) then host, with the keys alongside; the records'
// names are spans of the shard's one block of bytes, their settings an
// index into the shard's short list of them (a shard's routes share a
// few, or one). A route costs its 24-byte record, 4 of key and its names'
// bytes, and nothing for a collection to follow: its record of 32 bytes
// with three pointers (its host's bytes in the store read's blocks, which
// it kept alive, its service and its settings) cost a million pointers
// each a collection, at a million routes. The keys make a lookup read a
// few cache lines of them and then one record.
type shard struct {
	keys []uint32
	recs []routeRec
	text []byte           // the records' names (shard.record)
	sets []*routeSettings // the records' settings
	last textSpan         // the project written last to text, which the next record names again if it can
}

// routeRec is a route in its shard: where its host and project are in
// the shard's text, its service name (the host's first label, or the
// bytes after the host), its settings (an index in the shard's sets) and
// its service. 24 bytes, the host's offset and length first: a lookup's
// search reads these 8 bytes of the records it passes.
type routeRec struct {
	host             uint32
	hlen, plen, slen uint8
	svcInHost        bool
	project          uint32
	set              uint32
	svc              svcRef
}

// textSpan is where a name is in a block of bytes.
type textSpan struct {
	off uint32
	n   uint8
}

// maxNameLen bounds a route's project ID and service name (a record
// keeps their lengths in a byte, as a hostname's); the store's are
// labels of at most 63 bytes and IDs of 28.
const maxNameLen = 255

// route is a route of the table as its readers see it: its names (views
// of its shard's bytes, which are never written once published), its
// settings and its service.
type route struct {
	Host, project, Service string
	*routeSettings
	svc svcRef
}

// Project returns the ID of rt's project.
func (rt *route) Project() string { return rt.project }

// host returns the host of the record at i: a view of the shard's bytes.
func (sh *shard) host(i int) string {
	r := &sh.recs[i]
	return sh.str(r.host, r.hlen)
}

func (sh *shard) str(off uint32, n uint8) string {
	return unsafeString(sh.text[off : off+uint32(n)])
}

// at returns the route of the record at i.
func (sh *shard) at(i int) route {
	r := &sh.recs[i]
	svc := r.host
	if !r.svcInHost {
		svc += uint32(r.hlen)
	}
	return route{Host: sh.str(r.host, r.hlen), project: sh.str(r.project, r.plen), Service: sh.str(svc, r.slen),
		routeSettings: sh.sets[r.set], svc: r.svc}
}

// record appends rt's names to the shard's text and returns its record,
// its settings at index set. The text holds a project's ID once for the
// records that follow one another with it (a shard's routes are mostly
// of a few projects, often one: its 28 bytes a route were a quarter of
// the table), and a service's name not at all when the host starts with
// it and a dot (a service's hostname on its project's domain).
func (sh *shard) record(rt *route, set uint32) routeRec {
	r := routeRec{host: uint32(len(sh.text)), set: set, svc: rt.svc,
		hlen: uint8(len(rt.Host)), plen: uint8(len(rt.project)), slen: uint8(len(rt.Service))}
	sh.text = append(sh.text, rt.Host...)
	if r.svcInHost = inHost(rt.Host, rt.Service); !r.svcInHost {
		sh.text = append(sh.text, rt.Service...)
	}
	if sh.str(sh.last.off, sh.last.n) == rt.project {
		r.project = sh.last.off
	} else {
		r.project = uint32(len(sh.text))
		sh.text = append(sh.text, rt.project...)
		sh.last = textSpan{r.project, r.plen}
	}
	return r
}

// inHost reports whether host starts with service and a dot.
func inHost(host, service string) bool {
	return len(host) > len(service) && host[len(service)] == '.' && host[:len(service)] == service
}

// textLen returns the bytes record adds to a shard's text for r, the
// project written last to it being *last (updated).
func textLen(last *string, r *Route) int {
	n := len(r.Host)
	if !inHost(r.Host, r.Service) {
		n += len(r.Service)
	}
	if r.Project != *last {
		n += len(r.Project)
		*last = r.Project
	}
	return n
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
		if h := sh.host(lo); h >= host {
			return lo, h == host
		}
	}
	return lo, false
}

// lookup returns host's route, false if none; allocation-free.
func (t *table) lookup(host string) (route, bool) {
	i, key := hashOf(host)
	sh := t.shards[i]
	if sh == nil {
		return route{}, false
	}
	if j, ok := sh.find(key, host); ok {
		return sh.at(j), true
	}
	return route{}, false
}

// recAt returns the place of the j-th record of shard i, for at.
func recAt(i, j int) uint64 { return uint64(i)<<32 | uint64(j) }

// at returns the route at a place recAt gave.
func (t *table) at(at uint64) route { return t.shards[at>>32].at(int(uint32(at))) }

func (t *table) has(host string) bool {
	i, key := hashOf(host)
	if sh := t.shards[i]; sh != nil {
		_, ok := sh.find(key, host)
		return ok
	}
	return false
}

// all yields every route of the table, shard by shard: a pointer to a
// route that the next one replaces.
func (t *table) all() iter.Seq[*route] {
	return func(yield func(*route) bool) {
		var rt route
		for _, sh := range t.shards {
			if sh == nil {
				continue
			}
			for i := range sh.recs {
				rt = sh.at(i)
				if !yield(&rt) {
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
	return s.keys[i] < s.keys[j] || s.keys[i] == s.keys[j] && (*shard)(s).host(i) < (*shard)(s).host(j)
}
func (s *byKey) Swap(i, j int) {
	s.keys[i], s.keys[j] = s.keys[j], s.keys[i]
	s.recs[i], s.recs[j] = s.recs[j], s.recs[i]
}

// setIndex finds the index of settings in shards' lists (a shard's, or
// sets that another maps): a linear search of a short list, and a map
// once a list is longer (a table whose services each name their own
// upstream has as many settings as routes).
type setIndex struct {
	long map[setKey]uint32
}

type setKey struct {
	sh *shard
	st *routeSettings
}

const setScan = 8

// of returns the index of st in sh.sets, appended if missing.
func (x *setIndex) of(sh *shard, st *routeSettings) uint32 {
	if len(sh.sets) <= setScan {
		for i, s := range sh.sets {
			if s == st {
				return uint32(i)
			}
		}
		sh.sets = append(sh.sets, st)
		if len(sh.sets) > setScan { // the list is long now: the map takes over
			if x.long == nil {
				x.long = map[setKey]uint32{}
			}
			for i, s := range sh.sets {
				x.long[setKey{sh, s}] = uint32(i)
			}
		}
		return uint32(len(sh.sets) - 1)
	}
	k := setKey{sh, st}
	if i, ok := x.long[k]; ok {
		return i
	}
	sh.sets = append(sh.sets, st)
	x.long[k] = uint32(len(sh.sets) - 1)
	return uint32(len(sh.sets) - 1)
}

// tableFill builds a whole table (SetRoutes) from routes whose number is
// known: each shard is allocated once at its size, filled in the given
// order, then sorted.
type tableFill struct {
	t     *table
	shard []uint16 // shard of the i-th route given
	key   []uint32 // key of the i-th route given
	sets  setIndex
}

// newTableFill makes a tableFill for routes (only their names are read).
func newTableFill(routes RouteSeq, y *sched.Yielder, l sync.Locker) (*tableFill, error) {
	n := routes.Len()
	f := &tableFill{t: &table{}, shard: make([]uint16, n), key: make([]uint32, n)}
	var sizes, texts [tableShards]int
	var last [tableShards]string
	i := 0
	for r := range routes.All() {
		if i == n {
			return nil, fmt.Errorf("edge: a route source of %d routes yielded more", n)
		}
		y.EveryUnlocked(i, l)
		sh, key := hashOf(r.Host)
		f.shard[i], f.key[i] = uint16(sh), key
		sizes[sh]++
		texts[sh] += textLen(&last[sh], r)
		i++
	}
	if i != n {
		return nil, fmt.Errorf("edge: a route source of %d routes yielded %d", n, i)
	}
	for sh, n := range sizes {
		if n > 0 {
			f.t.shards[sh] = &shard{keys: make([]uint32, 0, n), recs: make([]routeRec, 0, n), text: make([]byte, 0, texts[sh])}
		}
	}
	return f, nil
}

// next returns where add puts the i-th route given, until finish.
func (f *tableFill) next(i int) uint64 {
	sh := f.shard[i]
	return recAt(int(sh), len(f.t.shards[sh].recs))
}

// add puts rt, made of the i-th route given, in its shard.
func (f *tableFill) add(i int, rt *route) {
	sh := f.t.shards[f.shard[i]]
	sh.keys = append(sh.keys, f.key[i])
	sh.recs = append(sh.recs, sh.record(rt, f.sets.of(sh, rt.routeSettings)))
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
		for i := 1; i < len(sh.recs); i++ {
			if h := sh.host(i); h == sh.host(i-1) {
				return nil, fmt.Errorf("%w: host %s appears twice", ErrInvalidRoute, h)
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
	sets   setIndex
}

func newTableBuilder(from *table) *tableBuilder {
	b := &tableBuilder{t: &table{}}
	*b.t = *from
	return b
}

// own returns shard i, copied first if it is still the published table's:
// its records' names packed anew in a block of their own and its list of
// settings of those its records name.
func (b *tableBuilder) own(i int) *shard {
	if !b.copied[i] {
		sh := &shard{}
		if old := b.t.shards[i]; old != nil {
			sh.keys = append(make([]uint32, 0, len(old.keys)+1), old.keys...)
			sh.recs = make([]routeRec, 0, len(old.recs)+1)
			sh.text = make([]byte, 0, len(old.text)+64) // its records packed as they were, or tighter
			for j := range old.recs {
				rt := old.at(j)
				sh.recs = append(sh.recs, sh.record(&rt, b.sets.of(sh, rt.routeSettings)))
			}
		}
		b.t.shards[i] = sh
		b.copied[i] = true
	}
	return b.t.shards[i]
}

// get returns host's route in the table being built.
func (b *tableBuilder) get(host string) (route, bool) { return b.t.lookup(host) }

func (b *tableBuilder) put(rt *route) {
	i, key := hashOf(rt.Host)
	sh := b.own(i)
	j, ok := sh.find(key, rt.Host)
	rec := sh.record(rt, b.sets.of(sh, rt.routeSettings))
	if ok {
		sh.recs[j] = rec
		return
	}
	sh.keys = slices.Insert(sh.keys, j, key)
	sh.recs = slices.Insert(sh.recs, j, rec)
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
	sh.recs = slices.Delete(sh.recs, j, j+1)
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
	s.building = true
	b, err := s.buildTable(routes, &s.mu)
	s.building = false
	if err == nil && s.released != released {
		s.dropServices(b)
		b, err = s.buildTable(routes, nil)
	}
	if err != nil {
		return err
	}
	if s.closed {
		s.dropServices(b)
		return errors.New("edge: server is shut down")
	}
	t := b.t
	s.table.Store(t)
	s.warm.Store(nil) // a whole table: the warm-up, if any, is over (warm.go)
	s.certs.Clear()
	// Count the routes of each service anew; a service of the previous
	// table that counts none has left it.
	s.services.each(func(_, _ string, ref svcRef) { s.svcs.slot(ref.slot).routes = 0 })
	// At most a service a route: sized once (at a million services the
	// list grew through 42 MB).
	// Each of its first route's place in the table.
	svs := make([]uint64, 0, t.n)
	n := 0
	var y sched.Yielder
	for i, sh := range t.shards {
		if sh == nil {
			continue
		}
		for j := range sh.recs {
			// Lets go of s.mu too: a warm-up's put that waited for it
			// since before the swap finds the full table and returns.
			n++
			y.EveryUnlocked(n, &s.mu)
			sl := s.svcs.slot(sh.recs[j].svc.slot)
			if sl.routes == 0 {
				svs = append(svs, recAt(i, j))
			}
			sl.routes++
		}
	}
	services := indexServices(len(svs), func(k int) svcName {
		rt := t.at(svs[k])
		return svcName{project: rt.project, service: rt.Service, ref: rt.svc}
	}, &y, &s.mu)
	s.services.each(func(project, service string, ref svcRef) {
		if s.svcs.slot(ref.slot).routes != 0 {
			return
		}
		if same, ok := services.get(project, service); ok {
			// The same service, made anew by a build that let a warm-up
			// put its route meanwhile: its series stay, with its recorder.
			s.recMu.Lock()
			if m := s.svcs.release(ref); m != nil {
				s.svcs.rec(same.slot).CompareAndSwap(nil, m)
			}
			s.recMu.Unlock()
			return
		}
		s.retire(ref)
	})
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
	newSvcs  *serviceSet // the services it made
}

// dropServices frees the services b made, for a build that is not
// published.
func (s *Server) dropServices(b *tableBuild) {
	var y sched.Yielder // a first build's are every service: 0.2 s at a million
	i := 0
	b.newSvcs.each(func(ref svcRef) {
		s.svcs.release(ref)
		y.Every(i)
		i++
	})
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
func (s *Server) buildTable(routes RouteSeq, l sync.Locker) (b *tableBuild, err error) {
	var y sched.Yielder
	fill, err := newTableFill(routes, &y, l)
	if err != nil {
		return nil, err
	}
	parsed := upstreamParses{}
	b = &tableBuild{ups: make(map[string]*upstream, len(s.upstreams)), upRefs: make(map[string]int, len(s.upRefs)),
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
	newSvcs := newServiceSet(hint, func(at uint64) (string, string) {
		rt := fill.t.at(at)
		return rt.project, rt.Service
	})
	b.newSvcs = newSvcs
	defer func() {
		if err != nil { // b is nil now
			newSvcs.each(func(ref svcRef) { s.svcs.release(ref) })
		}
	}()
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
		sv, ok := s.services.get(r.Project, r.Service)
		if !ok {
			if sv, err = b.newSvcs.getOrAdd(r.Project, r.Service, fill.next(i), s.svcs.make); err != nil {
				return nil, err
			}
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
		fill.add(i, &route{Host: r.Host, project: r.Project, Service: r.Service, routeSettings: st, svc: sv})
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
	svcDelta := map[svcRef]int{}
	svcNames := map[svcRef][2]string{} // of the services counted
	newSvcs := map[[2]string]svcRef{}
	committed := false
	defer func() {
		if !committed {
			for _, ref := range newSvcs {
				s.svcs.release(ref)
			}
		}
	}()
	count := func(rt *route, d int) {
		for _, up := range rt.pool.ups {
			upDelta[up.mapKey] += d
		}
		if rt.mtls != nil {
			authDelta[rt.authKey] += d
		}
		setDelta[rt.key] += d
		if _, ok := svcDelta[rt.svc]; !ok {
			svcNames[rt.svc] = [2]string{rt.project, rt.Service}
		}
		svcDelta[rt.svc] += d
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
		if old, ok := b.get(h); ok {
			count(&old, -1)
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
		sv, ok := s.services.get(r.Project, r.Service)
		if !ok {
			k := [2]string{r.Project, r.Service}
			if sv, ok = newSvcs[k]; !ok {
				var err error
				if sv, err = s.svcs.make(); err != nil {
					return err
				}
				newSvcs[k] = sv
			}
		}
		if old, ok := b.get(r.Host); ok {
			count(&old, -1)
		}
		rt := route{Host: r.Host, project: r.Project, Service: r.Service, routeSettings: st, svc: sv}
		count(&rt, +1)
		b.put(&rt)
		touched = append(touched, r.Host)
	}

	committed = true
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
	for k, ref := range newSvcs {
		s.services.add(k[0], k[1], ref)
	}
	for ref, d := range svcDelta {
		sl := s.svcs.slot(ref.slot)
		if sl.routes += int32(d); sl.routes <= 0 {
			k := svcNames[ref]
			s.services.remove(k[0], k[1])
			s.retire(ref)
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
