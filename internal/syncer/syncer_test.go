package syncer

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/store"
)

// fakeStore answers every read with nothing, or fails them all.
type fakeStore struct {
	fail         error
	rev          int64
	changesAsked int            // ChangesSince calls
	listed       int            // ListServices calls
	domains      []store.Domain // ListDomains' answer
	listTakes    time.Duration  // how long ListServices sleeps
	listGarbage  int            // bytes ListServices allocates and drops
}

// sink keeps the compiler from leaving out an allocation made to be measured.
var sink []byte

func (s *fakeStore) Revision(context.Context) (int64, error) { return s.rev, s.fail }
func (s *fakeStore) ListServices(context.Context, string) ([]store.Service, error) {
	s.listed++
	time.Sleep(s.listTakes)
	sink = make([]byte, s.listGarbage)
	sink = nil
	return nil, s.fail
}
func (s *fakeStore) ListDomains(context.Context, string) ([]store.Domain, error) {
	return s.domains, s.fail
}
func (s *fakeStore) ListProjects(context.Context) ([]store.Project, error)     { return nil, s.fail }
func (s *fakeStore) ListTokens(context.Context, string) ([]store.Token, error) { return nil, s.fail }
func (s *fakeStore) ListUploadedCerts(context.Context, string, bool) ([]store.UploadedCert, error) {
	return nil, s.fail
}
func (s *fakeStore) ChangesSince(_ context.Context, rev int64) (store.Changes, error) {
	s.changesAsked++
	return store.Changes{Revision: s.rev}, s.fail
}

// parts records what the loop hands to each part.
type parts struct {
	setRoutes, updates, dues int
	hosts                    [][]string
	added                    []string // UpdateShared's adds, in order
	notes                    []error
	certsTake, routesTake    time.Duration // how long SyncShared and SetRouteSeq sleep
	onCerts                  func()        // if set, called by SyncShared
}

func (p *parts) SetRouteSeq(edge.RouteSeq) error {
	p.setRoutes++
	time.Sleep(p.routesTake)
	return nil
}
func (p *parts) UpdateRoutes([]edge.Route, []string) error { p.updates++; return nil }
func (p *parts) SyncShared(_ context.Context, hosts, _ []string) {
	p.hosts = append(p.hosts, hosts)
	time.Sleep(p.certsTake)
	if p.onCerts != nil {
		p.onCerts()
	}
}
func (p *parts) UpdateShared(_ context.Context, add, _ []string)                 { p.added = append(p.added, add...) }
func (p *parts) SetTokens([]store.Project, []store.Token)                        {}
func (p *parts) SeedServices(store.ServiceFinder)                                {}
func (p *parts) SeedSnapshot([]store.Service, map[string]store.Credential, bool) {}
func (p *parts) Set(map[string]bool)                                             {}
func (p *parts) Note(err error)                                                  { p.notes = append(p.notes, err) }
func (p *parts) Due()                                                            { p.dues++ }
func (p *parts) Concerns([]store.UploadedCert) map[string]bool                   { return nil }

func (p *parts) Apply(_ map[string]string, hosts []string, _ []store.UploadedCert, _ *slog.Logger) []string {
	return hosts
}

func newLoop(st *fakeStore, p *parts, prepare func(context.Context) error) *Loop {
	return New(Config{Store: st, Edge: p, Certs: p, Reads: p, Suspended: p, Uploaded: p, Health: p, Snapshots: p,
		Prepare: prepare, Wildcard: func(store.Domain) bool { return false }, ExtraHost: "ech.example.com",
		Interval: 1, Logger: slog.New(slog.DiscardHandler)})
}

