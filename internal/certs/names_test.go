package certs

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/memory/memtest"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// nameState is what a Manager serves and manages.
type nameState struct {
	Served, Managed []string
	Covers          map[string][]string
}

func (m *Manager) nameState() nameState {
	s := nameState{Covers: map[string][]string{}}
	s.Served = slices.Sorted(func(yield func(string) bool) {
		for n := range m.served.Load().all() {
			if !yield(n) {
				return
			}
		}
	})
	s.Managed = slices.Sorted(func(yield func(string) bool) {
		for n := range m.managed.Load().all() {
			if !yield(n) {
				return
			}
		}
	})
	maps.Insert(s.Covers, m.covers.Load().all())
	return s
}

// UpdateShared leaves a Manager serving and managing exactly what
// SyncShared of the resulting names would, wildcard coverage included.
func TestUpdateSharedMatchesSyncShared(t *testing.T) {
	ctx := context.Background()
	wild := []string{"w.test"}
	before := []string{"a.test", "b.test", "x.w.test", "y.w.test", "only.v.test", "deep.x.w.test", "keep.test"}
	add := []string{"c.test", "z.w.test", "n.v.test", "B.test", "new.u.test"}
	remove := []string{"a.test", "b.test", "x.w.test", "y.w.test", "only.v.test", "deep.x.w.test", "missing.test"}
	after := []string{"keep.test", "b.test", "c.test", "z.w.test", "n.v.test", "new.u.test"}

	e := newEnv(t, envOptions{})
	e.m.SyncShared(ctx, before, wild)
	e.m.UpdateShared(ctx, add, remove)
	full := newEnv(t, envOptions{})
	full.m.SyncShared(ctx, after, wild)
	got, want := e.m.nameState(), full.m.nameState()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after UpdateShared:\n%+v\nafter SyncShared of the same names:\n%+v", got, want)
	}
	// A wildcard subject keeps serving the hostnames it still covers
	// while it loses others; every name added gets a certificate.
	for _, name := range []string{"c.test", "z.w.test", "b.test", "new.u.test", "keep.test"} {
		poll.Until(t, "a certificate for "+name, time.Minute, func() error { _, err := e.dial(name); return err })
	}
	for _, name := range []string{"a.test", "x.w.test", "only.v.test"} {
		if _, err := e.dial(name); err == nil {
			t.Errorf("a handshake for %s, removed, succeeded", name)
		}
	}

	// Removing every hostname a wildcard covers drops the wildcard.
	e.m.UpdateShared(ctx, nil, []string{"z.w.test"})
	if e.m.managed.Load().has("*.w.test") || e.m.Manages("z.w.test") {
		t.Error("*.w.test is still managed after its last hostname left")
	}
	if !e.m.Manages("keep.test") || e.m.served.Load().len() != 5 {
		t.Errorf("served %v after removing z.w.test, want the 5 others", e.m.nameState().Served)
	}
}

// hostnames returns n distinct normalised hostnames.
func hostnames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%d.customer.example", i)
	}
	return out
}

// contents returns every name of s with its value, checking that s.len
// counts them and that get finds each.
func contents[V any](t *testing.T, s *names[V]) map[string]V {
	t.Helper()
	out := map[string]V{}
	for n, v := range s.all() {
		if _, dup := out[n]; dup {
			t.Fatalf("%s yielded twice", n)
		}
		out[n] = v
		if got, ok := s.get(n); !ok || !reflect.DeepEqual(got, v) {
			t.Fatalf("get(%s) = %v, %v; all yields %v", n, got, ok, v)
		}
	}
	if s.len() != len(out) {
		t.Fatalf("len() = %d, all yields %d names", s.len(), len(out))
	}
	return out
}

