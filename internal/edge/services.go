package edge

import (
	"errors"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/sched"
)

// A service of the route table is a slot of the Server's svcArena, which
// its routes name by index (svcRef), and an entry of its serviceIndex,
// by project and name. Neither holds a pointer a service: at a million
// services, the routeService objects these replaced (a name, a shared
// project and recorder, each behind a pointer, plus the index's pointer
// to each) were four pointers a service for every collection to follow,
// most of them into blocks of the store's read that the table kept alive.

// svcRef names a service of the table: its slot in the svcArena and the
// slot's generation when the service was made. A slot is given to another
// service once its own leaves the table; a route of an older table (a
// request in flight) then names a generation the slot no longer has, and
// gets no recorder.
type svcRef struct{ slot, gen uint32 }

// svcSlot is a service's mutable state: its generation (svcRef) and the
// number of routes of the table naming it, written under Server.mu.
type svcSlot struct {
	gen    atomic.Uint32
	routes int32
}

const (
	svcChunkLen = 4096
	svcChunks   = 4096 // at most 16,777,216 services
)

// svcChunk holds svcChunkLen slots and their metrics recorders: the
// slots' array has no pointer, and the recorders' are nil until the
// service's first request (an idle service holds none).
type svcChunk struct {
	slots [svcChunkLen]svcSlot
	recs  [svcChunkLen]atomic.Pointer[metrics.Service]
}

// svcArena hands out the table's service slots, in chunks made as needed
// and kept (a chunk is 64 KiB: 245 at a million services); a slot whose
// service left is given to the next service made. Slots are made and
// freed under Server.mu; requests read them without a lock.
type svcArena struct {
	chunks [svcChunks]atomic.Pointer[svcChunk]
	n      uint32   // slots handed out at least once
	free   []uint32 // slots whose service left
}

var errTooManyServices = errors.New("edge: more than 16,777,216 services")

// make returns a new service's reference (routes 0, no recorder).
func (a *svcArena) make() (svcRef, error) {
	var i uint32
	if n := len(a.free); n > 0 {
		i = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		if a.n == svcChunkLen*svcChunks {
			return svcRef{}, errTooManyServices
		}
		i = a.n
		a.n++
		if c := &a.chunks[i/svcChunkLen]; c.Load() == nil {
			c.Store(new(svcChunk))
		}
	}
	return svcRef{slot: i, gen: a.slot(i).gen.Load()}, nil
}

// slot returns slot i, which make has handed out.
func (a *svcArena) slot(i uint32) *svcSlot {
	return &a.chunks[i/svcChunkLen].Load().slots[i%svcChunkLen]
}

// rec returns the recorder field of slot i.
func (a *svcArena) rec(i uint32) *atomic.Pointer[metrics.Service] {
	return &a.chunks[i/svcChunkLen].Load().recs[i%svcChunkLen]
}

// live reports whether r's service is still the one in its slot.
func (a *svcArena) live(r svcRef) bool { return a.slot(r.slot).gen.Load() == r.gen }

// recorder returns r's recorder, nil if none or if r's service left.
// Lock-free: the generation is read again after the recorder, so that a
// recorder of the slot's next service is never taken for r's.
func (a *svcArena) recorder(r svcRef) *metrics.Service {
	sl := a.slot(r.slot)
	if sl.gen.Load() != r.gen {
		return nil
	}
	m := a.rec(r.slot).Load()
	if sl.gen.Load() != r.gen {
		return nil
	}
	return m
}

// release frees r's slot (under Server.mu and recMu) and returns its
// recorder, nil if none.
func (a *svcArena) release(r svcRef) *metrics.Service {
	sl := a.slot(r.slot)
	if sl.gen.Load() != r.gen {
		return nil
	}
	sl.gen.Add(1)
	sl.routes = 0
	a.free = append(a.free, r.slot)
	return a.rec(r.slot).Swap(nil)
}

// serviceShards is the number of shards of a serviceIndex: a service
// created or deleted moves the entries of its shard only (a thousand at a
// million services).
const serviceShards = 1024

// serviceIndex finds a project's service of the route table by project
// and name: the Server's services, written and read under Server.mu,
// never by requests (they reach a service through its routes). A shard
// keeps its entries, sorted by project and name, and their names' bytes
// in one block: 16 bytes an entry and the names, with no pointer.
type serviceIndex struct {
	shards [serviceShards]svcShard
}

