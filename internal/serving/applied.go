package serving

import (
	"bytes"
	"crypto/sha256"
	"iter"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// appliedShards is the number of shards of Applied's services: a delta
// copies the shards of the services it changes (a thousand services of a
// million each) and shares the others.
const appliedShards = 1024

// Applied is what a node applied at its last sync, kept so that a change of
// a few services (store.ChangesSince) is applied at their cost: Prepare
// turns the change into a Delta (the routes to set and remove for
// edge.UpdateRoutes, the names to add and drop for certs.UpdateShared, the
// new fingerprint), and Commit makes it the applied state once the node
// has applied it.
//
// It holds every service served (in the served form: State.Services) by
// ID, in copy-on-write shards, and the inputs of the last full read that
// a service's change does not change (the domains, the wildcard domains,
// the suspended projects, the uploaded certificates): a change of any of
// those is a full change (store.Changes.Full), applied by a full read and
// Full. Its fingerprint equals the one Compute, WithSuspended and
// WithUploaded give a full read of the same store, so a full read after
// deltas finds nothing to change. Services returns what was applied, for
// the fail-static snapshot.
//
// Applied is not safe for concurrent use, except Services and the
// Snapshot it returns: the node's sync, which is serialised, calls the
// others.
type Applied struct {
	log   *slog.Logger
	cur   appliedState
	share *sharing // made anew by each Full
}

// appliedState is one applied state; Prepare builds the next one beside
// it, sharing what it does not change.
type appliedState struct {
	svcs      *svcTable
	acc       [sha256.Size]byte // XOR of the digests of svcs
	sum       [sha256.Size]byte // the fingerprint, as the node compares it
	byName    map[string]store.Domain
	wildcards []string
	suspended map[string]bool
	uploads   []store.UploadedCert
	uploaded  map[string]bool  // hostnames with an uploaded certificate
	full      bool             // a full read was recorded
	snap      *AppliedServices // Snapshot's answer for this state, made on first use
}

// svcTable is an immutable set of served services by ID, in shards by a
// hash of the ID. A shard is never written once its table is published.
type svcTable struct {
	shards [appliedShards]*svcShard
	n      int
}

// svcShard holds the services of one shard, sorted by ID: a slice of
// compact records rather than a map of store.Service copies (about 100
// bytes a service instead of about 300), with no pointer in them: their
// hostnames and upstreams are spans of the shard's one block of bytes,
// their project and domain and their rarer settings indexes into the
// shard's own short lists (freeze). At a million services the collector
// marks them at every cycle: records with pointer fields, one of them a
// string into the read's hostname blocks, cost 45-46 ns a service of each
// mark phase (syncer.BenchmarkSyncMark's applied-mark-ns/host); a record
// holding no pointer costs nothing to mark. at gives a record back as an
// appliedService whose strings are the block's (never written once the
// shard is made) and whose pointers are into the shard's lists.
type svcShard struct {
	recs   []packedService
	text   []byte
	groups []svcGroup
	mores  []serviceMore
	// serial is greater than that of every shard made before it
	// (shardSerials); a full read whose services in a shard are those
	// applied keeps the shard itself (Full): two shards with one serial
	// are one. AppliedServices.ShardVersion.
	serial uint64
}

// shardSerials numbers the shards as they are made, across every Applied.
var shardSerials atomic.Uint64

// packedService is a record as a shard keeps it: an appliedService with
// its strings as spans of the shard's block, its group an index into the
// shard's groups and its more 1 + an index into the shard's mores (0:
// none). 56 bytes, no pointer.
type packedService struct {
	id               rawID
	group, more      uint32
	hosts, upstreams span
	created, updated int64
}

// span is where a string is in a shard's block.
type span struct{ off, n uint32 }

// newSvcShard returns a shard of svcs, sorted by ID, with a new serial.
func newSvcShard(svcs []appliedService) *svcShard {
	sh := freeze(svcs)
	sh.serial = shardSerials.Add(1)
	return sh
}

// freeze makes a shard of svcs: every string of theirs copied into one
// block (a list of upstreams, a group or settings that several records
// share, once), their groups and settings into the shard's lists, each
// distinct value once. The shard keeps none of the caller's strings.
func freeze(svcs []appliedService) *svcShard {
	sh := &svcShard{recs: make([]packedService, len(svcs))}
	if len(svcs) == 0 {
		return sh
	}
	// The block's size first, so that it is made once: the strings taken
	// from it stay valid.
	var (
		size   int
		ups    = map[list]span{}
		groups = map[svcGroup]uint32{}
		mores  map[serviceMore]uint32
	)
	for i := range svcs {
		e := &svcs[i]
		size += len(e.hosts)
		if _, ok := ups[e.upstreams]; !ok {
			ups[e.upstreams] = span{}
			size += len(e.upstreams)
		}
		if _, ok := groups[*e.group]; !ok {
			groups[*e.group] = 0
			size += len(e.group.ProjectID) + len(e.group.Domain)
		}
		if m := e.more; m != nil {
			if mores == nil {
				mores = map[serviceMore]uint32{}
			}
			if _, ok := mores[*m]; !ok {
				mores[*m] = 0
				size += len(m.HealthPath) + len(m.ClientCA) + len(m.ClientAuth) + len(m.ID) + len(m.Name)
			}
		}
	}
	clear(ups)
	clear(groups)
	clear(mores)
	sh.text = make([]byte, 0, size)
	add := func(l string) span {
		sp := span{uint32(len(sh.text)), uint32(len(l))}
		sh.text = append(sh.text, l...)
		return sp
	}
	own := func(s string) string { return string(sh.str(add(s))) }
	for i := range svcs {
		e := &svcs[i]
		r := &sh.recs[i]
		r.id, r.created, r.updated = e.id, e.created, e.updated
		r.hosts = add(string(e.hosts))
		sp, ok := ups[e.upstreams]
		if !ok {
			sp = add(string(e.upstreams))
			ups[e.upstreams] = sp
		}
		r.upstreams = sp
		g, ok := groups[*e.group]
		if !ok {
			g = uint32(len(sh.groups))
			sh.groups = append(sh.groups, svcGroup{ProjectID: own(e.group.ProjectID), Domain: own(e.group.Domain)})
			groups[*e.group] = g
		}
		r.group = g
		if m := e.more; m != nil {
			k, ok := mores[*m]
			if !ok {
				c := *m
				c.HealthPath, c.ClientCA, c.ClientAuth, c.ID, c.Name = own(m.HealthPath), own(m.ClientCA), own(m.ClientAuth), own(m.ID), own(m.Name)
				sh.mores = append(sh.mores, c)
				k = uint32(len(sh.mores))
				mores[*m] = k
			}
			r.more = k
		}
	}
	sh.groups, sh.mores = slices.Clip(sh.groups), slices.Clip(sh.mores)
	return sh
}

// holds reports whether sh's records are svcs, sorted by ID.
func (sh *svcShard) holds(svcs []appliedService) bool {
	if sh.len() != len(svcs) {
		return false
	}
	for i := range svcs {
		if !sameRecord(sh.at(i), svcs[i]) {
			return false
		}
	}
	return true
}

// len returns the number of records.
func (sh *svcShard) len() int { return len(sh.recs) }

// at returns record i: its strings are the shard's block's, allocating
// nothing.
func (sh *svcShard) at(i int) appliedService {
	r := &sh.recs[i]
	e := appliedService{id: r.id, hosts: sh.str(r.hosts), upstreams: sh.str(r.upstreams),
		group: &sh.groups[r.group], created: r.created, updated: r.updated}
	if r.more != 0 {
		e.more = &sh.mores[r.more-1]
	}
	return e
}

func (sh *svcShard) str(sp span) list {
	if sp.n == 0 {
		return ""
	}
	return list(unsafe.String(&sh.text[sp.off], int(sp.n)))
}

// all returns every record.
func (sh *svcShard) all() []appliedService {
	out := make([]appliedService, sh.len())
	for i := range out {
		out[i] = sh.at(i)
	}
	return out
}

// find returns the index of id in the shard, or where it would go.
func (sh *svcShard) find(id string) (int, bool) {
	i := sort.Search(sh.len(), func(i int) bool { e := sh.at(i); return e.cmpID(id) >= 0 })
	if i < sh.len() {
		e := sh.at(i)
		return i, e.cmpID(id) == 0
	}
	return i, false
}

// findIn returns the index of id in svcs, sorted by ID, or where it would
// go.
func findIn(svcs []appliedService, id string) (int, bool) {
	return slices.BinarySearchFunc(svcs, id, func(e appliedService, id string) int { return e.cmpID(id) })
}

// appliedService is one served service as the code reads and builds it
// (compact makes one of a store.Service, svcShard.at gives one back from
// a shard, which keeps it as a packedService), as compact as what it must
// give back (service) allows: its ID's 12 bytes (rawID), its hostnames
// and its upstreams each one string (list), its project and domain in a
// svcGroup shared by the services of that project and domain, its times
// as Unix nanoseconds (as the store keeps them: service returns them in
// UTC, as a store read does) and the settings most services leave at
// their defaults behind a pointer shared by the services that have the
// same. Its name is not kept where the first hostname is <name>.<domain>,
// as platform makes a service's (name): a substring of that hostname. An
// ID not of platform's form, or a name not so derived, is kept in
// serviceMore. Its digest is not kept: a delta that changes the service
// digests it again (digest of service is the digest Full recorded).
type appliedService struct {
	id               rawID // unless more.ownID
	hosts, upstreams list
	group            *svcGroup
	created, updated int64
	more             *serviceMore // nil: every field of it zero
}

// svcGroup is what the services of one project and domain share.
type svcGroup struct{ ProjectID, Domain string }

// serviceMore is the rest of a store.Service.
type serviceMore struct {
	HSTSMaxAge           int
	HealthPath           string
	HealthInterval       time.Duration
	ClientCA, ClientAuth string
	// ID is the service's ID when it is not of platform's form (ownID),
	// Name its name when its first hostname served is not <name>.<domain>
	// (ownName).
	ID, Name       string
	ownID, ownName bool
}

// ID returns e's ID: a new string unless more holds it.
func (e appliedService) ID() string {
	if e.more.isOwnID() {
		return e.more.ID
	}
	return e.id.String()
}

// idText returns e's ID: more's, or its bytes' text in buf.
func (e appliedService) idText(buf *[idLen]byte) string {
	if e.more.isOwnID() {
		return e.more.ID
	}
	return e.id.text(buf)
}

// cmpID compares e's ID with id, as strings compare, allocating nothing.
func (e appliedService) cmpID(id string) int {
	var buf [idLen]byte
	return strings.Compare(e.idText(&buf), id)
}

// compareIDs orders two records by ID.
func compareIDs(a, b appliedService) int {
	if !a.more.isOwnID() && !b.more.isOwnID() {
		return bytes.Compare(a.id[:], b.id[:]) // the hex digits sort as their bytes
	}
	var buf [idLen]byte
	return a.cmpID(b.idText(&buf))
}

func (m *serviceMore) isOwnID() bool { return m != nil && m.ownID }

// Name returns e's name: a substring of its first hostname unless more
// holds it.
func (e appliedService) Name() string {
	if m := e.more; m != nil && m.ownName {
		return m.Name
	}
	first := string(e.hosts)
	if i := strings.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	return first[:len(first)-len(e.group.Domain)-1]
}

// namedBy reports whether first, a service's first hostname, is
// name.domain: what Name gives back without keeping name.
func namedBy(first, name, domain string) bool {
	return name != "" && len(first) == len(name)+1+len(domain) && strings.HasPrefix(first, name) &&
		first[len(name)] == '.' && strings.HasSuffix(first, domain)
}

// list is a list of strings in one string, joined by newlines: "" is the
// empty list, and a list of one is that string, not a copy. Its elements
// are never empty and hold no newline: hostnames in normal form and
// upstream URLs the edge accepted (url.Parse refuses control characters),
// as every service Applied keeps is routable.
type list string

func joinList(ss []string) list {
	if len(ss) == 1 {
		return list(ss[0])
	}
	return list(strings.Join(ss, "\n"))
}

// slice returns the list's elements (nil for none): substrings of l.
func (l list) slice() []string {
	if l == "" {
		return nil
	}
	return strings.Split(string(l), "\n")
}

// count returns the number of elements.
func (l list) count() int {
	if l == "" {
		return 0
	}
	return strings.Count(string(l), "\n") + 1
}

// all yields the list's elements without allocating.
func (l list) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		if l == "" {
			return
		}
		for e := range strings.SplitSeq(string(l), "\n") {
			if !yield(e) {
				return
			}
		}
	}
}