// A names built from nothing holds each name once, with the value put
// last, however often and in whatever order the names were put.
func TestNamesBuilderDuplicates(t *testing.T) {
	b := newNamesBuilder[int](10)
	want := map[string]int{}
	for i := range 5000 {
		n := fmt.Sprintf("h%d.test", (i*7919)%3000) // 2000 names put twice
		b.put(n, i)
		want[n] = i
	}
	s := b.build(&sched.Yielder{})
	if got := contents(t, s); !maps.Equal(got, want) {
		t.Fatalf("built %d names, want %d", len(got), len(want))
	}
	if s.has("h3000.test") || s.has("") {
		t.Error("has a name never put")
	}
	if e := (&namesBuilder[int]{}).build(&sched.Yielder{}); e.len() != 0 || e.has("h1.test") {
		t.Error("an empty builder built a names that is not empty")
	}
}

// A delta leaves the names it started from unchanged, generation after
// generation, while it adds and removes names in shards that hold others,
// and shares the shards it does not change.
func TestNamesDeltaCopyOnWrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 1))
	universe := hostnames(4000) // about four names a shard
	b := newNamesBuilder[int](len(universe))
	want := map[string]int{}
	for _, n := range universe[:2000] {
		b.put(n, 0)
		want[n] = 0
	}
	type generation struct {
		s    *names[int]
		want map[string]int
	}
	gens := []generation{{b.build(&sched.Yielder{}), maps.Clone(want)}}
	for g := 1; g <= 20; g++ {
		prev := gens[len(gens)-1]
		d := newNamesDelta(prev.s)
		touched := map[int]bool{}
		for range 150 {
			n := universe[rng.IntN(len(universe))]
			i, _ := place(n)
			touched[i] = true
			if rng.IntN(2) == 0 {
				d.put(n, g)
				want[n] = g
			} else {
				d.remove(n)
				delete(want, n)
			}
		}
		if got := contents(t, d.s); !maps.Equal(got, want) {
			t.Fatalf("generation %d: %d names, want %d", g, len(got), len(want))
		}
		for i := range nameShards {
			if touched[i] || prev.s.shards[i].keys.len() == 0 {
				continue
			}
			if &d.s.shards[i].keys.text[0] != &prev.s.shards[i].keys.text[0] {
				t.Fatalf("generation %d: shard %d, untouched, was copied", g, i)
			}
		}
		gens = append(gens, generation{d.s, maps.Clone(want)})
	}
	for g, gen := range gens {
		if got := contents(t, gen.s); !maps.Equal(got, gen.want) {
			t.Errorf("generation %d changed after the deltas built from it", g)
		}
	}
}

// filter keeps the names it is told to, and shares the shards where it
// keeps every name.
func TestNamesFilter(t *testing.T) {
	all := hostnames(3000)
	s := setOf(all...)
	drop := map[string]bool{all[5]: true, all[500]: true, all[2999]: true}
	f := s.filter(func(n string) bool { return !drop[n] })
	got := slices.Sorted(maps.Keys(contents(t, f)))
	want := slices.Sorted(slices.Values(slices.DeleteFunc(slices.Clone(all), func(n string) bool { return drop[n] })))
	if !slices.Equal(got, want) {
		t.Fatalf("filter kept %d names, want %d", len(got), len(want))
	}
	for i := range nameShards {
		sh := &s.shards[i].keys
		if sh.len() == 0 {
			continue
		}
		kept := true
		for j := range sh.len() {
			kept = kept && !drop[sh.at(j)]
		}
		if shared := f.shards[i].keys.len() > 0 && &f.shards[i].keys.text[0] == &sh.text[0]; shared != kept {
			t.Errorf("shard %d: shared %v, every name kept %v", i, shared, kept)
		}
	}
	if s.len() != len(all) {
		t.Errorf("filter changed the names it read: %d left", s.len())
	}
}

