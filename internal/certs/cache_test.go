package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// records is a StatusLister in memory: the latest status per name, as the
// store keeps them.
type records struct {
	mu     sync.Mutex
	byName map[string]store.CertStatus
}

func (r *records) PutCertStatus(_ context.Context, s store.CertStatus) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byName == nil {
		r.byName = map[string]store.CertStatus{}
	}
	r.byName[s.Hostname] = s
	return nil
}

func (r *records) get(name string) store.CertStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byName[name]
}

func (r *records) ListCertStatus(context.Context) ([]store.CertStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []store.CertStatus
	for _, s := range r.byName {
		out = append(out, s)
	}
	return out, nil
}

func (r *records) ListCertStatusDue(_ context.Context, ratio float64, now time.Time, limit int) ([]store.CertStatus, error) {
	all, _ := r.ListCertStatus(context.Background())
	var out []store.CertStatus
	for _, s := range all {
		window := time.Duration(float64(s.NotAfter.Sub(s.NotBefore)) * ratio)
		if (s.Status == store.CertActive || s.Status == store.CertFailed) && !s.NotAfter.IsZero() && !now.Before(s.NotAfter.Add(-window)) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b store.CertStatus) int { return a.NotAfter.Compare(b.NotAfter) })
	return out[:min(limit, len(out))], nil
}

