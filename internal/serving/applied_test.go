package serving

import (
	"log/slog"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/memory/memtest"
	"github.com/spine-platform/spine/internal/store"
)

// routeTable applies routes to a table as the edge does, by hostname.
func routeTable(routes []edge.Route) map[string]edge.Route {
	out := map[string]edge.Route{}
	for _, r := range routes {
		out[r.Host] = r
	}
	return out
}

// testDomains are the domains of the serving tests: project p's a.test
// and w.test (wildcard, by wild) verified, its pending.test not, and
// project q's q.test verified.
func testDomains() (domains []store.Domain, wild func(store.Domain) bool) {
	return []store.Domain{
		{Name: "a.test", ProjectID: "p", Status: store.DomainVerified},
		{Name: "w.test", ProjectID: "p", Status: store.DomainVerified},
		{Name: "pending.test", ProjectID: "p", Status: store.DomainPending},
		{Name: "q.test", ProjectID: "q", Status: store.DomainVerified},
	}, func(d store.Domain) bool { return d.Name == "w.test" }
}

// A change of services prepared as a delta leaves the edge's routes, the
// managed names, the fingerprint and the services served exactly as a
// full read of the same store would.
func TestAppliedDeltaMatchesFull(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	domains, wild := testDomains()
	svc := func(id, project, up string, hosts ...string) store.Service {
		return store.Service{ID: id, ProjectID: project, Name: "s" + id, Hostnames: hosts, Upstreams: []string{up},
			CreatedAt: time.Unix(1, 0).UTC(), UpdatedAt: time.Unix(1, 0).UTC()} // in UTC, as the store reads them
	}
	var before []store.Service
	for i := range 50 {
		before = append(before, svc(strconv.Itoa(i), "p", "http://127.0.0.1:1", "h"+strconv.Itoa(i)+".a.test"))
	}
	before = append(before,
		svc("moving", "p", "http://127.0.0.1:1", "m.a.test", "x.w.test"),
		svc("gone", "p", "http://127.0.0.1:2", "gone.a.test"),
		svc("q1", "q", "http://127.0.0.1:3", "q1.q.test"),
	)
	changed := []store.Service{
		svc("new", "p", "http://127.0.0.1:4", "new.a.test", "n.w.test", "hidden.pending.test", "stolen.q.test"),
		svc("moving", "p", "http://127.0.0.1:5", "x.w.test", "m2.a.test"), // a hostname left, one came, upstream changed
		svc("bad", "p", "http://127.0.0.1:99999", "bad.a.test"),           // the edge cannot route it: left out
		svc("7", "p", "http://127.0.0.1:1", "h7.a.test"),                  // unchanged
	}
	changed[1].UpdatedAt = time.Unix(2, 0).UTC()
	deleted := []string{"gone", "never-was"}

	after := slices.Clone(before)
	after = slices.DeleteFunc(after, func(s store.Service) bool { return s.ID == "gone" || s.ID == "moving" || s.ID == "7" })
	after = append(after, changed...)

	full := func(svcs []store.Service) (State, []edge.Route, []string) {
		st := Compute(slices.Clone(svcs), domains, wild, log) // Compute filters its list in place
		st.Sum = WithUploaded(WithSuspended(st.Sum, nil), nil)
		routes := Routes(st.Services, nil)
		return st, routes.Slice(), routes.Managed()
	}
	st0, routes0, hosts0 := full(before)
	a := NewApplied(log)
	if _, ok := a.Prepare(store.Changes{Services: changed}); ok {
		t.Fatal("a delta was prepared before any full read")
	}
	a.Full(st0, domains, nil, nil)
	d, ok := a.Prepare(store.Changes{Services: changed, Deleted: deleted})
	if !ok {
		t.Fatal("no delta for a change of services")
	}
	if a.Sum() != st0.Sum {
		t.Error("Prepare changed the applied fingerprint before Commit")
	}
	a.Commit(d)

	// The edge's table and the managed names after the delta...
	table := routeTable(routes0)
	for _, h := range d.Remove {
		delete(table, h)
	}
	maps.Copy(table, routeTable(d.Set))
	managed := map[string]bool{}
	for _, h := range hosts0 {
		managed[h] = true
	}
	for _, h := range d.Drop {
		delete(managed, h)
	}
	for _, h := range d.Add {
		managed[h] = true
	}
	// ...are those of a full read.
	st1, routes1, hosts1 := full(after)
	if want := routeTable(routes1); !reflect.DeepEqual(table, want) {
		t.Errorf("routes after the delta:\n%v\nafter a full read:\n%v", slices.Sorted(maps.Keys(table)), slices.Sorted(maps.Keys(want)))
	}
	if got, want := slices.Sorted(maps.Keys(managed)), slices.Sorted(slices.Values(hosts1)); !slices.Equal(got, want) {
		t.Errorf("managed names after the delta %v, after a full read %v", got, want)
	}
	if d.Sum != st1.Sum || a.Sum() != st1.Sum {
		t.Error("the fingerprint after the delta is not the full read's: a resync would apply everything again")
	}
	byID := func(ss []store.Service) map[string]store.Service {
		m := map[string]store.Service{}
		for _, s := range ss {
			m[s.ID] = s
		}
		return m
	}
	if got, want := byID(a.Snapshot().List()), byID(st1.Services); !reflect.DeepEqual(got, want) {
		t.Errorf("services served after the delta:\n%v\nafter a full read:\n%v", got, want)
	}
	if n := a.Snapshot().Len(); n != len(st1.Services) {
		t.Errorf("Len %d, want %d", n, len(st1.Services))
	}
	if !slices.Contains(d.Remove, "gone.a.test") || !slices.Contains(d.Remove, "m.a.test") || slices.Contains(d.Remove, "x.w.test") {
		t.Errorf("removed %v: want gone.a.test and m.a.test, not x.w.test (still served)", d.Remove)
	}

	// Nothing changed: an empty delta with the same fingerprint.
	d, ok = a.Prepare(store.Changes{Services: []store.Service{changed[3]}})
	if !ok || d.Sum != st1.Sum {
		t.Errorf("an unchanged service: ok %v, same fingerprint %v", ok, d.Sum == st1.Sum)
	}
}