// sharing is what the records of one Applied share: the settings of
// serviceMore and the project and domain of svcGroup. Each map is bounded
// (maxShared): beyond, a record gets its own. Only the node's sync, which
// is serialised, writes them; records only point into them.
type sharing struct {
	mores  map[serviceMore]*serviceMore
	groups map[svcGroup]*svcGroup
}

// maxShared bounds each map of sharing: a platform's distinct settings
// and project-and-domain pairs are few beside its services.
const maxShared = 4096

func newSharing() *sharing {
	return &sharing{mores: map[serviceMore]*serviceMore{}, groups: map[svcGroup]*svcGroup{}}
}

// compact returns s's record, sharing what sh has (nil shares nothing).
// A record that shares allocates nothing beyond its strings' lists.
func compact(s *store.Service, sh *sharing) appliedService {
	e := appliedService{hosts: joinList(s.Hostnames), upstreams: joinList(s.Upstreams),
		created: nanos(s.CreatedAt), updated: nanos(s.UpdatedAt)}
	e.group = shared(sh.groupsOf(), svcGroup{ProjectID: s.ProjectID, Domain: s.Domain})
	m := serviceMore{HSTSMaxAge: s.HSTSMaxAge, HealthPath: s.HealthPath, HealthInterval: s.HealthInterval,
		ClientCA: s.ClientCA, ClientAuth: s.ClientAuth}
	if id, ok := packID(s.ID); ok {
		e.id = id
	} else {
		m.ID, m.ownID = s.ID, true
	}
	if len(s.Hostnames) == 0 || !namedBy(s.Hostnames[0], s.Name, s.Domain) {
		m.Name, m.ownName = s.Name, true
	}
	switch {
	case m.ownID || m.ownName:
		// Its own: one the shared map keeps would take a place that
		// services sharing their settings need. A copy, so that only
		// this case allocates: &m made m itself escape, a serviceMore
		// on the heap for every record (110 MB of a 1M first sync's
		// garbage, BENCHMARKS.md).
		own := m
		e.more = &own
	case m != (serviceMore{}):
		e.more = shared(sh.moresOf(), m)
	}
	return e
}

