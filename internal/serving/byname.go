package serving

import (
	"cmp"
	"slices"
	"sort"

	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// svcPos is where a service is in a svcTable: its shard and its index
// there. The index by project and name is a slice of these, 8 bytes a
// service and no pointer for the collector to follow.
type svcPos struct {
	shard uint16
	i     uint32
}

// AppliedServices is a store.ServiceFinder over the records themselves:
// the API's service reads while the store is away are answered from them
// without a copy of every service. Before, the first such read listed
// every service (List, kept for the state's life), sorted a clone of it
// and mapped every project and name: about 0.5 GB at a million services
// for the length of the outage. Now the first read sorts the services'
// places once per state (8 MB at a million), and each read copies only
// the services it answers.
var _ store.ServiceFinder = (*AppliedServices)(nil)

func (s *AppliedServices) at(p svcPos) appliedService { return s.t.shards[p.shard].at(int(p.i)) }

// byProjectName orders two records by project, then name.
func byProjectName(a, b appliedService) int {
	return cmpProjectName(a, b.group.ProjectID, b.Name())
}

// cmpProjectName orders a record before, at or after project's service
// name.
func cmpProjectName(e appliedService, project, name string) int {
	if c := cmp.Compare(e.group.ProjectID, project); c != 0 {
		return c
	}
	return cmp.Compare(e.Name(), name)
}

// index returns every service's place by project, then name, made at the
// first call.
func (s *AppliedServices) index() []svcPos {
	s.byNameOnce.Do(func() {
		pos := make([]svcPos, 0, s.t.n)
		var y sched.Yielder
		for j, sh := range s.t.shards {
			if sh == nil {
				continue
			}
			y.Maybe()
			for i := range sh.len() {
				pos = append(pos, svcPos{shard: uint16(j), i: uint32(i)})
			}
		}
		slices.SortFunc(pos, func(a, b svcPos) int { return byProjectName(s.at(a), s.at(b)) })
		s.byName = pos
	})
	return s.byName
}

// FindService returns projectID's service name, if it was applied.
func (s *AppliedServices) FindService(projectID, name string) (store.Service, bool) {
	pos := s.index()
	i, ok := slices.BinarySearchFunc(pos, name, func(p svcPos, name string) int { return cmpProjectName(s.at(p), projectID, name) })
	if !ok {
		return store.Service{}, false
	}
	return s.at(pos[i]).service(), true
}

// ProjectServices returns the page [offset, offset+limit) of projectID's
// applied services sorted by name (limit 0: to the end), counted from the
// first whose name sorts after after, or of every applied service by
// project, then name, for "", and how many the project has in all: a
// copy of the page's services made for the caller.
func (s *AppliedServices) ProjectServices(projectID, after string, offset, limit int) ([]store.Service, int) {
	pos := s.index()
	lo, hi := 0, len(pos)
	if projectID != "" {
		lo, _ = slices.BinarySearchFunc(pos, projectID, func(p svcPos, id string) int {
			return cmp.Compare(s.at(p).group.ProjectID, id)
		})
		hi = lo + sort.Search(len(pos)-lo, func(i int) bool { return s.at(pos[lo+i]).group.ProjectID != projectID })
	}
	total := hi - lo
	if after != "" {
		lo += sort.Search(hi-lo, func(i int) bool { return s.at(pos[lo+i]).Name() > after })
	}
	from, to := pagePart(hi-lo, offset, limit)
	if from == to {
		return nil, total
	}
	out := make([]store.Service, 0, to-from)
	for _, p := range pos[lo+from : lo+to] {
		out = append(out, s.at(p).service())
	}
	return out, total
}

// pagePart returns the part [from, to) of n items that offset and limit
// select (limit 0: to the end; a negative offset is 0).
func pagePart(n, offset, limit int) (from, to int) {
	from = min(max(offset, 0), n)
	to = n
	if limit > 0 && limit < to-from {
		to = from + limit
	}
	return from, to
}