type svcShard struct {
	ents []svcEntry
	text []byte   // the entries' names, and those of removed ones
	last textSpan // the project written last to text, which the next entry names again if it can
}

// svcEntry is a service of the index: where its project's and name's
// bytes are in its shard's text, and its reference.
type svcEntry struct {
	project, service uint32
	plen, slen       uint8
	ref              svcRef
}

func (sh *svcShard) str(off uint32, n uint8) string {
	return unsafeString(sh.text[off : off+uint32(n)])
}

func (sh *svcShard) names(e *svcEntry) (project, service string) {
	return sh.str(e.project, e.plen), sh.str(e.service, e.slen)
}

// entry appends the names of project's service to the shard's text and
// returns its entry: a project's ID once for the entries that follow one
// another with it, as shard.record does.
func (sh *svcShard) entry(project, service string, ref svcRef) svcEntry {
	e := svcEntry{service: uint32(len(sh.text)), plen: uint8(len(project)), slen: uint8(len(service)), ref: ref}
	sh.text = append(sh.text, service...)
	if sh.str(sh.last.off, sh.last.n) == project {
		e.project = sh.last.off
	} else {
		e.project = uint32(len(sh.text))
		sh.text = append(sh.text, project...)
		sh.last = textSpan{e.project, e.plen}
	}
	return e
}

// unsafeString returns b's bytes as a string, which they must stay: b
// is never written again.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func serviceShard(project, service string) int {
	return int(serviceHash(project, service) % serviceShards)
}

// serviceHash hashes a project and a service name together.
func serviceHash(project, service string) uint64 {
	var h maphash.Hash
	h.SetSeed(tableSeed)
	h.WriteString(project)
	h.WriteByte(0) // a label has no NUL: ("ab", "c") and ("a", "bc") differ
	h.WriteString(service)
	return h.Sum64()
}

func compareNames(p1, s1, p2, s2 string) int {
	if c := strings.Compare(p1, p2); c != 0 {
		return c
	}
	return strings.Compare(s1, s2)
}

// find returns the shard of project's service and where in it the service
// is, or would be inserted, and whether it is there.
func (x *serviceIndex) find(project, service string) (sh *svcShard, i int, ok bool) {
	sh = &x.shards[serviceShard(project, service)]
	i, ok = slices.BinarySearchFunc(sh.ents, project, func(e svcEntry, p string) int {
		ep, es := sh.names(&e)
		return compareNames(ep, es, p, service)
	})
	return sh, i, ok
}

// get returns project's service, false if the index has none.
func (x *serviceIndex) get(project, service string) (svcRef, bool) {
	if sh, i, ok := x.find(project, service); ok {
		return sh.ents[i].ref, true
	}
	return svcRef{}, false
}

// empty reports whether the index holds no service.
func (x *serviceIndex) empty() bool {
	for i := range x.shards {
		if len(x.shards[i].ents) > 0 {
			return false
		}
	}
	return true
}

// add puts project's service in the index; it must not hold one of the
// same project and name.
func (x *serviceIndex) add(project, service string, ref svcRef) {
	sh, i, _ := x.find(project, service)
	sh.ents = slices.Insert(sh.ents, i, sh.entry(project, service, ref))
}

// remove takes project's service out of the index. Its names' bytes stay
// in the shard's text until they are more than half of it.
func (x *serviceIndex) remove(project, service string) {
	sh, i, ok := x.find(project, service)
	if !ok {
		return
	}
	sh.ents = slices.Delete(sh.ents, i, i+1)
	live, last := 0, ""
	for j := range sh.ents {
		p, s := sh.names(&sh.ents[j])
		if live += len(s); p != last {
			live += len(p)
			last = p
		}
	}
	if live < len(sh.text)/2 {
		packed := svcShard{ents: sh.ents[:0:0], text: make([]byte, 0, live)}
		for j := range sh.ents {
			p, s := sh.names(&sh.ents[j])
			packed.ents = append(packed.ents, packed.entry(p, s, sh.ents[j].ref))
		}
		*sh = packed
	}
}

// each calls f for every service of the index.
func (x *serviceIndex) each(f func(project, service string, ref svcRef)) {
	for i := range x.shards {
		sh := &x.shards[i]
		for j := range sh.ents {
			p, s := sh.names(&sh.ents[j])
			f(p, s, sh.ents[j].ref)
		}
	}
}