// shared returns the value of m equal to v, made and added (within
// maxShared) if there is none; m may be nil.
func shared[T comparable](m map[T]*T, v T) *T {
	if p := m[v]; p != nil {
		return p
	}
	p := new(T)
	*p = v
	if m != nil && len(m) < maxShared {
		m[v] = p
	}
	return p
}

func (sh *sharing) groupsOf() map[svcGroup]*svcGroup {
	if sh == nil {
		return nil
	}
	return sh.groups
}

func (sh *sharing) moresOf() map[serviceMore]*serviceMore {
	if sh == nil {
		return nil
	}
	return sh.mores
}

// sameRecord reports whether a and b record the same service.
func sameRecord(a, b appliedService) bool {
	return a.id == b.id && a.hosts == b.hosts && a.upstreams == b.upstreams &&
		a.created == b.created && a.updated == b.updated && *a.group == *b.group &&
		(a.more == b.more || a.more != nil && b.more != nil && *a.more == *b.more)
}

// service returns the service e records.
func (e appliedService) service() store.Service {
	s := e.fields()
	s.Hostnames, s.Upstreams = e.hosts.slice(), e.upstreams.slice()
	return s
}

// fields returns the service e records without its hostnames and
// upstreams.
func (e appliedService) fields() store.Service {
	s := store.Service{ID: e.ID(), ProjectID: e.group.ProjectID, Name: e.Name(), Domain: e.group.Domain,
		CreatedAt: fromNanos(e.created), UpdatedAt: fromNanos(e.updated)}
	if m := e.more; m != nil {
		s.HSTSMaxAge, s.HealthPath, s.HealthInterval, s.ClientCA, s.ClientAuth = m.HSTSMaxAge, m.HealthPath, m.HealthInterval, m.ClientCA, m.ClientAuth
	}
	return s
}