// TestLazyCertificatesFromRecords starts a second manager over the storage
// and records of a first one, with room for one certificate in memory:
// names recorded as valid are not issued again, each is served from
// storage by its handshake, an unmanaged name triggers nothing, a name
// whose certificate is missing from storage is obtained, and a certificate
// that is not in memory is renewed from its record.
func TestLazyCertificatesFromRecords(t *testing.T) {
	st := &certmagic.FileStorage{Path: storageDir(t)}
	// Leaves live a minute (plus a minute of backdating); with ratio 0.45
	// they are due about 5s after issuance.
	c, err := ca.Load(context.Background(), st, ca.Options{LeafLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	recs := &records{}
	issuer := &countingIssuer{Issuer: c}
	newManager := func(capacity int) *env {
		m, err := New(Config{Storage: st, Issuers: []certmagic.Issuer{issuer}, Status: recs,
			RenewalWindowRatio: 0.45, RenewCheckInterval: 200 * time.Millisecond, CacheCapacity: capacity})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		e := &env{m: m, ca: c, issuer: issuer, roots: x509.NewCertPool(), addr: serveTLS(t, m)}
		e.roots.AddCert(c.Root())
		return e
	}

	names := []string{"a.localhost", "b.localhost", "c.localhost"}
	first := newManager(0)
	first.m.Sync(context.Background(), names)
	for _, n := range names {
		poll.Until(t, n+" to be recorded active", waitTimeout, poll.True(func() bool { return recs.get(n).Status == store.CertActive }))
	}
	served := map[string]*x509.Certificate{}
	for _, n := range names {
		leaf, err := first.dial(n)
		if err != nil {
			t.Fatal(err)
		}
		served[n] = leaf
	}
	first.m.Stop()
	// A name recorded as valid whose certificate is not in storage.
	recs.PutCertStatus(context.Background(), store.CertStatus{Hostname: "d.localhost", Status: store.CertActive,
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)})

	e := newManager(1)
	e.m.Sync(context.Background(), append(names, "d.localhost"))
	if got := issuer.n.Load(); got != 3 {
		t.Fatalf("issued %d certificates at start, want the 3 of the first manager", got)
	}
	for _, n := range names {
		if e.m.CachedCertificate(n) != nil {
			t.Errorf("%s is in memory before any handshake for it", n)
		}
	}
	// The metrics count a name recorded as valid, not in memory, as ready
	// (its validity unknown here); a name not managed is not ready.
	hosts := func(yield func(project, service, host string) bool) {
		for _, n := range append(names, "x.localhost") {
			if !yield("p", "web", n) {
				return
			}
		}
	}
	e.m.CertificateMetrics(hosts, nil, &Uploaded{}, func(c metrics.Certificate) bool {
		if want := c.Hostname != "x.localhost"; c.Ready != want || c.Project != "p" || c.Service != "web" {
			t.Errorf("metrics for %s: %+v, want ready %v", c.Hostname, c, want)
		}
		return true
	})
	for _, n := range []string{"c.localhost", "a.localhost", "b.localhost", "c.localhost"} {
		leaf, err := e.dial(n)
		if err != nil {
			t.Fatalf("handshake for %s (from storage): %v", n, err)
		}
		if leaf.SerialNumber.Cmp(served[n].SerialNumber) != 0 {
			t.Errorf("%s: served another certificate than the stored one", n)
		}
	}
	if _, err := e.dial("x.localhost"); err == nil {
		t.Error("handshake for an unmanaged name succeeded")
	}
	if s := recs.get("x.localhost"); s.Status != "" {
		t.Errorf("unmanaged name got a status: %+v", s)
	}
	poll.Until(t, "d.localhost to be obtained", waitTimeout, poll.True(func() bool {
		_, err := e.dial("d.localhost")
		return err == nil
	}))

	// b.localhost is not in memory (a.localhost or d.localhost took the one
	// place after it); its record comes due and it is renewed from it.
	poll.Until(t, "b.localhost renewed", waitTimeout, poll.True(func() bool {
		return recs.get("b.localhost").NotAfter.After(served["b.localhost"].NotAfter)
	}))
	leaf, err := e.dial("b.localhost")
	if err != nil {
		t.Fatal(err)
	}
	if leaf.SerialNumber.Cmp(served["b.localhost"].SerialNumber) == 0 {
		t.Error("b.localhost: still served the certificate before renewal")
	}
}

// serveTLS serves TLS handshakes with m's certificates on 127.0.0.1 until
// the test ends, and returns the address.
func serveTLS(t *testing.T, m *Manager) string {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: m.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				if conn.(*tls.Conn).Handshake() == nil {
					conn.Write([]byte("ok"))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// CacheVersion changes when a certificate is obtained into the cache (the
// snapshot writer then looks up every hostname's certificate again).
func TestCacheVersionChangesWithACertificate(t *testing.T) {
	e := newEnv(t, envOptions{})
	before := e.m.CacheVersion()
	e.m.Sync(context.Background(), []string{"v.localhost"})
	// The event comes just after the certificate is in memory.
	poll.Until(t, "v.localhost in memory and CacheVersion changed", waitTimeout, poll.True(func() bool {
		return e.m.CachedCertificate("v.localhost") != nil && e.m.CacheVersion() != before
	}))
}

// listCounter counts the reads of every status record.
type listCounter struct {
	*records
	lists atomic.Int32
}

// ListCertStatus fails once ctx has ended, as the store does.
func (l *listCounter) ListCertStatus(ctx context.Context) ([]store.CertStatus, error) {
	l.lists.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return l.records.ListCertStatus(ctx)
}

// A name handed to UpdateShared before the first Sync (a node's warm-up
// found it served without a stored certificate) is issued and served by
// its first handshake; the first Sync still reads the status record once
// (or it would manage every name at once) and issues nothing for the names
// recorded as valid.
func TestUpdateSharedBeforeTheFirstSync(t *testing.T) {
	st, c := caStorage(t)
	recs := &listCounter{records: &records{}}
	issuer := &countingIssuer{Issuer: c}
	newManager := func() *env {
		m, err := New(Config{Storage: st, Issuers: []certmagic.Issuer{issuer}, Status: recs})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		e := &env{m: m, ca: c, issuer: issuer, roots: x509.NewCertPool(), addr: serveTLS(t, m)}
		e.roots.AddCert(c.Root())
		return e
	}
	names := []string{"a.localhost", "b.localhost"}
	first := newManager()
	first.m.Sync(context.Background(), names)
	for _, n := range names {
		poll.Until(t, n+" to be recorded active", waitTimeout, poll.True(func() bool { return recs.get(n).Status == store.CertActive }))
	}
	first.m.Stop()
	recs.lists.Store(0)

	e := newManager()
	e.m.UpdateShared(context.Background(), []string{"new.localhost"}, nil)
	leaf, err := e.dial("new.localhost")
	if err != nil {
		t.Fatalf("first handshake for a name managed before the first Sync: %v", err)
	}
	if leaf.Subject.CommonName != "new.localhost" && !slices.Contains(leaf.DNSNames, "new.localhost") {
		t.Errorf("served a certificate for %v", leaf.DNSNames)
	}
	if n := recs.lists.Load(); n != 0 {
		t.Errorf("UpdateShared of one name before the first Sync read the status record %d times", n)
	}
	issued := issuer.n.Load()
	e.m.Sync(context.Background(), append(slices.Clone(names), "new.localhost"))
	if n := recs.lists.Load(); n != 1 {
		t.Errorf("the first Sync read the status record %d times, want 1", n)
	}
	for _, n := range names {
		if _, err := e.dial(n); err != nil {
			t.Errorf("handshake for %s (from storage): %v", n, err)
		}
	}
	if _, err := e.dial("new.localhost"); err != nil {
		t.Errorf("handshake for new.localhost after the first Sync: %v", err)
	}
	if got := issuer.n.Load(); got != issued {
		t.Errorf("the first Sync issued %d certificates, want none", got-issued)
	}
}

// A sync whose context is canceled during its read of the status record
// (a node stopped during its first sync) is abandoned: no name is served
// or managed. It used to fall back to managing every name at once, which
// at a million names kept Stop waiting for minutes. The next sync reads
// the record again, as a first sync.
func TestSyncAbandonedWhenCanceled(t *testing.T) {
	st, c := caStorage(t)
	recs := &listCounter{records: &records{}}
	names := []string{"a.localhost", "b.localhost"}
	now := time.Now()
	for _, n := range names {
		recs.PutCertStatus(context.Background(), store.CertStatus{Hostname: n, Status: store.CertActive,
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	}
	m, err := New(Config{Storage: st, Issuers: []certmagic.Issuer{&countingIssuer{Issuer: c}}, Status: recs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m.Sync(ctx, names)
	if got := recs.lists.Load(); got != 1 {
		t.Fatalf("the canceled sync read the status record %d times, want 1", got)
	}
	for _, n := range names {
		if m.Manages(n) {
			t.Errorf("%s is managed after a sync that was canceled", n)
		}
	}

	m.Sync(context.Background(), names)
	if got := recs.lists.Load(); got != 2 {
		t.Fatalf("the next sync read the status record %d times in all, want 2 (it is the first sync)", got)
	}
	for _, n := range names {
		if !m.Manages(n) {
			t.Errorf("%s is not managed after the next sync", n)
		}
	}
}

// cancelAfterList cancels a sync's context once it has read the status
// record: the sync goes on to manage its names with its context ended.
type cancelAfterList struct {
	*records
	cancel context.CancelFunc
}

func (l *cancelAfterList) ListCertStatus(ctx context.Context) ([]store.CertStatus, error) {
	defer l.cancel()
	return l.records.ListCertStatus(ctx)
}

// A sync whose context ends while it manages its names (a node stopped
// during its first sync, with names that have no certificate) stops
// there: it obtains nothing more, the names it did not manage show no
// status, and the next sync manages them. A stopped node used to go on
// managing half a million names, one after the other, before its Close
// returned. The names recorded as valid stay managed by their record.
func TestSyncStopsManagingWhenCanceled(t *testing.T) {
	st, c := caStorage(t)
	recs := &records{}
	now := time.Now()
	recs.PutCertStatus(context.Background(), store.CertStatus{Hostname: "valid.localhost", Status: store.CertActive,
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	ctx, cancel := context.WithCancel(context.Background())
	issuer := &countingIssuer{Issuer: c}
	m, err := New(Config{Storage: st, Issuers: []certmagic.Issuer{issuer}, Status: &cancelAfterList{records: recs, cancel: cancel}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)

	names := []string{"valid.localhost"}
	for i := range 5 {
		names = append(names, fmt.Sprintf("new%d.localhost", i))
	}
	m.Sync(ctx, names)
	for _, n := range names[1:] {
		if s := m.Status(n); s.Status != "" {
			t.Fatalf("%s has status %q after a sync whose context ended before it was managed", n, s.Status)
		}
	}
	if !m.managed.Load().has("valid.localhost") {
		t.Error("valid.localhost, recorded as valid, is not managed after the canceled sync")
	}
	if got := m.managed.Load().len(); got != 1 {
		t.Errorf("the canceled sync left %d subjects managed, want 1", got)
	}

	m.Sync(context.Background(), names)
	for _, n := range names[1:] {
		if s := m.Status(n); s.Status == "" {
			t.Fatalf("%s has no status after the next sync", n)
		}
	}
	if got := m.managed.Load().len(); got != len(names) {
		t.Errorf("the next sync left %d subjects managed, want %d", got, len(names))
	}
	poll.Until(t, "every new name issued", waitTimeout, poll.True(func() bool { return int(issuer.n.Load()) >= len(names)-1 }))
}

// A full cache makes room before a load from storage itself, a name at
// random, so that certmagic's own eviction (a walk of its map for each
// certificate added) is not needed: the names in memory are always the
// ones the manager recorded, at most the capacity.
func TestLoadsMakeRoomInAFullCache(t *testing.T) {
	st := &certmagic.FileStorage{Path: storageDir(t)}
	c, err := ca.Load(context.Background(), st, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := &records{}
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("n%d.localhost", i))
	}
	first, err := New(Config{Storage: st, Issuers: []certmagic.Issuer{c}, Status: recs})
	if err != nil {
		t.Fatal(err)
	}
	first.Sync(context.Background(), names)
	for _, n := range names {
		poll.Until(t, n+" to be recorded active", waitTimeout, poll.True(func() bool { return recs.get(n).Status == store.CertActive }))
	}
	first.Stop()
	// 4: the set's limit (3) is under certmagic's "almost full" (90 %,
	// 3.6); 20: it is over it (19 against 18), as at the default capacity
	// (9,900 against 9,000), where certmagic's GetCertificate loaded a
	// missing name from storage by itself, its keys a read each, and
	// evicted from its cache without the set's knowledge.
	for _, capacity := range []int{4, 20} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) { loadsMakeRoom(t, st, c, recs, names, capacity) })
	}
}

func loadsMakeRoom(t *testing.T, st certmagic.Storage, c *ca.CA, recs *records, names []string, capacity int) {
	m, err := New(Config{Storage: st, Issuers: []certmagic.Issuer{c}, Status: recs, CacheCapacity: capacity})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	m.Sync(context.Background(), names)
	addr := serveTLS(t, m)
	roots := x509.NewCertPool()
	roots.AddCert(c.Root())
	e := &env{m: m, ca: c, roots: roots, addr: addr}
	for round := range 3 {
		for _, n := range names {
			cold, before := m.cachedLeaf(n) == nil, sched.LastForeground()
			if _, err := e.dial(n); err != nil {
				t.Fatalf("round %d: handshake for %s: %v", round, n, err)
			}
			// A load from storage holds background loops off meanwhile.
			if cold && !sched.LastForeground().After(before) {
				t.Errorf("round %d: the handshake for %s loaded it from storage without a sched.Foreground", round, n)
			}
			// A certificate is in certmagic's cache a moment before the
			// set hears of it: the two agree once no load is under way.
			poll.Until(t, "the set to agree with the cache after "+n, waitTimeout, func() error {
				var inMemory []string
				for _, x := range names {
					if m.cachedLeaf(x) != nil { // certmagic's cache itself, not the set
						inMemory = append(inMemory, x)
					}
				}
				m.cached.mu.Lock()
				recorded := slices.Sorted(maps.Keys(m.cached.at))
				loading := m.cached.loading
				m.cached.mu.Unlock()
				slices.Sort(inMemory)
				if len(inMemory) > capacity || !slices.Contains(inMemory, n) {
					return poll.Stop(fmt.Errorf("in memory %v (capacity %d, want %s among them)", inMemory, capacity, n))
				}
				if loading != 0 || !slices.Equal(inMemory, recorded) {
					return fmt.Errorf("in memory %v, the manager recorded %v, %d loads under way", inMemory, recorded, loading)
				}
				return nil
			})
		}
		// A name started from its record has a status in memory only
		// while its certificate is in the cache: each name loaded once
		// used to keep one for the node's life.
		if n := m.status.size(); n > capacity {
			t.Errorf("round %d: %d statuses in memory for a cache of %d", round, n, capacity)
		}
	}
}

// The names recorded as valid are warmed when they all fit in the cache's
// warm room, and none is when they do not: the handshakes then choose what
// the cache keeps.
func TestWarmOnlyWhenAllFit(t *testing.T) {
	added := []string{"a.test", "b.test", "c.test", "d.test"}
	recorded := func(n string) bool { return n != "b.test" }
	var y sched.Yielder
	if got := warmList(added, recorded, 3, 3, &y); !slices.Equal(got, []string{"a.test", "c.test", "d.test"}) {
		t.Errorf("room for all three: %v", got)
	}
	if got := warmList(added, recorded, 3, 2, &y); got != nil {
		t.Errorf("room for two of three: %v, want none", got)
	}
}

// The set of cached names picks its victims among what it holds, only
// once it reaches its limit, and keeps its index right through removals.
func TestCachedSet(t *testing.T) {
	s := newCachedSet(10) // limit 9
	for i := range 9 {
		s.add(fmt.Sprint(i))
	}
	s.add("3") // again: nothing new
	if len(s.names) != 9 {
		t.Fatalf("len %d, want 9", len(s.names))
	}
	s.remove("0")
	s.remove("none")
	if v := s.victims(); len(v) != 0 {
		t.Fatalf("victims %v below the limit", v)
	}
	s.loaded()
	s.add("9")
	v := s.victims()
	if len(v) != 1 || v[0] == "0" || len(s.names) != 8 {
		t.Fatalf("victims %v (len after %d), want one name it holds, len 8", v, len(s.names))
	}
	s.loaded()

	// Loads under way hold their place: with 7 names and a limit of 9,
	// the third concurrent load makes room though no load has ended.
	s.remove(s.names[0])
	if len(s.names) != 7 {
		t.Fatalf("len %d, want 7", len(s.names))
	}
	for i, want := range []int{0, 0, 1} {
		if v := s.victims(); len(v) != want {
			t.Fatalf("load %d: victims %v, want %d with %d under way", i, v, want, i)
		}
	}
	for range 3 {
		s.loaded()
	}
	if s.loading != 0 || len(s.names) != 6 {
		t.Fatalf("after the loads: %d under way, %d names; want 0 and 6", s.loading, len(s.names))
	}
	for name, i := range s.at {
		if s.names[i] != name {
			t.Fatalf("index of %s is %d, which holds %s", name, i, s.names[i])
		}
	}
	if newCachedSet(0).victims() != nil {
		t.Error("an unbounded set picked victims")
	}

	// mayHold: a name held, or the wildcard of its parent; nothing else,
	// and no allocation.
	s.add("a.example.test")
	s.add("*.w.example.test")
	for name, want := range map[string]bool{"a.example.test": true, "x.w.example.test": true, "w.example.test": false,
		"b.example.test": false, "y.x.w.example.test": false, "localhost": false, "": false} {
		if got := s.mayHold(name); got != want {
			t.Errorf("mayHold(%q) = %v, want %v", name, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { s.mayHold("x.w.example.test"); s.mayHold("b.example.test") }); n != 0 {
		t.Errorf("mayHold allocates %.0f times", n)
	}
	if newCachedSet(1).limit != 1 {
		t.Error("a cache of one certificate: limit not 1")
	}
}

// BenchmarkCachedCertificateMiss: the snapshot writer's question for a
// served name whose certificate is not in memory, most of a large node's
// names (BENCHMARKS.md, "A read's kept strings packed").
func BenchmarkCachedCertificateMiss(b *testing.B) {
	st := &certmagic.FileStorage{Path: b.TempDir()}
	recs := &records{}
	now := time.Now()
	names := make([]string, 10_000)
	for i := range names {
		names[i] = fmt.Sprintf("s%05d.example.test", i)
		recs.PutCertStatus(context.Background(), store.CertStatus{Hostname: names[i], Status: store.CertActive,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour)})
	}
	m, err := New(Config{Storage: st, Status: recs, CacheCapacity: 1}) // recorded as valid, none warmed
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Stop)
	m.Sync(context.Background(), names)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if m.CachedCertificate(names[i%len(names)]) != nil {
			b.Fatal("a certificate in memory")
		}
		i++
	}
}