// A change that a delta does not cover needs a full read.
func TestAppliedNeedsFullRead(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	domains := []store.Domain{{Name: "a.test", ProjectID: "p", Status: store.DomainVerified}, {Name: "s.test", ProjectID: "s", Status: store.DomainVerified}}
	svcs := []store.Service{
		{ID: "1", ProjectID: "p", Name: "one", Hostnames: []string{"up.a.test"}, Upstreams: []string{"http://127.0.0.1:1"}},
		{ID: "2", ProjectID: "s", Name: "two", Hostnames: []string{"x.s.test"}, Upstreams: []string{"http://127.0.0.1:1"}},
	}
	uploads := []store.UploadedCert{{Hostname: "up.a.test", ProjectID: "p", SHA256: "x"}}
	suspended := map[string]bool{"s": true}
	st := Compute(svcs, domains, func(store.Domain) bool { return false }, log)
	st.Sum = WithUploaded(WithSuspended(st.Sum, suspended), uploads)
	a := NewApplied(log)
	a.Full(st, domains, suspended, uploads)
	for name, ch := range map[string]store.Changes{
		"full":                {Full: true},
		"an uploaded name":    {Services: []store.Service{{ID: "3", ProjectID: "p", Name: "three", Hostnames: []string{"up.a.test"}, Upstreams: []string{"http://127.0.0.1:1"}}}},
		"a service with one":  {Deleted: []string{"1"}},
		"a suspended project": {Services: []store.Service{{ID: "4", ProjectID: "s", Name: "four", Hostnames: []string{"y.s.test"}, Upstreams: []string{"http://127.0.0.1:1"}}}},
		"one of its services": {Deleted: []string{"2"}},
	} {
		if _, ok := a.Prepare(ch); ok {
			t.Errorf("%s: a delta was prepared, want a full read", name)
		}
	}
	if d, ok := a.Prepare(store.Changes{Services: []store.Service{{ID: "5", ProjectID: "p", Name: "five", Hostnames: []string{"ok.a.test"}, Upstreams: []string{"http://127.0.0.1:1"}}}}); !ok || !slices.Equal(d.Add, []string{"ok.a.test"}) {
		t.Errorf("a plain service: delta %+v, %v", d, ok)
	}
}