// A full sync applies the read, managing the extra host too; a sync that
// finds what was applied last leaves the edge, the certificate manager and
// the snapshot alone; a failed read keeps what was applied and tells the
// store's health.
func TestSync(t *testing.T) {
	ctx := t.Context()
	st, p := &fakeStore{rev: 7}, &parts{}
	l := newLoop(st, p, func(context.Context) error { return nil })
	if ok, err := l.SyncChanges(ctx); ok || err != nil {
		t.Fatalf("SyncChanges before the first sync = %v, %v; want a full sync asked for", ok, err)
	}
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !l.Synced() || l.Revision() != 7 || l.Last() == nil || p.setRoutes != 1 || p.dues != 1 {
		t.Fatalf("after the first sync: synced %v, revision %d, last %v, SetRoutes %d, Due %d", l.Synced(), l.Revision(), l.Last(), p.setRoutes, p.dues)
	}
	if len(p.hosts) != 1 || !slices.Equal(p.hosts[0], []string{"ech.example.com"}) {
		t.Errorf("managed hosts %v, want the extra host", p.hosts)
	}
	st.rev = 8
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if p.setRoutes != 1 || len(p.hosts) != 1 || p.dues != 1 || l.Revision() != 8 {
		t.Errorf("an unchanged read: SetRoutes %d, SyncShared %d, Due %d, revision %d; want nothing applied again, revision 8",
			p.setRoutes, len(p.hosts), p.dues, l.Revision())
	}
	if ok, err := l.SyncChanges(ctx); !ok || err != nil || p.updates != 0 {
		t.Errorf("SyncChanges with nothing changed = %v, %v (UpdateRoutes %d); want applied, no update", ok, err, p.updates)
	}
	down := errors.New("store down")
	st.fail = down
	if err := l.Sync(ctx); !errors.Is(err, down) {
		t.Fatalf("Sync with the store down = %v", err)
	}
	if p.setRoutes != 1 || !errors.Is(p.notes[len(p.notes)-1], down) || l.Revision() != 8 {
		t.Errorf("a failed read: SetRoutes %d, last note %v, revision %d; want the routes kept and the failure noted", p.setRoutes, p.notes[len(p.notes)-1], l.Revision())
	}
}

// A sync whose context ends during the certificate manager's sync (the
// node is stopping) returns there: it builds no route table (seconds at a
// million names, which a stopping node's Close waited for) and applies
// nothing; the next sync applies the read.
func TestSyncStopsAfterCertificatesWhenCanceled(t *testing.T) {
	st := &fakeStore{rev: 3}
	ctx, cancel := context.WithCancel(t.Context())
	p := &parts{onCerts: cancel}
	l := newLoop(st, p, func(context.Context) error { return nil })
	if err := l.Sync(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sync canceled during the certificates' sync = %v, want context.Canceled", err)
	}
	if p.setRoutes != 0 || l.Synced() || l.Revision() == 3 {
		t.Fatalf("after the canceled sync: SetRoutes %d, synced %v, revision %d; want nothing applied", p.setRoutes, l.Synced(), l.Revision())
	}
	p.onCerts = nil
	if err := l.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if p.setRoutes != 1 || !l.Synced() || l.Revision() != 3 {
		t.Errorf("after the next sync: SetRoutes %d, synced %v, revision %d; want the read applied", p.setRoutes, l.Synced(), l.Revision())
	}
}

