package serving

import (
	"cmp"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/spine-platform/spine/internal/store"
)

// byNameServices applies n services over three projects, each with its
// verified domain, and returns the state and every service as read.
func byNameServices(n int) (*Applied, []store.Service, []store.Domain) {
	log := slog.New(slog.DiscardHandler)
	var domains []store.Domain
	for _, p := range []string{"p", "q", "r"} {
		domains = append(domains, store.Domain{Name: p + ".test", ProjectID: p, Status: store.DomainVerified})
	}
	svcs := make([]store.Service, n)
	for i := range svcs {
		p := []string{"q", "p", "r"}[i%3] // not in project order
		svcs[i] = store.Service{ID: fmt.Sprintf("svc_%06d", n-i), ProjectID: p, Name: fmt.Sprintf("s%d", (i*7919)%n), Domain: p + ".test",
			Hostnames: []string{fmt.Sprintf("h%d.%s.test", i, p)}, Upstreams: []string{"http://127.0.0.1:1"}}
	}
	a := NewApplied(log)
	a.Full(Compute(slices.Clone(svcs), domains, func(store.Domain) bool { return false }, log), domains, nil, nil)
	return a, svcs, domains
}

func byProjectThenName(a, b store.Service) int {
	if c := cmp.Compare(a.ProjectID, b.ProjectID); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// The applied services answer the API's service reads as the store would
// have at that sync: a service by project and name, a project's services
// by name, every service by project then name; nothing for a name or a
// project it does not have; and a later state's answers follow a delta.
func TestAppliedServicesFindByName(t *testing.T) {
	a, svcs, _ := byNameServices(300)
	snap := a.Snapshot()
	want := slices.Clone(snap.List())
	slices.SortFunc(want, byProjectThenName)
	if got, total := snap.ProjectServices("", "", 0, 0); !reflect.DeepEqual(got, want) || total != len(want) {
		t.Fatalf("every service: %d (total %d), not the %d applied by project and name", len(got), total, len(want))
	}
	for _, p := range []string{"p", "q", "r"} {
		var wantP []store.Service
		for _, s := range want {
			if s.ProjectID == p {
				wantP = append(wantP, s)
			}
		}
		if got, total := snap.ProjectServices(p, "", 0, 0); total != 100 || !reflect.DeepEqual(got, wantP) {
			t.Errorf("project %s: %d services (total %d), want its 100 by name", p, len(got), total)
		}
		// Pages: by offset and limit, the last one short, past the end none.
		for _, pg := range []struct{ offset, limit, from, to int }{{0, 30, 0, 30}, {30, 30, 30, 60}, {90, 30, 90, 100}, {100, 30, 100, 100}, {250, 5, 100, 100}, {-3, 2, 0, 2}} {
			got, total := snap.ProjectServices(p, "", pg.offset, pg.limit)
			if total != 100 || len(got) != pg.to-pg.from || len(got) > 0 && !reflect.DeepEqual(got, wantP[pg.from:pg.to]) {
				t.Errorf("project %s, offset %d limit %d: %d services (total %d), want %d from %d", p, pg.offset, pg.limit, len(got), total, pg.to-pg.from, pg.from)
			}
		}
	}
	// A cursor: the services after a name, present or not; none after the last.
	for _, p := range []string{"p", "r"} {
		var wantP []store.Service
		for _, s := range want {
			if s.ProjectID == p {
				wantP = append(wantP, s)
			}
		}
		for _, c := range []struct {
			after             string
			offset, limit, at int
		}{{wantP[41].Name, 0, 10, 42}, {wantP[10].Name + "\x00", 0, 5, 11}, {wantP[10].Name, 3, 5, 14}, {"", 0, 2, 0}} {
			got, total := snap.ProjectServices(p, c.after, c.offset, c.limit)
			if total != 100 || !reflect.DeepEqual(got, wantP[c.at:c.at+c.limit]) {
				t.Errorf("project %s after %q, offset %d: %d services (total %d), want %d from %d", p, c.after, c.offset, len(got), total, c.limit, c.at)
			}
		}
		if got, total := snap.ProjectServices(p, wantP[99].Name, 0, 10); got != nil || total != 100 {
			t.Errorf("project %s after its last: %d services, total %d", p, len(got), total)
		}
	}
	if got, total := snap.ProjectServices("none", "", 0, 0); got != nil || total != 0 {
		t.Errorf("a project without services: %v, total %d", got, total)
	}
	for _, s := range svcs {
		got, ok := snap.FindService(s.ProjectID, s.Name)
		if !ok || got.ID != s.ID || !slices.Equal(got.Hostnames, s.Hostnames) {
			t.Fatalf("%s/%s: %+v, %v; want %s", s.ProjectID, s.Name, got, ok, s.ID)
		}
	}
	for _, k := range [][2]string{{"p", "missing"}, {"none", "s1"}, {"", ""}, {"q", svcs[1].Name}} { // svcs[1] is p's
		if got, ok := snap.FindService(k[0], k[1]); ok {
			t.Errorf("%q/%q found: %+v", k[0], k[1], got)
		}
	}
	// Answers are the caller's: changing one leaves the state alone.
	got, _ := snap.ProjectServices("p", "", 0, 1)
	got[0].Hostnames[0] = "changed.p.test"
	if again, _ := snap.ProjectServices("p", "", 0, 1); again[0].Hostnames[0] == "changed.p.test" {
		t.Error("an answer shares its lists with the applied records")
	}
	// A delta: one service gone, one added; the next state answers so.
	gone := svcs[4]
	added := store.Service{ID: "svc_new", ProjectID: "r", Name: "added", Domain: "r.test", Hostnames: []string{"added.r.test"}, Upstreams: []string{"http://127.0.0.1:1"}}
	d, ok := a.Prepare(store.Changes{Services: []store.Service{added}, Deleted: []string{gone.ID}})
	if !ok {
		t.Fatal("the delta needs a full read")
	}
	a.Commit(d)
	next := a.Snapshot()
	if _, ok := next.FindService(gone.ProjectID, gone.Name); ok {
		t.Error("a deleted service is still found")
	}
	if s, ok := next.FindService("r", "added"); !ok || s.ID != "svc_new" {
		t.Errorf("an added service: %+v, %v", s, ok)
	}
	if _, ok := snap.FindService("r", "added"); ok {
		t.Error("the earlier state found a service added after it")
	}
}

// BenchmarkStaleIndex: the memory the first read with the store away
// keeps, at 100,000 services: the applied records' index by project and
// name (now), against a list of every service, a sorted clone and a map
// by project and name (before: api.StaleReads' index over List).
func BenchmarkStaleIndex(b *testing.B) {
	const n = 100_000
	a, _, _ := byNameServices(n)
	live := func(f func() any) float64 {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		v := f()
		runtime.GC()
		runtime.ReadMemStats(&m1)
		runtime.KeepAlive(v)
		return float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / n
	}
	b.Run("index", func(b *testing.B) {
		var per float64
		for b.Loop() {
			per = live(func() any {
				s := &AppliedServices{t: a.Snapshot().t}
				s.FindService("p", "s1")
				return s
			})
		}
		b.ReportMetric(per, "kept-B/service")
	})
	b.Run("list", func(b *testing.B) {
		var per float64
		for b.Loop() {
			per = live(func() any {
				s := &AppliedServices{t: a.Snapshot().t}
				all := slices.Clone(s.List())
				slices.SortFunc(all, byProjectThenName)
				byName := make(map[string]int, len(all))
				for i, sv := range all {
					byName[sv.ProjectID+"\x00"+sv.Name] = i
				}
				return []any{s, all, byName}
			})
		}
		b.ReportMetric(per, "kept-B/service")
	})
}