// numberedDomains is the verified domain of the numbered services.
var numberedDomains = []store.Domain{{Name: "a.test", ProjectID: "p", Status: store.DomainVerified}}

// numbered returns service i of project p: ID id<i>, hostname h<i>.a.test,
// upstream up.
func numbered(i int, up string) store.Service {
	id := strconv.Itoa(i)
	return store.Service{ID: "id" + id, ProjectID: "p", Name: "s" + id, Hostnames: []string{"h" + id + ".a.test"}, Upstreams: []string{up}}
}

// A delta of one service changes the version of its group alone; each
// group lists its services in List's order, and yields their hostnames.
func TestAppliedServicesShards(t *testing.T) {
	const groups = 256
	log := slog.New(slog.DiscardHandler)
	domains, svc := numberedDomains, numbered
	var svcs []store.Service
	for i := range 3000 {
		svcs = append(svcs, svc(i, "http://127.0.0.1:1"))
	}
	a := NewApplied(log)
	a.Full(Compute(svcs, domains, func(store.Domain) bool { return false }, log), domains, nil, nil)
	versions := func(s *AppliedServices) (v [groups]uint64) {
		for i := range groups {
			v[i] = s.ShardVersion(i, groups)
		}
		return v
	}
	check := func(s *AppliedServices, when string) {
		t.Helper()
		var all []store.Service
		for i := range groups {
			g := s.AppendShardServices(nil, i, groups)
			for _, sv := range g {
				if svcShardOf(sv.ID)%groups != i {
					t.Fatalf("%s: %s listed in group %d", when, sv.ID, i)
				}
			}
			all = append(all, g...)
		}
		byGroup := slices.Clone(s.List())
		slices.SortStableFunc(byGroup, func(a, b store.Service) int { return svcShardOf(a.ID)%groups - svcShardOf(b.ID)%groups })
		if !reflect.DeepEqual(all, byGroup) {
			t.Errorf("%s: the groups list %d services, not List's %d in its order", when, len(all), len(byGroup))
		}
		hosts := map[string]bool{}
		for i := range groups {
			for h := range s.ShardHostnames(i, groups) {
				if svcShardOf("id"+strings.TrimSuffix(strings.TrimPrefix(h, "h"), ".a.test"))%groups != i {
					t.Fatalf("%s: %s yielded in group %d", when, h, i)
				}
				hosts[h] = true
			}
		}
		if len(hosts) != s.Len() {
			t.Errorf("%s: Hostnames yields %d names, want %d", when, len(hosts), s.Len())
		}
	}
	before := a.Snapshot()
	check(before, "after a full read")
	v0 := versions(before)

	changed := svc(7, "http://127.0.0.1:2")
	for _, ch := range []store.Changes{{Services: []store.Service{changed}}, {Deleted: []string{"id9"}}, {Services: []store.Service{svc(5000, "http://127.0.0.1:1")}}} {
		d, ok := a.Prepare(ch)
		if !ok {
			t.Fatal("Prepare asked for a full read")
		}
		a.Commit(d)
		after := a.Snapshot()
		v1 := versions(after)
		id := "id9"
		if len(ch.Services) > 0 {
			id = ch.Services[0].ID
		}
		for i := range groups {
			if want := i == svcShardOf(id)%groups; (v1[i] != v0[i]) != want {
				t.Errorf("a change of %s: group %d's version %d -> %d", id, i, v0[i], v1[i])
			}
		}
		if versions(before) != v0 {
			t.Error("the earlier state's versions changed")
		}
		check(after, "after a change of "+id)
		before, v0 = after, v1
	}
}