// A full sync that applies times its phases (the read, the certificate
// manager's sync, the route table) and counts what each allocated, and
// the first closes StoreSynced; one
// that finds what was applied keeps the last's, and their log value names
// each.
func TestSyncPhases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const garbage = 64 << 20
		st := &fakeStore{rev: 1, listTakes: 3 * time.Second, listGarbage: garbage}
		p := &parts{certsTake: 2 * time.Second, routesTake: time.Second}
		l := newLoop(st, p, func(context.Context) error { return nil })
		if _, ok := l.LastPhases(); ok {
			t.Fatal("phases before any sync")
		}
		released := 0
		l.cfg.Release = func(Burst) {
			released++
			select {
			case <-l.StoreSynced():
				if released == 1 {
					t.Error("StoreSynced closed before the first sync's Release")
				}
			default:
			}
		}
		if err := l.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		<-l.StoreSynced() // closed by the first sync applied, once released
		if released != 1 {
			t.Errorf("Release ran %d times in the first sync; want once", released)
		}
		want := Phases{Read: 3 * time.Second, Certificates: 2 * time.Second, Routes: time.Second}
		got, ok := l.LastPhases()
		a := got.Allocated
		got.at, got.allocAt, got.Allocated = time.Time{}, 0, PhaseBytes{}
		if !ok || got != want {
			t.Errorf("phases %+v, %v; want %+v", got, ok, want)
		}
		// The read's 64 MiB, and little else: the other phases of a sync
		// of nothing allocate kilobytes (a collection meanwhile changes
		// nothing: the count is of what was allocated, not what is live).
		if a.Read < garbage || a.Read > garbage+8<<20 || a.Compute+a.Certificates+a.Routes+a.Record > 8<<20 {
			t.Errorf("allocated %+v; want the read's %d bytes in Read, and little elsewhere", a, garbage)
		}
		st.rev, st.listTakes = 2, time.Minute // read, found unchanged: not applied
		if err := l.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.LastPhases(); got.Read != 3*time.Second {
			t.Errorf("after a sync that applied nothing, read %v; want the last applied's, 3s", got.Read)
		}
		got.Allocated = PhaseBytes{Read: garbage, Compute: 1<<20 - 1}
		var b strings.Builder
		slog.New(slog.NewTextHandler(&b, nil)).Info("x", "phases", got)
		if w := "phases.read=3s phases.compute=0s phases.certificates=2s phases.routes=1s phases.record=0s " +
			"phases.allocated.read=64MiB phases.allocated.compute=1MiB phases.allocated.certificates=0MiB"; !strings.Contains(b.String(), w) {
			t.Errorf("logged %q, want %q in it", b.String(), w)
		}
	})
}