// nanos and fromNanos are the store's encoding of times (0 is the zero
// time; a time read back is in UTC).
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func svcShardOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % appliedShards)
}

func (t *svcTable) get(id string) (appliedService, bool) {
	if sh := t.shards[svcShardOf(id)]; sh != nil {
		if i, ok := sh.find(id); ok {
			return sh.at(i), true
		}
	}
	return appliedService{}, false
}

// NewApplied returns an Applied with nothing applied: Prepare reports
// every change as needing a full read until Full has recorded one.
func NewApplied(log *slog.Logger) *Applied {
	return &Applied{log: log, cur: appliedState{svcs: &svcTable{}}}
}

// Full records a full read as applied: st is Compute's answer with Sum
// as the node compares it (WithSuspended and WithUploaded folded in),
// domains every domain, suspended the suspended projects and uploads the
// uploaded certificates of that read.
func (a *Applied) Full(st State, domains []store.Domain, suspended map[string]bool, uploads []store.UploadedCert) {
	t := &svcTable{n: len(st.Services)}
	var acc [sha256.Size]byte
	var y sched.Yielder
	var sizes [appliedShards]int32
	for i := range st.Services {
		y.Every(i)
		sizes[svcShardOf(st.Services[i].ID)]++
	}
	a.share = newSharing()
	var wide [appliedShards][]appliedService // each shard's records, frozen below
	for i := range st.Services {
		y.Maybe()
		s := &st.Services[i]
		var d [sha256.Size]byte
		if len(st.digests) == len(st.Services) {
			d = st.digests[i]
		} else {
			d = digest(s)
		}
		xorInto(&acc, d)
		j := svcShardOf(s.ID)
		if wide[j] == nil {
			wide[j] = make([]appliedService, 0, sizes[j])
		}
		wide[j] = append(wide[j], compact(s, a.share))
	}
	// A shard whose services are those applied already stays as it is,
	// with its version: the snapshot writer then lists and digests only
	// the shards whose services changed. It holds none of the last read's
	// strings (its records are in its own block), so keeping it keeps no
	// read alive beside this one. One emptied gets an empty shard, not
	// none, so that its version moves.
	for j, svcs := range wide {
		old := a.cur.svcs.shards[j]
		switch {
		case svcs != nil:
			y.Maybe()
			slices.SortFunc(svcs, compareIDs)
			if old != nil && old.holds(svcs) {
				t.shards[j] = old
			} else {
				t.shards[j] = newSvcShard(svcs)
			}
			wide[j] = nil
		case old != nil && old.len() > 0:
			t.shards[j] = newSvcShard(nil)
		}
	}
	byName := make(map[string]store.Domain, len(domains))
	for _, d := range domains {
		byName[d.Name] = d
	}
	uploaded := make(map[string]bool, len(uploads))
	for _, u := range uploads {
		uploaded[u.Hostname] = true
	}
	a.cur = appliedState{svcs: t, acc: acc, sum: st.Sum, byName: byName, wildcards: slices.Clone(st.Wildcards),
		suspended: maps.Clone(suspended), uploads: uploads, uploaded: uploaded, full: true}
}