// len returns the number of services in the index.
func (x *serviceIndex) len() int {
	n := 0
	for i := range x.shards {
		n += len(x.shards[i].ents)
	}
	return n
}

// svcName is a service's names and reference.
type svcName struct {
	project, service string
	ref              svcRef
}

// indexServices returns the index of the n services that at gives (for
// 0 ≤ i < n, each asked for twice), no two of the same project and name:
// each shard allocated once at its size, then sorted (adding them one by
// one would move half a shard each). It yields through y, letting go of
// l (a million services took 0.2 s of a processor that handshakes waited
// for).
func indexServices(n int, at func(i int) svcName, y *sched.Yielder, l sync.Locker) *serviceIndex {
	x := &serviceIndex{}
	shard := make([]uint16, n)
	var sizes, texts [serviceShards]int
	var last [serviceShards]string
	for i := range n {
		y.EveryUnlocked(i, l)
		sv := at(i)
		sh := serviceShard(sv.project, sv.service)
		shard[i] = uint16(sh)
		sizes[sh]++
		texts[sh] += len(sv.service)
		if sv.project != last[sh] {
			texts[sh] += len(sv.project)
			last[sh] = sv.project
		}
	}
	for sh, n := range sizes {
		if n > 0 {
			x.shards[sh] = svcShard{ents: make([]svcEntry, 0, n), text: make([]byte, 0, texts[sh])}
		}
	}
	for i := range n {
		// A million appends, each to one of a thousand shards, took 30 ms
		// of a processor in one go (a runtime trace).
		y.EveryUnlocked(i, l)
		sv := at(i)
		sh := &x.shards[shard[i]]
		sh.ents = append(sh.ents, sh.entry(sv.project, sv.service, sv.ref))
	}
	for i := range x.shards {
		y.MaybeUnlocked(l)
		sh := &x.shards[i]
		slices.SortFunc(sh.ents, func(a, b svcEntry) int {
			ap, as := sh.names(&a)
			bp, bs := sh.names(&b)
			return compareNames(ap, as, bp, bs)
		})
	}
	return x
}

// serviceSet finds services by project and name, for one table build
// (buildTable's services the previous table lacks). It is a map keyed by
// their 64-bit hash (serviceHash) to the service and where the names it
// was first given for the hash are (names reads them: a route's place in
// the build), with a second map, by project and name, for a service
// whose hash another holds already. A first build puts every service in
// it: a key of two strings made that map 100 MB at a million services,
// and a value of two 40 MB more than these 16 bytes.
type serviceSet struct {
	byHash    map[uint64]svcAt
	colliding map[[2]string]svcRef
	names     func(at uint64) (project, service string)
	hash      func(project, service string) uint64 // serviceHash; tests make it collide
}

type svcAt struct {
	ref svcRef
	at  uint64
}

func newServiceSet(hint int, names func(at uint64) (project, service string)) *serviceSet {
	return &serviceSet{byHash: make(map[uint64]svcAt, hint), names: names, hash: serviceHash}
}

// getOrAdd returns the service of project and name in the set; if there
// is none, the one add makes, put in the set, its names at at (each is
// hashed once).
func (x *serviceSet) getOrAdd(project, service string, at uint64, add func() (svcRef, error)) (svcRef, error) {
	h := x.hash(project, service)
	sv, ok := x.byHash[h]
	if !ok {
		ref, err := add()
		if err == nil {
			x.byHash[h] = svcAt{ref: ref, at: at}
		}
		return ref, err
	}
	if p, s := x.names(sv.at); p == project && s == service {
		return sv.ref, nil
	}
	k := [2]string{project, service}
	if ref, ok := x.colliding[k]; ok {
		return ref, nil
	}
	ref, err := add()
	if err != nil {
		return ref, err
	}
	if x.colliding == nil {
		x.colliding = map[[2]string]svcRef{}
	}
	x.colliding[k] = ref
	return ref, nil
}

// each calls f for every service of the set.
func (x *serviceSet) each(f func(svcRef)) {
	for _, sv := range x.byHash {
		f(sv.ref)
	}
	for _, ref := range x.colliding {
		f(ref)
	}
}