// A resync reads the services only when the store's revision moved since
// the state applied (a change whose notice was missed), a verified
// domain's wildcard decision changed (delegations move no revision), or
// FullInterval passed since the last read (a write behind Spine's back):
// every Interval a full read of a million services was the node's largest
// allocation. Release runs after each sync.
func TestResyncReadsServicesWhenSomethingMoved(t *testing.T) {
	ctx := t.Context()
	st, p := &fakeStore{rev: 7}, &parts{}
	l := newLoop(st, p, func(context.Context) error { return nil })
	wildcard := false
	l.cfg.Wildcard = func(store.Domain) bool { return wildcard }
	l.cfg.FullInterval = time.Hour
	var told []Burst
	l.cfg.Release = func(b Burst) { told = append(told, b) }
	st.domains = []store.Domain{{Name: "example.com", Status: store.DomainVerified}}
	if err := l.Sync(ctx); err != nil || st.listed != 1 {
		t.Fatalf("the first sync: %v, ListServices %d", err, st.listed)
	}
	for range 3 {
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st.listed != 1 || p.dues != 1 || l.Revision() != 7 {
		t.Errorf("three resyncs at the same revision: ListServices %d, Due %d, revision %d; want no read, nothing due", st.listed, p.dues, l.Revision())
	}
	st.rev = 9 // a change whose notice this node missed
	if err := l.Sync(ctx); err != nil || st.listed != 2 || l.Revision() != 9 {
		t.Errorf("a resync after the revision moved: %v, ListServices %d, revision %d; want the services read", err, st.listed, l.Revision())
	}
	if ok, err := l.SyncChanges(ctx); !ok || err != nil {
		t.Fatalf("SyncChanges = %v, %v", ok, err)
	}
	st.rev = 10 // a change applied as a delta: the resync after it has nothing to read
	if ok, err := l.SyncChanges(ctx); !ok || err != nil {
		t.Fatalf("SyncChanges = %v, %v", ok, err)
	}
	if err := l.Sync(ctx); err != nil || st.listed != 2 || l.Revision() != 10 {
		t.Errorf("a resync after a delta: %v, ListServices %d, revision %d; want no read", err, st.listed, l.Revision())
	}
	wildcard = true // another node saw example.com delegated
	if err := l.Sync(ctx); err != nil || st.listed != 3 || len(p.hosts) != 2 {
		t.Errorf("a resync after a wildcard decision changed: %v, ListServices %d, SyncShared %d; want the services read and applied", err, st.listed, len(p.hosts))
	}
	if err := l.Sync(ctx); err != nil || st.listed != 3 {
		t.Errorf("the resync after it: %v, ListServices %d; want no read", err, st.listed)
	}
	l.readAt = l.readAt.Add(-l.cfg.FullInterval) // FullInterval later
	if err := l.Sync(ctx); err != nil || st.listed != 4 {
		t.Errorf("a resync FullInterval after the last read: %v, ListServices %d; want the services read", err, st.listed)
	}
	// Reads at syncs 1, 5, 7 and 9: each told Read, the two syncs after
	// each AfterRead (a read's count starts again at the next read).
	want := []Burst{Read, AfterRead, AfterRead, NoBurst, Read, AfterRead, Read, AfterRead, Read}
	if !slices.Equal(told, want) {
		t.Errorf("Release told %v after 9 syncs; want %v (each read Read, the two syncs after it AfterRead)", told, want)
	}
	down := errors.New("store down")
	st.fail = down
	if err := l.Sync(ctx); !errors.Is(err, down) || !errors.Is(p.notes[len(p.notes)-1], down) {
		t.Errorf("a resync with the store down = %v, last note %v; want the failure noted", err, p.notes[len(p.notes)-1])
	}
}

// A sync waits for the start-up work: until Prepare succeeds, nothing is
// read or applied.
func TestSyncPreparesFirst(t *testing.T) {
	p := &parts{}
	notYet := errors.New("store away")
	l := newLoop(&fakeStore{}, p, func(context.Context) error { return notYet })
	if err := l.Sync(t.Context()); !errors.Is(err, notYet) || l.Synced() || p.setRoutes != 0 {
		t.Errorf("Sync before Prepare succeeds = %v (synced %v, SetRoutes %d); want its error and nothing applied", err, l.Synced(), p.setRoutes)
	}
}

// heldStore is a fakeStore whose ListServices, once hold is set, says so
// on reading and waits for hold to close.
type heldStore struct {
	fakeStore
	reading chan struct{}
	hold    chan struct{}
	held    bool // the read held once: later reads go through
}

func (s *heldStore) ListServices(ctx context.Context, p string) ([]store.Service, error) {
	if s.hold != nil && !s.held {
		s.held = true
		close(s.reading)
		<-s.hold
	}
	return s.fakeStore.ListServices(ctx, p)
}

// A change is applied while a full sync reads (at a million hostnames the
// read takes tens of seconds, every resync interval): the delta does not
// wait for it, and the read, older than the delta, is then dropped
// instead of taking the node back to its revision.
func TestChangesDuringAFullSync(t *testing.T) {
	ctx := t.Context()
	st, p := &heldStore{fakeStore: fakeStore{rev: 1}}, &parts{}
	l := New(Config{Store: st, Edge: p, Certs: p, Reads: p, Suspended: p, Uploaded: p, Health: p, Snapshots: p,
		Prepare: func(context.Context) error { return nil }, Wildcard: func(store.Domain) bool { return false },
		Interval: 1, Logger: slog.New(slog.DiscardHandler)})
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	st.reading, st.hold = make(chan struct{}), make(chan struct{})
	full := make(chan error, 1)
	go func() { full <- l.Sync(ctx) }()
	<-st.reading // the full sync read revision 1 and reads the services

	st.rev = 2 // a change, then its notice
	if ok, err := l.SyncChanges(ctx); !ok || err != nil || l.Revision() != 2 {
		t.Fatalf("SyncChanges during a full sync's read = %v, %v, revision %d; want the change applied, revision 2", ok, err, l.Revision())
	}
	close(st.hold)
	if err := <-full; err != nil {
		t.Fatal(err)
	}
	if l.Revision() != 2 || p.setRoutes != 1 {
		t.Errorf("after the full sync of revision 1: revision %d, SetRoutes %d; want revision 2 kept, nothing applied again", l.Revision(), p.setRoutes)
	}
	if err := l.Sync(ctx); err != nil || l.Revision() != 2 {
		t.Errorf("the next full sync = %v, revision %d; want revision 2", err, l.Revision())
	}
}

// Run takes change notices while the Interval's full sync reads: the
// notice's delta is applied before that read ends.
func TestRunTakesNoticesDuringAFullSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		st, p := &heldStore{fakeStore: fakeStore{rev: 1}}, &parts{}
		l := New(Config{Store: st, Edge: p, Certs: p, Reads: p, Suspended: p, Uploaded: p, Health: p, Snapshots: p,
			Prepare: func(context.Context) error { return nil }, Wildcard: func(store.Domain) bool { return false },
			Interval: 30 * time.Second, Logger: slog.New(slog.DiscardHandler)})
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		st.reading, st.hold = make(chan struct{}), make(chan struct{})
		changes := make(chan struct{}, 1)
		done := make(chan struct{})
		go func() { l.Run(ctx, changes); close(done) }()
		time.Sleep(30 * time.Second) // the tick: its full sync reads, held
		<-st.reading

		st.rev = 2
		changes <- struct{}{}
		synctest.Wait()
		if l.Revision() != 2 {
			t.Errorf("revision %d while the full sync reads; want the notice's change (2) applied", l.Revision())
		}
		close(st.hold)
		synctest.Wait()
		if l.Revision() != 2 || p.setRoutes != 1 {
			t.Errorf("after the full sync of revision 1: revision %d, SetRoutes %d; want revision 2, nothing applied again", l.Revision(), p.setRoutes)
		}
		cancel()
		<-done
	})
}