// Applied's compact record gives back every field of a service as a store
// read gives it (times in UTC), so its digest is the one Full recorded and
// a delta that changes or removes it takes out exactly what was put in;
// services of one project and domain, or of the same settings, share them.
func TestAppliedRecordKeepsEveryField(t *testing.T) {
	full := store.Service{ID: "svc_00000000000000000000000a", ProjectID: "p", Name: "web", Domain: "a.test", Hostnames: []string{"web.a.test"},
		Upstreams: []string{"http://127.0.0.1:1"}, HSTSMaxAge: 60, HealthPath: "/up", HealthInterval: time.Second,
		ClientCA: "ca", ClientAuth: "require", CreatedAt: time.Unix(1, 5).UTC(), UpdatedAt: time.Unix(2, 7).UTC()}
	bare := store.Service{ID: "svc_0123456789abcdef01234567", ProjectID: "p", Name: "b", Domain: "a.test", Hostnames: []string{"b.a.test"}}
	several := store.Service{ID: "svc_00000000000000000000000c", ProjectID: "q", Name: "c", Domain: "c.test",
		Hostnames: []string{"c.c.test", "www.c.test", "api.c.test"}, Upstreams: []string{"http://127.0.0.1:1", "https://[::1]:8443/base?x=1"}}
	for _, s := range []store.Service{full, bare, several} {
		sh := newSharing()
		e := compact(&s, sh)
		if got := e.service(); !reflect.DeepEqual(got, s) {
			t.Errorf("record of %s gives back\n%+v\nwant\n%+v", s.ID, got, s)
		}
		if got := slices.Collect(e.hosts.all()); !slices.Equal(got, s.Hostnames) {
			t.Errorf("record of %s yields hostnames %q, want %q", s.ID, got, s.Hostnames)
		}
		e2 := compact(&s, sh)
		if e2.more != e.more || e2.group != e.group {
			t.Errorf("two records of %s share no serviceMore or svcGroup", s.ID)
		}
	}
	if e := compact(&bare, nil); e.more != nil {
		t.Error("a service with default settings has a serviceMore")
	}
	// A service of one hostname keeps the read's string, not a copy.
	if e := compact(&bare, nil); unsafe.StringData(string(e.hosts)) != unsafe.StringData(bare.Hostnames[0]) {
		t.Error("the record of a service of one hostname copied it")
	}
}

// A record keeps an ID of platform's form as its 12 bytes and a name that
// its first hostname holds as none: it gives both back, sorts and finds by
// ID as the strings compare, whatever mix of forms a shard holds.
func TestAppliedRecordIDAndName(t *testing.T) {
	ids := []string{"svc_ffffffffffffffffffffffff", "svc_000000000000000000000000", "svc_0123456789abcdef01234567",
		"id", "svc_", "svc_0123456789ABCDEF01234567", "svc_0123456789abcdef0123456", "svc_0123456789abcdef012345678",
		"svc_0123456789abcdef0123456g", "svd_0123456789abcdef01234567", "svc_00000000000000000000000", "", "zzz"}
	var recs []appliedService
	for _, id := range ids {
		s := store.Service{ID: id, ProjectID: "p", Name: "web", Domain: "a.test", Hostnames: []string{"web.a.test", "x.b.test"}}
		e := compact(&s, newSharing())
		if got := e.ID(); got != id {
			t.Errorf("ID %q given back as %q", id, got)
		}
		_, platformForm := packID(id)
		if platformForm == e.more.isOwnID() {
			t.Errorf("ID %q: kept as a string %v", id, e.more.isOwnID())
		}
		if e.Name() != "web" || unsafe.StringData(e.Name()) != unsafe.StringData(string(e.hosts)) {
			t.Errorf("name %q given back as %q, not the first hostname's bytes", s.Name, e.Name())
		}
		recs = append(recs, e)
	}
	slices.SortFunc(recs, compareIDs)
	sorted := slices.Sorted(slices.Values(ids))
	for i := range recs {
		if got := recs[i].ID(); got != sorted[i] {
			t.Fatalf("sorted by compareIDs, %d is %q, want %q", i, got, sorted[i])
		}
	}
	sh := newSvcShard(recs)
	for _, id := range ids {
		if k, ok := sh.find(id); !ok || recs[k].ID() != id {
			t.Errorf("find(%q) = %d, %v", id, k, ok)
		}
	}
	if _, ok := sh.find("svc_0123456789abcdef01234568"); ok {
		t.Error("found an ID never put in")
	}
	// A name the first hostname does not hold is kept.
	for _, s := range []store.Service{
		{ID: "svc_0123456789abcdef01234567", Name: "c", Domain: "c.test", Hostnames: []string{"c.test"}},
		{ID: "svc_0123456789abcdef01234567", Name: "web", Domain: "a.test", Hostnames: []string{"www.a.test"}},
		{ID: "svc_0123456789abcdef01234567", Name: "web", Domain: "a.test"},
	} {
		sh := newSharing()
		e := compact(&s, sh)
		if e.Name() != s.Name || !e.more.ownName {
			t.Errorf("%+v: name given back as %q (kept: %v)", s, e.Name(), e.more != nil && e.more.ownName)
		}
		if len(sh.mores) != 0 {
			t.Errorf("%+v: a record's own name took a place in the shared settings", s)
		}
	}
}