// allows answers for the names in the set and for those one label under a
// wildcard name in it, never deeper.
func TestNamesAllows(t *testing.T) {
	s := setOf("a.test", "*.w.test", "*.x.test")
	for name, want := range map[string]bool{
		"a.test":      true,
		"b.test":      false,
		"x.w.test":    true,
		"*.w.test":    true,
		"w.test":      false,
		"y.x.w.test":  false,
		"x.a.test":    false,
		"one.x.test":  true,
		"x.test":      false,
		"":            false,
		"test":        false,
		"z.w.test.":   false, // allows takes normalised names
		"*.y.w.test":  false,
		"deep.w.test": true,
	} {
		if got := s.allows(name); got != want {
			t.Errorf("allows(%q) = %v, want %v", name, got, want)
		}
	}
}

// A Manager keeps one set for the served and the managed names while no
// hostname is covered by a wildcard certificate, two while one is, and
// one again when the last covered hostname leaves.
func TestServedAndManagedShareOneSet(t *testing.T) {
	ctx := context.Background()
	// Every certificate recorded as valid: none is obtained meanwhile.
	valid := &validAll{names: []string{"a.test", "b.test", "c.test", "x.w.test", "*.w.test"}}
	m, err := New(Config{Storage: &certmagic.FileStorage{Path: storageDir(t)}, Status: valid})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	one := func() bool { return m.served.Load() == m.managed.Load() }

	m.SyncShared(ctx, []string{"a.test", "b.test", "x.w.test"}, nil)
	if !one() {
		t.Error("after SyncShared without wildcard domains: two sets")
	}
	m.UpdateShared(ctx, []string{"c.test"}, []string{"a.test"})
	if !one() || m.Manages("a.test") || !m.Manages("c.test") {
		t.Errorf("after UpdateShared without wildcard domains: one set %v, state %+v", one(), m.nameState())
	}

	m.SyncShared(ctx, []string{"a.test", "b.test", "x.w.test"}, []string{"w.test"})
	if one() {
		t.Error("after SyncShared covering x.w.test by *.w.test: one set")
	}
	if s := m.nameState(); !slices.Equal(s.Managed, []string{"*.w.test", "a.test", "b.test"}) ||
		!slices.Equal(s.Served, []string{"a.test", "b.test", "x.w.test"}) {
		t.Errorf("covering x.w.test: %+v", s)
	}
	m.UpdateShared(ctx, nil, []string{"x.w.test"})
	if !one() {
		t.Error("after the last covered hostname left: two sets")
	}
	m.UpdateShared(ctx, []string{"y.w.test"}, nil)
	if one() || !m.managed.Load().has("*.w.test") || m.managed.Load().has("y.w.test") || !m.Manages("y.w.test") {
		t.Errorf("after UpdateShared covering y.w.test: one set %v, state %+v", one(), m.nameState())
	}
}

// setOf builds a nameSet of names from nothing.
func setOf(names ...string) *nameSet {
	b := newNamesBuilder[struct{}](len(names))
	for _, n := range names {
		b.put(n, struct{}{})
	}
	return b.build(&sched.Yielder{})
}

// BenchmarkNamesAllows measures a handshake's look-up in the served
// names: a name in the set, and one that is not (two look-ups: the name
// and the wildcard of its parent).
func BenchmarkNamesAllows(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		s := setOf(hostnames(n)...)
		// Other strings than the set's, as a ClientHello's name is, asked
		// for in no order.
		names := hostnames(n)
		rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { names[i], names[j] = names[j], names[i] })
		b.Run(fmt.Sprintf("hit/%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				if !s.allows(names[i]) {
					b.Fatalf("%s not allowed", names[i])
				}
				if i++; i == n {
					i = 0
				}
			}
		})
		missing := hostnames(n)
		for i := range missing {
			missing[i] = "x." + missing[i]
		}
		b.Run(fmt.Sprintf("miss/%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				if s.allows(missing[i]) {
					b.Fatalf("%s allowed", missing[i])
				}
				if i++; i == n {
					i = 0
				}
			}
		})
	}
}

// validAll is a status record in which every name's certificate is valid:
// a SyncShared manages none at once, each would be loaded by its first
// handshake (a node's start).
type validAll struct {
	fakeStatus
	names []string
}

func (v *validAll) ListCertStatus(context.Context) ([]store.CertStatus, error) { return nil, nil }