// SetDomains records domains, every domain of a full read whose
// fingerprint equals the applied one: a domain that serves nothing yet (a
// pending one) changes no fingerprint, but the next delta's services may
// be under it.
func (a *Applied) SetDomains(domains []store.Domain) {
	byName := make(map[string]store.Domain, len(domains))
	for _, d := range domains {
		byName[d.Name] = d
	}
	a.cur.byName = byName
}

// Delta is the change Prepare made of a store.Changes, to apply to the
// edge (Set, Remove: edge.UpdateRoutes) and the certificate manager (Add,
// Drop: certs.UpdateShared), then to Commit.
type Delta struct {
	Set    []edge.Route
	Remove []string // hostnames no longer routed
	Add    []string // hostnames to manage
	Drop   []string // hostnames no longer managed
	// Sum is the fingerprint after the change.
	Sum  [sha256.Size]byte
	next appliedState
}

// Empty reports whether d changes nothing served (a change of a service
// that serves nothing before and after, say).
func (d *Delta) Empty() bool {
	return len(d.Set) == 0 && len(d.Remove) == 0 && len(d.Add) == 0 && len(d.Drop) == 0
}

// Prepare returns the Delta of ch from what is applied, or false when it
// needs a full read: ch is Full, no full read was recorded yet, or a
// service it changes is (or was) in a suspended project or has a
// hostname with an uploaded certificate (rare cases that a full read
// handles as it always did). Nothing changes until Commit.
func (a *Applied) Prepare(ch store.Changes) (*Delta, bool) {
	cur := &a.cur
	if ch.Full || !cur.full {
		return nil, false
	}
	touched := func(project string, hosts iter.Seq[string]) bool {
		if cur.suspended[project] {
			return true
		}
		for h := range hosts {
			if cur.uploaded[h] {
				return true
			}
		}
		return false
	}
	next := *cur
	t := *cur.svcs // a copy of the shard array; shards copied as changed
	next.svcs = &t
	copied := map[int][]appliedService{} // the records of each shard changed, frozen at the end
	put := func(id string, e *appliedService) {
		i := svcShardOf(id)
		svcs, ok := copied[i]
		if !ok {
			if old := t.shards[i]; old != nil {
				svcs = old.all()
			}
		}
		k, had := findIn(svcs, id)
		switch {
		case had && e == nil:
			svcs = slices.Delete(svcs, k, k+1)
			t.n--
		case had:
			svcs[k] = *e
		case e != nil:
			svcs = slices.Insert(svcs, k, *e)
			t.n++
		}
		copied[i] = svcs
	}

	d := &Delta{}
	oldHosts := map[string]bool{} // hostnames of the changed services as applied
	newHosts := map[string]bool{} // and as they are now
	change := func(id string, now *store.Service) bool {
		old, had := cur.svcs.get(id)
		if had {
			if touched(old.group.ProjectID, old.hosts.all()) {
				return false
			}
			s := old.service()
			xorInto(&next.acc, digest(&s))
			for h := range old.hosts.all() {
				oldHosts[h] = true
			}
		}
		var e *appliedService
		if now != nil {
			if touched(now.ProjectID, slices.Values(now.Hostnames)) {
				return false
			}
			if served := a.served(*now, cur.byName); served != nil {
				c := compact(served, a.share)
				e = &c
				xorInto(&next.acc, digest(served))
				for _, h := range served.Hostnames {
					newHosts[h] = true
				}
				d.Set = Routes([]store.Service{*served}, nil).AppendTo(d.Set)
			}
		}
		if had || e != nil {
			put(id, e)
		}
		return true
	}
	for i := range ch.Services {
		if !change(ch.Services[i].ID, &ch.Services[i]) {
			return nil, false
		}
	}
	for _, id := range ch.Deleted {
		if !change(id, nil) {
			return nil, false
		}
	}
	for h := range oldHosts {
		if !newHosts[h] {
			d.Remove = append(d.Remove, h)
			d.Drop = append(d.Drop, h)
		}
	}
	for h := range newHosts {
		if !oldHosts[h] {
			d.Add = append(d.Add, h)
		}
	}
	for i, svcs := range copied {
		t.shards[i] = newSvcShard(svcs)
	}
	slices.Sort(d.Remove)
	slices.Sort(d.Drop)
	slices.Sort(d.Add)
	if !d.Empty() {
		next.snap = nil // else no service served changed: the list is the same
	}
	next.sum = WithUploaded(WithSuspended(combine(next.acc, next.wildcards), next.suspended), next.uploads)
	d.Sum = next.sum
	d.next = next
	return d, true
}