// BenchmarkAppliedLive reports the live heap Applied keeps per service at
// 100,000 services of one hostname each (the services' own strings, which
// the store's read made and the edge shares, not counted).
func BenchmarkAppliedLive(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	domains := []store.Domain{{Name: "a.test", ProjectID: "p", Status: store.DomainVerified}}
	const n = 100_000
	svcs := make([]store.Service, n)
	for i := range svcs {
		id := strconv.Itoa(i)
		svcs[i] = store.Service{ID: "svc_" + id, ProjectID: "p", Name: "s" + id, Domain: "a.test",
			Hostnames: []string{"s" + id + ".a.test"}, Upstreams: []string{"http://127.0.0.1:1"}}
	}
	st := Compute(svcs, domains, func(store.Domain) bool { return false }, log)
	var per float64
	for b.Loop() {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		a := NewApplied(log)
		a.Full(st, domains, nil, nil)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		per = float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / n
		runtime.KeepAlive(a)
	}
	b.ReportMetric(per, "live-B/service")
}

// A group's services share one array for their hostnames and upstreams,
// yet each gives back its own lists, as List does, and appending to one
// service's list leaves the next service's alone.
func TestAppendShardServicesLists(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	domains := []store.Domain{{Name: "a.test", ProjectID: "p", Status: store.DomainVerified}}
	svcs := []store.Service{
		{ID: "id1", ProjectID: "p", Name: "one", Domain: "a.test", Hostnames: []string{"one.a.test"}, Upstreams: []string{"http://127.0.0.1:1"}},
		{ID: "id2", ProjectID: "p", Name: "two", Domain: "a.test", Hostnames: []string{"two.a.test", "www.two.a.test", "x.a.test"},
			Upstreams: []string{"http://127.0.0.1:2", "http://127.0.0.1:3"}},
		{ID: "id3", ProjectID: "p", Name: "three", Domain: "a.test", Hostnames: []string{"three.a.test"}, Upstreams: []string{"http://127.0.0.1:4"}},
	}
	a := NewApplied(log)
	a.Full(Compute(svcs, domains, func(store.Domain) bool { return false }, log), domains, nil, nil)
	snap := a.Snapshot()
	got := snap.AppendShardServices([]store.Service{{ID: "kept"}}, 0, 1)
	if got[0].ID != "kept" || !reflect.DeepEqual(got[1:], snap.List()) {
		t.Fatalf("AppendShardServices gives\n%+v\nwant what was in dst, then\n%+v", got, snap.List())
	}
	// Those of some hostnames only: the services of any of them, as
	// listed, with their whole lists.
	has := func(h string) bool { return h == "x.a.test" || h == "three.a.test" || h == "nowhere.a.test" }
	of := snap.AppendShardServicesOf([]store.Service{{ID: "kept"}}, 0, 1, has)
	var want []store.Service
	for _, sv := range snap.List() {
		if slices.ContainsFunc(sv.Hostnames, has) {
			want = append(want, sv)
		}
	}
	if len(want) != 2 || of[0].ID != "kept" || !reflect.DeepEqual(of[1:], want) {
		t.Errorf("AppendShardServicesOf gives\n%+v\nwant what was in dst, then\n%+v", of, want)
	}
	for i := 1; i < len(got)-1; i++ {
		next := slices.Clone(got[i+1].Hostnames)
		_ = append(got[i].Hostnames, "appended.a.test")
		if !slices.Equal(got[i+1].Hostnames, next) {
			t.Errorf("appending to %s's hostnames changed %s's: %q", got[i].ID, got[i+1].ID, got[i+1].Hostnames)
		}
	}
}

