package edge

import (
	"hash/maphash"
	"iter"
	"slices"
	"strings"
	"sync"

	"github.com/spine-platform/spine/internal/sched"
)

// serviceShards is the number of shards of a serviceIndex: a service
// created or deleted moves the pointers of its shard only (a thousand at a
// million services).
const serviceShards = 1024

// serviceIndex finds the routeService of a project's service in the route
// table: the Server's services, written and read under Server.mu, never by
// requests (they reach a service through its routes). A service costs one
// pointer here, in a shard picked by a hash of its project and name and
// sorted by them; a map by name cost 84 bytes a service.
type serviceIndex struct {
	shards [serviceShards][]*routeService
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

// serviceSet finds services by project and name, for one table build
// (buildTable's services the previous table lacks). It is a map keyed by
// their 64-bit hash (serviceHash), with a second map, by project and
// name, for a service whose hash another holds already: a first build
// puts every service in it, and a key of two strings made that map 100
// MB at a million services, against about 40 MB for the hash.
type serviceSet struct {
	byHash    map[uint64]*routeService
	colliding map[[2]string]*routeService
	hash      func(project, service string) uint64 // serviceHash; tests make it collide
}

func newServiceSet(hint int) *serviceSet {
	return &serviceSet{byHash: make(map[uint64]*routeService, hint), hash: serviceHash}
}

// getOrAdd returns the service of project and name in the set; if there
// is none, the one add makes, put in the set (each is hashed once).
func (x *serviceSet) getOrAdd(project, service string, add func() *routeService) *routeService {
	h := x.hash(project, service)
	sv := x.byHash[h]
	switch {
	case sv == nil:
		sv = add()
		x.byHash[h] = sv
		return sv
	case sv.Project() == project && sv.Service == service:
		return sv
	}
	k := [2]string{project, service}
	if sv = x.colliding[k]; sv == nil {
		if x.colliding == nil {
			x.colliding = map[[2]string]*routeService{}
		}
		sv = add()
		x.colliding[k] = sv
	}
	return sv
}

func compareService(sv *routeService, project, service string) int {
	if c := strings.Compare(sv.Project(), project); c != 0 {
		return c
	}
	return strings.Compare(sv.Service, service)
}

// find returns the shard of project's service and where in it the service
// is, or would be inserted, and whether it is there.
func (x *serviceIndex) find(project, service string) (sh, i int, ok bool) {
	sh = serviceShard(project, service)
	i, ok = slices.BinarySearchFunc(x.shards[sh], project, func(sv *routeService, p string) int {
		return compareService(sv, p, service)
	})
	return sh, i, ok
}

// get returns project's service, nil if the index has none.
func (x *serviceIndex) get(project, service string) *routeService {
	if sh, i, ok := x.find(project, service); ok {
		return x.shards[sh][i]
	}
	return nil
}

// empty reports whether the index holds no service.
func (x *serviceIndex) empty() bool {
	for _, sh := range x.shards {
		if len(sh) > 0 {
			return false
		}
	}
	return true
}

// add puts sv in the index; it must not hold a service of the same
// project and name.
func (x *serviceIndex) add(sv *routeService) {
	sh, i, _ := x.find(sv.Project(), sv.Service)
	x.shards[sh] = slices.Insert(x.shards[sh], i, sv)
}

// remove takes sv's project and name out of the index.
func (x *serviceIndex) remove(sv *routeService) {
	if sh, i, ok := x.find(sv.Project(), sv.Service); ok {
		x.shards[sh] = slices.Delete(x.shards[sh], i, i+1)
	}
}

// all yields every service of the index.
func (x *serviceIndex) all() iter.Seq[*routeService] {
	return func(yield func(*routeService) bool) {
		for _, sh := range x.shards {
			for _, sv := range sh {
				if !yield(sv) {
					return
				}
			}
		}
	}
}

// indexServices returns the index of svs, which holds no two services of
// the same project and name: each shard allocated once at its size, then
// sorted (adding them one by one would move half a shard each). It yields
// through y, letting go of l (a million services took 0.2 s of a processor
// that handshakes waited for).
func indexServices(svs []*routeService, y *sched.Yielder, l sync.Locker) *serviceIndex {
	x := &serviceIndex{}
	shard := make([]uint16, len(svs))
	var sizes [serviceShards]int
	for i, sv := range svs {
		y.EveryUnlocked(i, l)
		sh := serviceShard(sv.Project(), sv.Service)
		shard[i] = uint16(sh)
		sizes[sh]++
	}
	for sh, n := range sizes {
		if n > 0 {
			x.shards[sh] = make([]*routeService, 0, n)
		}
	}
	for i, sv := range svs {
		// A million appends, each to one of a thousand shards, took 30 ms
		// of a processor in one go (a runtime trace).
		y.EveryUnlocked(i, l)
		x.shards[shard[i]] = append(x.shards[shard[i]], sv)
	}
	for _, sh := range x.shards {
		y.MaybeUnlocked(l)
		slices.SortFunc(sh, func(a, b *routeService) int { return compareService(a, b.Project(), b.Service) })
	}
	return x
}