// served returns s with only the hostnames it may serve (Compute's rule
// for one service), or nil if it serves none or the edge cannot route it.
func (a *Applied) served(s store.Service, byName map[string]store.Domain) *store.Service {
	hosts := appendServing(nil, &s, byName)
	if len(hosts) == 0 {
		return nil
	}
	s.Hostnames = hosts
	if r := routable([]store.Service{s}, a.log); len(r) == 0 {
		return nil
	}
	return &s
}

// appendServing appends to dst the hostnames of s that platform.Serving
// allows under byName (Compute's rule for one service), in order.
func appendServing(dst []string, s *store.Service, byName map[string]store.Domain) []string {
	for _, h := range s.Hostnames {
		if platform.Serving(*s, h, byName) {
			dst = append(dst, h)
		}
	}
	return dst
}

// Commit makes d, which the node has applied, the applied state. d must
// be the last Prepare's, with no Full since.
func (a *Applied) Commit(d *Delta) { a.cur = d.next }

// Sum returns the fingerprint of what is applied.
func (a *Applied) Sum() [sha256.Size]byte { return a.cur.sum }

// Snapshot returns what is applied now, immutable: safe to read from any
// goroutine while later changes are prepared and committed.
func (a *Applied) Snapshot() *AppliedServices {
	if a.cur.snap == nil {
		a.cur.snap = &AppliedServices{t: a.cur.svcs}
	}
	return a.cur.snap
}

// AppliedServices are the services of one applied state (Snapshot).
type AppliedServices struct {
	t    *svcTable
	once sync.Once
	list []store.Service

	byNameOnce sync.Once
	byName     []svcPos // every service's place, by project then name (byname.go)
}

// Len returns the number of services.
func (s *AppliedServices) Len() int { return s.t.n }