func (v *validAll) ListCertStatusDue(context.Context, float64, time.Time, int) ([]store.CertStatus, error) {
	return nil, nil
}

func (v *validAll) ListCertValid(context.Context, float64, time.Time) ([]string, error) {
	return v.names, nil
}

// BenchmarkSyncSharedMemory reports the live heap a Manager holds per
// hostname after a node's first SyncShared (one hostname per service, no
// wildcard domain), the hostnames' own bytes excluded: they are the
// caller's; and what each collection pays to mark what it holds
// (mark-ns/name: the processor time of a forced collection's mark phase,
// memtest.MarkCPU, after the sync less before it).
func BenchmarkSyncSharedMemory(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			names := packedHostnames(n)
			for b.Loop() {
				m, err := New(Config{
					Storage:       &certmagic.FileStorage{Path: b.TempDir()},
					Status:        &validAll{names: names},
					CacheCapacity: 1, // nothing warmed: the sets alone
				})
				if err != nil {
					b.Fatal(err)
				}
				before, markBefore := liveHeap(), memtest.MarkCPU()
				m.SyncShared(context.Background(), names, nil)
				after, markAfter := liveHeap(), memtest.MarkCPU()
				if !m.Manages(names[n-1]) {
					b.Fatalf("%s not managed", names[n-1])
				}
				b.ReportMetric(float64(after-before)/float64(n), "B/name")
				b.ReportMetric(float64(markAfter-markBefore)/float64(n), "mark-ns/name")
				m.Stop()
			}
		})
	}
}

// packedHostnames returns hostnames(n) as parts of 16 KiB blocks, as the
// store's read makes a sync's strings (store.packed): a name set's pointer
// into one marks nothing new, only the block's first.
func packedHostnames(n int) []string {
	out := make([]string, n)
	var block []byte
	for i := range out {
		h := fmt.Sprintf("h%d.customer.example", i)
		if cap(block)-len(block) < len(h) {
			block = make([]byte, 0, 16<<10)
		}
		k := len(block)
		block = append(block, h...)
		out[i] = unsafe.String(&block[k], len(h))
	}
	return out
}

// liveHeap returns the bytes of the heap reachable after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	return s.HeapAlloc
}

// A builder told every name first (expect) makes each shard at its size:
// the names built hold no room beyond them. A name put that expect was not
// told of, and one told of but never put, change what is built in nothing.
func TestNamesBuilderExpect(t *testing.T) {
	b := newNamesBuilder[struct{}](0)
	want := map[string]struct{}{}
	for i := range 20000 {
		n := fmt.Sprintf("h%d.test", i)
		b.expect(n)
		want[n] = struct{}{}
	}
	for n := range want {
		b.put(n, struct{}{})
	}
	s := b.build(&sched.Yielder{})
	if got := contents(t, s); !maps.Equal(got, want) {
		t.Fatalf("built %d names, want %d", len(got), len(want))
	}
	for i := range s.shards {
		if sh := s.shards[i]; cap(sh.keys.ends) != len(sh.keys.ends) || cap(sh.keys.text) != len(sh.keys.text) || cap(sh.tags) != len(sh.tags) {
			t.Fatalf("shard %d: %d names in room for %d keys (%d of %d bytes) and %d tags", i, sh.keys.len(), cap(sh.keys.ends), len(sh.keys.text), cap(sh.keys.text), cap(sh.tags))
		}
	}

	b = newNamesBuilder[struct{}](0)
	b.expect("told.test")
	b.expect("never-put.test")
	b.put("told.test", struct{}{})
	b.put("not-told.test", struct{}{})
	b.put("not-told.test", struct{}{})
	if got := contents(t, b.build(&sched.Yielder{})); !maps.Equal(got, map[string]struct{}{"told.test": {}, "not-told.test": {}}) {
		t.Errorf("built %v, want told.test and not-told.test", slices.Sorted(maps.Keys(got)))
	}
}