// scanStore is a fakeStore with services that it also scans
// (ServiceScanner).
type scanStore struct {
	*fakeStore
	svcs     []store.Service
	scanned  int
	scanFail error
	during   func() // run as a scan begins: a change committed before its snapshot
}

func (s *scanStore) ListServices(context.Context, string) ([]store.Service, error) {
	s.listed++
	return slices.Clone(s.svcs), s.fail
}

func (s *scanStore) ScanServices(_ context.Context, fn func(*store.Service) error) error {
	s.scanned++
	if s.scanFail != nil {
		return s.scanFail
	}
	if s.during != nil {
		s.during()
	}
	for _, v := range s.svcs {
		if err := fn(&v); err != nil {
			return err
		}
	}
	return nil
}

// FullInterval after the last read, a store that scans is checked one
// service at a time: the services are read (and applied) only when the
// store holds something else than what was applied (a write behind
// Spine's back), never when it holds the same; a failed scan is noted and
// reads nothing.
func TestPeriodicCheckScansBeforeReading(t *testing.T) {
	ctx := t.Context()
	at := time.Unix(1, 0).UTC()
	st := &scanStore{fakeStore: &fakeStore{rev: 7, domains: []store.Domain{{Name: "example.com", ProjectID: "p", Status: store.DomainVerified}}},
		svcs: []store.Service{{ID: "s1", ProjectID: "p", Name: "web", Domain: "example.com", Hostnames: []string{"www.example.com"},
			Upstreams: []string{"http://127.0.0.1:9000"}, CreatedAt: at, UpdatedAt: at}}}
	p := &parts{}
	bursts := 0
	l := New(Config{Store: st, Edge: p, Certs: p, Reads: p, Suspended: p, Uploaded: p, Health: p, Snapshots: p,
		Prepare: func(context.Context) error { return nil }, Wildcard: func(store.Domain) bool { return false },
		Interval: 1, FullInterval: time.Hour, Logger: slog.New(slog.DiscardHandler),
		Release: func(b Burst) {
			if b == Read {
				bursts++
			}
		}})
	if err := l.Sync(ctx); err != nil || st.listed != 1 || st.scanned != 0 || p.setRoutes != 1 {
		t.Fatalf("the first sync: %v, ListServices %d, scans %d, SetRoutes %d; want a read, no scan", err, st.listed, st.scanned, p.setRoutes)
	}
	l.readAt = l.readAt.Add(-time.Hour)
	bursts = 0
	if err := l.Sync(ctx); err != nil || st.scanned != 1 || st.listed != 1 || p.setRoutes != 1 || bursts != 1 {
		t.Errorf("FullInterval later, the store unchanged: %v, scans %d, ListServices %d, SetRoutes %d, Release told a burst %d; want a scan, no read, its garbage given back",
			err, st.scanned, st.listed, p.setRoutes, bursts)
	}
	if err := l.Sync(ctx); err != nil || st.scanned != 1 {
		t.Errorf("the sync after the check: %v, scans %d; want none (FullInterval not passed again)", err, st.scanned)
	}
	st.svcs[0].Upstreams = []string{"http://127.0.0.1:9001"} // written behind Spine's back: no revision moved
	l.readAt = l.readAt.Add(-time.Hour)
	if err := l.Sync(ctx); err != nil || st.scanned != 2 || st.listed != 2 || p.setRoutes != 2 {
		t.Errorf("FullInterval later, a service changed: %v, scans %d, ListServices %d, SetRoutes %d; want a scan, then the read applied", err, st.scanned, st.listed, p.setRoutes)
	}
	if made, differed := l.Checks(); made != 2 || differed != 1 {
		t.Errorf("Checks = %d, %d; want 2 made, 1 that differed", made, differed)
	}
	// A service created through Spine while a check scans: the scan sees
	// it before its delta is applied; the revision moved, so it is no
	// write behind Spine's back, and the check reads nothing.
	st.during = func() {
		st.svcs = append(st.svcs, store.Service{ID: "s2", ProjectID: "p", Name: "api", Domain: "example.com",
			Hostnames: []string{"api.example.com"}, Upstreams: []string{"http://127.0.0.1:9002"}, CreatedAt: at, UpdatedAt: at})
		st.rev++
	}
	l.readAt = l.readAt.Add(-time.Hour)
	if err := l.Sync(ctx); err != nil || st.scanned != 3 || st.listed != 2 {
		t.Errorf("a check with a change during its scan: %v, scans %d, ListServices %d; want a scan, no read", err, st.scanned, st.listed)
	}
	if made, differed := l.Checks(); made != 3 || differed != 1 {
		t.Errorf("Checks = %d, %d; want 3 made, still 1 that differed", made, differed)
	}
	st.during = nil
	if err := l.Sync(ctx); err != nil || st.listed != 3 || p.setRoutes != 3 {
		t.Errorf("the sync after it: %v, ListServices %d, SetRoutes %d; want the moved revision read and applied", err, st.listed, p.setRoutes)
	}
	down := errors.New("store down")
	st.scanFail = down
	l.readAt = l.readAt.Add(-time.Hour)
	if err := l.Sync(ctx); !errors.Is(err, down) || !errors.Is(p.notes[len(p.notes)-1], down) || st.listed != 3 || p.setRoutes != 3 {
		t.Errorf("a failed scan = %v, last note %v, ListServices %d, SetRoutes %d; want the failure noted, nothing read or applied", err, p.notes[len(p.notes)-1], st.listed, p.setRoutes)
	}
}

var _ ServiceScanner = (*store.DB)(nil)