// List returns the services served, in an order that depends on their IDs
// only (by shard, then by ID). It is made once per state, on the first
// call, and kept (a copy of every service): for tests and small states;
// the node's readers take the services by group (AppendShardServices),
// by hostname (Hostnames) or by project and name (FindService). The
// caller must not modify it.
func (s *AppliedServices) List() []store.Service {
	s.once.Do(func() {
		out := make([]store.Service, 0, s.t.n)
		var y sched.Yielder
		for _, sh := range s.t.shards {
			if sh == nil {
				continue
			}
			y.Maybe()
			for i := range sh.len() {
				out = append(out, sh.at(i).service())
			}
		}
		s.list = out
	})
	return s.list
}

// The services by group, for a reader that keeps what it made of each
// group and redoes only the groups a change touched (the fail-static
// snapshot's writer): group i of n holds the services whose ID's FNV-1a
// hash is i modulo n, that is Applied's shards i, i+n, i+2n...; n must
// divide appliedShards (1024).

// ShardVersion returns the version of group i of n: two states' groups
// with the same version hold the same services. It grows each time a
// change touches the group, and is 0 when no shard of it exists (it is
// the greatest serial of its shards, empty ones too: a shard a change
// copies gets a serial above every earlier one).
func (s *AppliedServices) ShardVersion(i, n int) uint64 {
	var v uint64
	for j := i; j < appliedShards; j += n {
		if sh := s.t.shards[j]; sh != nil {
			v = max(v, sh.serial)
		}
	}
	return v
}

// AppendShardServices appends the services of group i of n to dst, in
// List's order (by shard, then by ID): copies, of that group only. Their
// hostnames and upstreams are slices of one array made for the group, not
// one per service.
func (s *AppliedServices) AppendShardServices(dst []store.Service, i, n int) []store.Service {
	var strs int
	for e := range s.group(i, n) {
		strs += e.hosts.count() + e.upstreams.count()
	}
	arena := make([]string, 0, strs)
	elems := func(l list) []string {
		if l == "" {
			return nil
		}
		from := len(arena)
		arena = slices.AppendSeq(arena, l.all())
		return arena[from:len(arena):len(arena)]
	}
	for e := range s.group(i, n) {
		sv := e.fields()
		sv.Hostnames, sv.Upstreams = elems(e.hosts), elems(e.upstreams)
		dst = append(dst, sv)
	}
	return dst
}

// AppendShardServicesOf appends to dst the services of group i of n that
// have a hostname for which has reports true, in AppendShardServices's
// order: copies of those only, the others' records are only read (the
// snapshot's hot part: the services of the hostnames with a certificate
// in memory, a few in each group).
func (s *AppliedServices) AppendShardServicesOf(dst []store.Service, i, n int, has func(host string) bool) []store.Service {
	for e := range s.group(i, n) {
		for h := range e.hosts.all() {
			if has(h) {
				sv := e.fields()
				sv.Hostnames, sv.Upstreams = slices.Collect(e.hosts.all()), slices.Collect(e.upstreams.all())
				dst = append(dst, sv)
				break
			}
		}
	}
	return dst
}

// group yields the records of group i of n (Applied's shards i, i+n,
// i+2n...), in List's order.
func (s *AppliedServices) group(i, n int) iter.Seq[appliedService] {
	return func(yield func(appliedService) bool) {
		for j := i; j < appliedShards; j += n {
			sh := s.t.shards[j]
			if sh == nil {
				continue
			}
			for k := range sh.len() {
				if !yield(sh.at(k)) {
					return
				}
			}
		}
	}
}

// Hostnames calls yield with each hostname of the services, with its
// service's project and name, until yield returns false: in List's order,
// without copying the services (certs.ServedHostnames, for the metrics of
// every hostname at each scrape, where List kept a copy of every service).
func (s *AppliedServices) Hostnames(yield func(project, service, host string) bool) {
	for _, sh := range s.t.shards {
		if sh == nil {
			continue
		}
		for k := range sh.len() {
			e := sh.at(k)
			for h := range e.hosts.all() {
				if !yield(e.group.ProjectID, e.Name(), h) {
					return
				}
			}
		}
	}
}

// ShardHostnames yields the hostnames of the services of group i of n,
// in no order, without copying the services.
func (s *AppliedServices) ShardHostnames(i, n int) iter.Seq[string] {
	return func(yield func(string) bool) {
		for e := range s.group(i, n) {
			for h := range e.hosts.all() {
				if !yield(h) {
					return
				}
			}
		}
	}
}