// A full read that finds a shard's services as applied keeps the shard
// and its version, so the snapshot writer lists only the groups whose
// services changed; a group emptied by a full read changes its version.
// strs returns the strings of s that a record keeps, but empty ones: its
// ID, name, project, domain, health path, hostnames and upstreams.
func strs(s store.Service) []string {
	all := append([]string{s.ID, s.Name, s.ProjectID, s.Domain, s.HealthPath}, append(slices.Clone(s.Hostnames), s.Upstreams...)...)
	return slices.DeleteFunc(all, func(s string) bool { return s == "" })
}

func TestAppliedFullKeepsUnchangedShards(t *testing.T) {
	const groups = 256
	log := slog.New(slog.DiscardHandler)
	domains := numberedDomains
	svc := func(i int, up string) store.Service { // with a setting, so that records share a serviceMore
		s := numbered(i, up)
		s.HealthPath = "/up"
		return s
	}
	var svcs []store.Service
	for i := range 2000 {
		svcs = append(svcs, svc(i, "http://127.0.0.1:1"))
	}
	a := NewApplied(log)
	full := func(svcs []store.Service) (v [groups]uint64) {
		a.Full(Compute(slices.Clone(svcs), domains, func(store.Domain) bool { return false }, log), domains, nil, nil)
		s := a.Snapshot()
		for i := range groups {
			v[i] = s.ShardVersion(i, groups)
		}
		if got := s.List(); len(got) != len(svcs) {
			t.Fatalf("%d services applied, want %d", len(got), len(svcs))
		}
		return v
	}
	v0 := full(svcs)
	// The same services in strings of their own, as a second read makes
	// them: the versions stay, and the records hold neither read's
	// strings (their bytes are their shard's own block), so that no read
	// stays alive through them.
	again := slices.Clone(svcs)
	read := map[*byte]bool{} // where every string of both reads begins
	for i := range again {
		again[i].ID, again[i].Name = strings.Clone(again[i].ID), strings.Clone(again[i].Name)
		again[i].ProjectID, again[i].Domain = strings.Clone(again[i].ProjectID), strings.Clone(again[i].Domain)
		again[i].Hostnames = []string{strings.Clone(again[i].Hostnames[0])}
		again[i].Upstreams = []string{strings.Clone(again[i].Upstreams[0])}
		for _, s := range []store.Service{svcs[i], again[i]} {
			for _, str := range strs(s) {
				read[unsafe.StringData(str)] = true
			}
		}
	}
	if v1 := full(again); v1 != v0 {
		t.Error("a full read of the same services changed shard versions")
	}
	for _, s := range a.Snapshot().List() {
		for _, str := range strs(s) {
			if read[unsafe.StringData(str)] {
				t.Fatalf("service %s: the applied record keeps a read's string %q", s.ID, str)
			}
		}
	}
	// One service changed (its upstream), one gone: their groups only.
	changed := slices.Clone(svcs)
	changed[7] = svc(7, "http://127.0.0.1:2")
	changed = slices.Delete(changed, 9, 10)
	v2 := full(changed)
	for i := range groups {
		want := i == svcShardOf("id7")%groups || i == svcShardOf("id9")%groups
		if (v2[i] != v0[i]) != want {
			t.Errorf("group %d: version %d -> %d, changed want %v", i, v0[i], v2[i], want)
		}
	}
	// Every service of one group gone: its version moves.
	g := svcShardOf("id1") % groups
	kept := slices.DeleteFunc(slices.Clone(changed), func(s store.Service) bool { return svcShardOf(s.ID)%groups == g })
	v3 := full(kept)
	if v3[g] == v2[g] {
		t.Errorf("group %d emptied by a full read kept version %d", g, v3[g])
	}
	if got := a.Snapshot().AppendShardServices(nil, g, groups); len(got) != 0 {
		t.Errorf("group %d emptied still lists %d services", g, len(got))
	}
}

// A shard's record holds no pointer, so that the collector marks a
// shard's records as one object and reads none of them.
func TestPackedServiceHoldsNoPointer(t *testing.T) {
	if memtest.HoldsPointer(reflect.TypeFor[packedService]()) {
		t.Error("packedService holds a pointer")
	}
	if size := reflect.TypeFor[packedService]().Size(); size > 56 {
		t.Errorf("packedService is %d bytes, want at most 56", size)
	}
}
