package syncer

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/serving"
	"github.com/spine-platform/spine/internal/store"
)

// Store is what a sync reads; *store.DB satisfies it.
type Store interface {
	Revision(ctx context.Context) (int64, error)
	ListServices(ctx context.Context, projectID string) ([]store.Service, error)
	ListDomains(ctx context.Context, projectID string) ([]store.Domain, error)
	ListProjects(ctx context.Context) ([]store.Project, error)
	ListTokens(ctx context.Context, projectID string) ([]store.Token, error)
	ListUploadedCerts(ctx context.Context, projectID string, withKeys bool) ([]store.UploadedCert, error)
	ChangesSince(ctx context.Context, rev int64) (store.Changes, error)
}

// ServiceScanner is a Store that reads every service one at a time
// (*store.DB satisfies it): a sync then checks the store against what it
// applied without holding every service (serving.ScanSum).
type ServiceScanner interface {
	ScanServices(ctx context.Context, fn func(*store.Service) error) error
}

// Edge takes the routes; *edge.Server satisfies it.
type Edge interface {
	SetRouteSeq(routes edge.RouteSeq) error
	UpdateRoutes(set []edge.Route, remove []string) error
}

// Certs takes the hostnames to manage; *certs.Manager satisfies it.
type Certs interface {
	SyncShared(ctx context.Context, hostnames, wildcardDomains []string)
	UpdateShared(ctx context.Context, add, remove []string)
}

// StaleReads answers the API's reads while the store is away;
// *api.StaleReads satisfies it.
type StaleReads interface {
	SetTokens(projects []store.Project, tokens []store.Token)
	SeedServices(find store.ServiceFinder)
	SeedSnapshot(svcs []store.Service, tokens map[string]store.Credential, complete bool)
}

// Suspended takes the hostnames of suspended projects; *certs.Suspended
// satisfies it.
type Suspended interface {
	Set(hosts map[string]bool)
}

// Uploaded takes the uploaded certificates and returns the hostnames left
// to manage; *certs.Uploaded satisfies it.
type Uploaded interface {
	// Concerns returns the hostnames whose owner Apply reads.
	Concerns(ups []store.UploadedCert) map[string]bool
	Apply(owner map[string]string, hosts []string, ups []store.UploadedCert, log *slog.Logger) []string
}

// Config is what a Loop drives. Every field is required unless its comment
// says otherwise.
type Config struct {
	Store     Store
	Edge      Edge
	Certs     Certs
	Reads     StaleReads
	Suspended Suspended
	Uploaded  Uploaded
	// Health is told whether each read of the store succeeded.
	Health interface{ Note(err error) }
	// Snapshots is asked for a new fail-static snapshot after a change.
	Snapshots interface{ Due() }
	// Prepare runs before each full sync: the start-up work that needs the
	// store, done once (a node started from its snapshot retries it).
	Prepare func(ctx context.Context) error
	// RefreshDelegations, if set, reads the delegations other nodes have
	// seen, before Wildcard is asked. Default: none.
	RefreshDelegations func(ctx context.Context) error
	// Wildcard reports whether a verified domain's names share a wildcard
	// certificate (serving.Compute).
	Wildcard func(d store.Domain) bool
	// ExtraHost, if set, is managed besides the services' hostnames (ECH's
	// public name, for its own certificate). Default: none.
	ExtraHost string
	// Interval is how often Run syncs even without a change notice: it
	// reads the store's revision, and every service only if the revision
	// moved since what was applied (a missed notice). Default
	// DefaultInterval.
	Interval time.Duration
	// FullInterval is how often a sync reads every service even when the
	// revision has not moved: it repairs a write made behind Spine's back
	// (an operator's UPDATE moves no revision). Default FullEvery
	// Intervals.
	FullInterval time.Duration
	// Release, if set, runs after each Sync (each Interval, at least),
	// told Read after one that read every service and AfterRead after
	// the two after it (burstSyncs), to have a burst's memory given back
	// to the system (the node collects after a read, leaves the syncs
	// after it to the edge's releaser, and otherwise collects only a heap
	// that holds a burst; the edge returns the pages at a moment without
	// handshakes: package memory): the read of every service, and at the
	// first sync the certificate manager's and the snapshot writer's
	// start beside it, is the node's largest allocation, and the runtime
	// would keep that peak resident. Default: none.
	Release func(Burst)
	Logger  *slog.Logger
	// Warm, if set, lets the node serve before its first sync when the
	// store is large (WarmUp, warm.go). Default nil: it never does.
	Warm *WarmConfig
}

// Record is what a successful sync applied: the services it serves, the
// suspended projects and their fingerprint.
type Record struct {
	// Applied are the services by shard, with a version per shard that a
	// delta changes only for the shards it touches: the snapshot writer
	// lists and digests those alone (fleet.ServiceShards).
	// Applied.Hostnames is what /metrics reads at each scrape, without a
	// copy of the services.
	Applied   *serving.AppliedServices
	Suspended []string // IDs of the suspended projects, sorted
	Sum       [sha256.Size]byte
}

// Loop keeps the edge, the certificate manager and the fail-static
// snapshot in step with the store. Its methods are safe for concurrent
// use; syncs run one at a time.
type Loop struct {
	cfg       Config
	log       *slog.Logger
	revision  atomic.Int64           // the store's revision of the last sync applied
	synced    atomic.Bool            // the first snapshot has been applied
	last      atomic.Pointer[Record] // the last successful sync
	full      sync.Mutex             // serialises full syncs (Sync), their reads included; taken before mu
	mu        sync.Mutex             // serialises what syncs apply: two interleaved could apply the older read last
	deltas    *serving.Applied       // what the last sync applied; under mu
	applied   [sha256.Size]byte      // fingerprint of what the last sync applied; under mu
	readAt    time.Time              // when a sync last read every service (zero: none yet, or a snapshot's); under full
	wild      []string               // the wildcard domains of that read; under full
	warming   atomic.Bool            // WarmUp started a warm-up; Run applies its first sync
	firstSync atomic.Int64           // FirstSync, in nanoseconds
	phases    atomic.Pointer[Phases] // the last full sync that applied, by phase
	stored    chan struct{}          // StoreSynced: closed by Sync once a full sync of the store applied
	storedOne sync.Once
	checks    [2]atomic.Uint64 // Checks: the store checks made, and those that differed
	// early are the hostnames the warm-up handed the certificate manager
	// (manageEarly), earlyN how many it tried to; at most warmManageMax.
	early  sync.Map // hostname -> struct{}
	earlyN atomic.Int64
	// projects are the projects the warm-up read (warmProjects).
	projects warmProjects
	bursts   atomic.Int32 // syncs left that tell Release of a burst (burst)
}

// New returns a Loop over cfg; it reads nothing yet.
func New(cfg Config) *Loop {
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.FullInterval == 0 {
		cfg.FullInterval = FullEvery * cfg.Interval
	}
	return &Loop{cfg: cfg, log: cfg.Logger, deltas: serving.NewApplied(cfg.Logger), stored: make(chan struct{})}
}

// StoreSynced is closed once a full sync of the store has been applied
// and Sync has returned (Release included): a warm-up's end, on a node
// that had one; never, while a node started
// from its snapshot has not reached the store. Work that can wait (the
// events' maintenance) waits for it, so as not to take the processor from
// a warm-up's handshakes.
func (l *Loop) StoreSynced() <-chan struct{} { return l.stored }

// Synced reports whether a first snapshot (of the store, or the one the
// node started from) has been applied.
func (l *Loop) Synced() bool { return l.synced.Load() }

// Revision is the store's revision of the last sync applied.
func (l *Loop) Revision() int64 { return l.revision.Load() }

// Checks returns how many periodic checks of the store against what was
// applied (serving.ScanSum) this loop made, and how many found it
// holding something else (a full read followed).
func (l *Loop) Checks() (made, differed uint64) { return l.checks[0].Load(), l.checks[1].Load() }

// Last is what the last successful sync applied, nil before the first.
func (l *Loop) Last() *Record { return l.last.Load() }

// Run applies a fresh snapshot after every change notice, and at least
// every Config.Interval, until ctx ends. After WarmUp, it applies the
// first sync first.
//
// The Interval's full sync runs beside the notices, one at a time (a tick
// while one runs is skipped): at a million hostnames its read takes tens
// of seconds, and a notice taken only after it waited as long (a service
// created took 15-19 s to be served in bench/scale at 1M on PostgreSQL).
func (l *Loop) Run(ctx context.Context, changes <-chan struct{}) {
	if l.warming.Load() && !l.warmUp(ctx, changes) {
		return
	}
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	var full chan struct{} // closed when the tick's full sync ends; nil when none runs
	defer func() {
		if full != nil {
			<-full // Resync honours ctx
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			l.resyncChanges(ctx)
		case <-tick.C:
			if full != nil {
				continue // the last one is still reading
			}
			full = make(chan struct{})
			go func(done chan struct{}) {
				defer close(done)
				l.Resync(ctx)
			}(full)
		case <-full:
			full = nil
		}
	}
}

// resyncChanges applies what changed since the last sync (SyncChanges),
// else, when that takes a full read, a fresh snapshot (Resync).
func (l *Loop) resyncChanges(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if ok, _ := l.SyncChanges(sctx); !ok {
		l.Resync(ctx)
	}
}

// Resync applies a fresh snapshot now. If the store fails, the edge keeps
// the last snapshot it had (fail static).
func (l *Loop) Resync(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.Sync(sctx); err != nil && ctx.Err() == nil {
		l.log.Warn("store snapshot failed; serving the last known routes", "err", err)
	}
}

// Sync reads every service from the store and hands the routes to the edge
// and the hostnames to the certificate manager; within FullInterval of the
// last such read, only if the store's revision or a wildcard decision
// moved since what was applied.
//
// The read and its computation hold no lock that a change notice's delta
// (SyncChanges) needs: at a million hostnames they take tens of seconds
// (PostgreSQL, one processor), every Interval, and a service created or
// deleted meanwhile waited for them (10.8 s and 23.0 s in bench/scale).
// A delta applied meanwhile is newer than the read: the read is then
// dropped instead of applied over it, and the next resync reads again.
func (l *Loop) Sync(ctx context.Context) error {
	read, err := l.sync(ctx)
	if l.cfg.Release != nil {
		l.cfg.Release(l.burst(read)) // a read of every service and what was made of it are dropped by now
	}
	if l.phases.Load() != nil { // a full sync of the store has applied, this one or an earlier one
		// After Release: the work that waits for it (the events'
		// maintenance, at the first start after a bulk import the prune
		// of a million events) began beside Release's collection and
		// held the sync's return, the warm-up's end, for 10 s.
		l.storedOne.Do(func() { close(l.stored) })
	}
	return err
}

// Burst is what a sync tells Config.Release of the memory it dropped.
type Burst int

const (
	// NoBurst: no read of every service in this sync or the
	// burstSyncs-1 before it.
	NoBurst Burst = iota
	// Read: this sync read every service (or scanned them: ScanSum) and
	// has dropped what it read and made of it.
	Read
	// AfterRead: one of the burstSyncs-1 syncs after a Read: the
	// read's followers (the snapshot writer's first write, the
	// certificate manager's start) may have left garbage since.
	AfterRead
)

// burstSyncs is how many syncs, from one that read every service on, tell
// Release of a burst: the first sync's peak is partly after it (the
// snapshot writer's first write, the certificate manager's start), and a
// collection then still finds it live.
const burstSyncs = 3

// burst returns what Release is to be told: Read by this sync, if read,
// AfterRead by the burstSyncs-1 syncs after it.
func (l *Loop) burst(read bool) Burst {
	if read {
		l.bursts.Store(burstSyncs)
	}
	for {
		n := l.bursts.Load()
		if n <= 0 {
			return NoBurst
		}
		if l.bursts.CompareAndSwap(n, n-1) {
			if n == burstSyncs {
				return Read
			}
			return AfterRead
		}
	}
}

// sync is Sync, one full sync at a time (l.full); read reports whether it
// read every service.
func (l *Loop) sync(ctx context.Context) (read bool, err error) {
	l.full.Lock()
	defer l.full.Unlock()
	start, allocStart := time.Now(), heapAllocated()
	c := &l.cfg
	if err := c.Prepare(ctx); err != nil {
		return false, err
	}
	// Read first: what follows is at least this revision.
	rev, err := c.Store.Revision(ctx)
	if err != nil {
		c.Health.Note(err)
		return false, err
	}
	ds, err := c.Store.ListDomains(ctx, "")
	if err == nil && c.RefreshDelegations != nil {
		err = c.RefreshDelegations(ctx) // what other nodes have seen
	}
	if err != nil {
		c.Health.Note(err)
		return false, err
	}
	// Projects and tokens: which projects are suspended, and every token,
	// so that a revoked one is forgotten by reads while the store is away.
	projects, err := c.Store.ListProjects(ctx)
	if err != nil {
		c.Health.Note(err)
		return false, err
	}
	tokens, err := c.Store.ListTokens(ctx, "")
	if err != nil {
		c.Health.Note(err)
		return false, err
	}
	c.Reads.SetTokens(projects, tokens)
	uploads, err := c.Store.ListUploadedCerts(ctx, "", true)
	if err != nil {
		c.Health.Note(err)
		return false, err
	}
	suspended := serving.SuspendedProjects(projects)
	// The store's revision moves with every change of what is served
	// (a project, domain, service, token or uploaded certificate: store's
	// write with change set), in the change's own transaction. So a sync
	// that finds the revision applied last, and the same wildcard
	// domains (the delegations other nodes see move no revision), would
	// read the services applied already: it reads none, but every
	// FullInterval (a write behind Spine's back). That read was the node's
	// largest allocation, a copy of every service every Interval (185 MB
	// at 100k services); a missed notice still moves the revision and
	// brings it.
	wild := wildcards(ds, c.Wildcard)
	if l.synced.Load() && !l.readAt.IsZero() && time.Since(l.readAt) < c.FullInterval &&
		rev == l.revision.Load() && slices.Equal(wild, l.wild) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if rev == l.revision.Load() { // else a delta came meanwhile; it recorded itself
			l.deltas.SetDomains(ds)
			l.record(suspended, l.applied, false)
		}
		return false, nil
	}
	// FullInterval has passed with the revision where it was: what a read
	// would find is a write behind Spine's back. A store that scans
	// (ServiceScanner) is first checked one service at a time, keeping
	// none (serving.ScanSum), and every service is read only if what it
	// holds is not what was applied: the read held every service at once,
	// 1.07 GiB of resident memory at its peak at a million, every 5 min.
	if sc, ok := c.Store.(ServiceScanner); ok && l.synced.Load() && !l.readAt.IsZero() &&
		rev == l.revision.Load() && slices.Equal(wild, l.wild) {
		start := time.Now()
		sum, err := serving.ScanSum(ctx, sc.ScanServices, ds, c.Wildcard, suspended, uploads)
		if err != nil {
			c.Health.Note(err)
			return false, err
		}
		// The scan reads a later snapshot than rev: a change committed
		// since (a service created through the API) is in it before its
		// delta is applied here, and was counted as a write behind
		// Spine's back (once in CI). Such a change moved the revision.
		after, err := c.Store.Revision(ctx)
		if err != nil {
			c.Health.Note(err)
			return false, err
		}
		l.mu.Lock()
		moved, same := rev != l.revision.Load() || after != rev, sum == l.applied
		if !moved && same {
			l.deltas.SetDomains(ds)
			l.record(suspended, l.applied, false)
			l.readAt = time.Now()
		}
		l.mu.Unlock()
		l.checks[0].Add(1)
		if !moved && !same {
			l.checks[1].Add(1)
		}
		l.log.Debug("checked every service against what is applied", "same", same, "revision_moved", moved, "took", time.Since(start))
		if moved || same {
			// read: the scan went through every service, a burst of
			// garbage (240 B and 15 allocations a service, the drivers'
			// strings and interfaces of each row: 240 MB at a million,
			// store.BenchmarkScanServicesMemory) that Release gives back;
			// without it the heap stayed at its goal, 700-760 MiB against
			// 480 after a first sync.
			return true, nil // moved: a delta came meanwhile, the next check sees it
		}
	}
	svcs, err := c.Store.ListServices(ctx, "")
	if err != nil {
		c.Health.Note(err)
		return false, err
	}
	ph := Phases{at: start, allocAt: allocStart}
	ph.Read, ph.Allocated.Read = ph.lap()
	st := serving.Compute(svcs, ds, c.Wildcard, l.log)
	st.Sum = serving.WithSuspended(st.Sum, suspended)
	st.Sum = serving.WithUploaded(st.Sum, uploads)

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.synced.Load() && rev < l.revision.Load() {
		l.log.Debug("a full sync's read is older than the changes applied during it; dropped", "read", rev, "applied", l.revision.Load())
		c.Health.Note(nil)
		return true, nil
	}
	// A resync, or the notice a fresh LISTEN connection sends, usually
	// finds what was applied last: then the edge, the certificate manager
	// and the snapshot are left alone (rebuilding them for 10k services
	// takes the processor for tens of milliseconds, which handshakes wait
	// for).
	if l.synced.Load() && st.Sum == l.applied {
		l.deltas.SetDomains(ds) // one that serves nothing yet (pending) is not in Sum
		l.record(suspended, st.Sum, false)
		l.revision.Store(rev)
		l.readAt, l.wild = time.Now(), wild
		return true, nil
	}
	routes := serving.Routes(st.Services, suspended)
	ph.Compute, ph.Allocated.Compute = ph.lap()
	var extra []string
	if c.ExtraHost != "" {
		extra = []string{c.ExtraHost}
	}
	hosts := routes.Managed(extra...)
	c.Suspended.Set(routes.SuspendedHosts())
	// An uploaded certificate's hostname is not managed: nothing is
	// issued or renewed for it while the upload is there.
	hosts = c.Uploaded.Apply(routes.Owners(c.Uploaded.Concerns(uploads)), hosts, uploads, l.log)
	c.Certs.SyncShared(ctx, hosts, st.Wildcards)
	ph.Certificates, ph.Allocated.Certificates = ph.lap()
	if err := ctx.Err(); err != nil {
		// Stopping: the certificate manager left the names it had not
		// begun to manage to the next sync, and so does the rest. The
		// route table of a million names (seconds) kept a stopping
		// node's Close waiting for an edge already closed.
		return true, err
	}
	if err := c.Edge.SetRouteSeq(routes); err != nil {
		return true, fmt.Errorf("applying routes: %w", err)
	}
	ph.Routes, ph.Allocated.Routes = ph.lap()
	l.deltas.Full(st, ds, suspended, uploads)
	l.applied = st.Sum
	l.synced.Store(true)
	l.record(suspended, st.Sum, true)
	ph.Record, ph.Allocated.Record = ph.lap()
	l.phases.Store(&ph)
	l.revision.Store(rev)
	l.readAt, l.wild = time.Now(), wild
	return true, nil
}

// Phases are where the time of a full sync that applied went: reading
// the store, computing the routes, the certificate manager's sync (its
// read of the certificates recorded as valid included), the edge's route
// table and the record of the sync (the delta's base, the snapshot's
// services, the API's stale reads), and what the process allocated on its
// heap meanwhile (every goroutine's, the warm-up's handshakes too): the
// garbage that brings the collector, whose mark phases slow handshakes on
// one processor. The first sync's are logged with its end; on two cores
// at a million names they are seconds and hundreds of megabytes each
// (BENCHMARKS.md).
type Phases struct {
	Read, Compute, Certificates, Routes, Record time.Duration
	Allocated                                   PhaseBytes

	at      time.Time // the end of the last phase timed
	allocAt uint64    // heapAllocated then
}

// PhaseBytes are bytes by phase of a full sync.
type PhaseBytes struct {
	Read, Compute, Certificates, Routes, Record uint64
}

// lap returns the time and the heap bytes allocated since the last phase
// ended, and starts the next.
func (p *Phases) lap() (time.Duration, uint64) {
	now, a := time.Now(), heapAllocated()
	d, b := now.Sub(p.at), a-p.allocAt
	p.at, p.allocAt = now, a
	return d, b
}

// heapAllocated is the bytes the process has allocated on its heap since
// its start (runtime/metrics, no stop of the world).
func heapAllocated() uint64 {
	s := [1]metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s[:])
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// LogValue lists the phases, each rounded to the millisecond, and under
// allocated their megabytes.
func (p Phases) LogValue() slog.Value {
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	mb := func(b uint64) string { return strconv.FormatUint((b+1<<19)>>20, 10) + "MiB" }
	a := p.Allocated
	return slog.GroupValue(slog.String("read", ms(p.Read)), slog.String("compute", ms(p.Compute)),
		slog.String("certificates", ms(p.Certificates)), slog.String("routes", ms(p.Routes)), slog.String("record", ms(p.Record)),
		slog.Group("allocated", "read", mb(a.Read), "compute", mb(a.Compute), "certificates", mb(a.Certificates),
			"routes", mb(a.Routes), "record", mb(a.Record)))
}

// LastPhases returns the phases of the last full sync that applied, and
// false before one did.
func (l *Loop) LastPhases() (Phases, bool) {
	if p := l.phases.Load(); p != nil {
		return *p, true
	}
	return Phases{}, false
}

// SyncChanges applies the services changed since the revision last applied
// (store.ChangesSince), at their cost: serving.Applied makes the delta,
// the certificate manager and the edge take it (certs.UpdateShared,
// edge.UpdateRoutes). It reports false when a full sync is needed instead:
// nothing applied yet, the store says so (another kind of change, or the
// log does not reach back), the delta touches a suspended project or an
// uploaded certificate, or applying it failed. The fail-static snapshot
// and the API's reads while the store is away see the services after the
// change.
func (l *Loop) SyncChanges(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := &l.cfg
	if !l.synced.Load() {
		return false, nil
	}
	ch, err := c.Store.ChangesSince(ctx, l.revision.Load())
	if err != nil {
		c.Health.Note(err)
		return false, err
	}
	d, ok := l.deltas.Prepare(ch)
	if !ok {
		l.log.Debug("changes applied by a full sync", "revision", l.revision.Load(), "store_full", ch.Full)
		return false, nil
	}
	if !d.Empty() {
		c.Certs.UpdateShared(ctx, d.Add, d.Drop)
		if err := c.Edge.UpdateRoutes(d.Set, d.Remove); err != nil {
			return false, fmt.Errorf("applying changed routes: %w", err)
		}
	}
	l.deltas.Commit(d)
	l.applied = d.Sum
	if !d.Empty() {
		applied := l.deltas.Snapshot()
		rec := l.last.Load()
		l.last.Store(&Record{Applied: applied, Suspended: rec.Suspended, Sum: d.Sum})
		c.Reads.SeedServices(applied)
		c.Snapshots.Due()
	}
	c.Health.Note(nil)
	l.revision.Store(ch.Revision)
	return true, nil
}

// record records the services of a successful sync, for the snapshot and
// for reads while the store is away, and asks for a snapshot.
func (l *Loop) record(suspended map[string]bool, sum [sha256.Size]byte, changed bool) {
	applied := l.deltas.Snapshot()
	l.last.Store(&Record{Applied: applied, Suspended: slices.Sorted(maps.Keys(suspended)), Sum: sum})
	l.cfg.Reads.SeedServices(applied) // indexed only if the store goes away
	l.cfg.Health.Note(nil)
	if changed {
		l.cfg.Snapshots.Due() // else the writer's own tick still picks up new certificates
	}
}

// ServeSnapshot applies the fail-static snapshot a node started from
// while the store is away: its routes, its suspended projects and its
// reads (its certificates and ticket keys are the node's to hand over),
// then lets go of the snapshot's services and certificates (Served).
//
// A snapshot of at least Config.Warm's Above services (with Config.Warm
// set and an edge that warms up) is served before its route table is
// built (3.6 s of a processor at a million): the
// names it has certificates for (the only ones it can serve while the
// store is away) are routed at once through the edge's warm-up, and the
// whole table is built in the background, the store's first sync waiting
// for it (Loop.full), so that it never replaces a newer table. A
// snapshot read hot first (fleet.ReadSnapshotHotFirst: its services are
// those names' alone) has its other services read in the background too,
// before the table (4.3 s of a processor at a million); the API answers
// from the snapshot once they are read (until then as with no snapshot:
// the store is unreachable). A smaller one is read whole first.
func (l *Loop) ServeSnapshot(s *fleet.Snapshot) error {
	suspended := s.SuspendedProjects()
	seed := func() { l.cfg.Reads.SeedSnapshot(s.Services, s.Credentials(), s.TokensComplete) }
	if !s.Partial() {
		seed()
	}
	apply := func() error {
		routes := serving.Routes(s.Services, suspended)
		l.cfg.Suspended.Set(routes.SuspendedHosts())
		if err := l.cfg.Edge.SetRouteSeq(routes); err != nil {
			return fmt.Errorf("applying the snapshot's routes: %w", err)
		}
		s.Served()
		return nil
	}
	warm, ok := l.cfg.Edge.(interface{ Warm(edge.WarmLookup) })
	if w := l.cfg.Warm; !ok || w == nil || s.Len() < cmpOr(w.Above, DefaultWarmAbove) {
		if s.Partial() {
			if err := s.ReadServices(); err != nil {
				return fmt.Errorf("reading the snapshot's services: %w", err)
			}
			seed()
		}
		if err := apply(); err != nil {
			return err
		}
		l.synced.Store(true)
		return nil
	}
	hot := hotRoutes(s, suspended)
	hotSuspended := map[string]bool{}
	for h, r := range hot {
		if r.Suspended {
			hotSuspended[h] = true
		}
	}
	l.cfg.Suspended.Set(hotSuspended)
	warm.Warm(func(_ context.Context, host string) (*edge.Route, *tls.Certificate, error) {
		if r, ok := hot[host]; ok {
			return &r, nil, nil
		}
		return nil, nil, nil
	})
	l.log.Info("serving the snapshot's names with a certificate while its route table is built", "names", len(hot), "services", s.Len())
	l.full.Lock()
	go func() {
		defer l.full.Unlock()
		start := time.Now()
		if s.Partial() {
			if err := s.ReadServices(); err != nil {
				// The names with a certificate stay served; the store's
				// first sync builds the table once it answers.
				l.log.Warn("reading the snapshot's services: serving its names with a certificate only", "err", err)
				return
			}
			seed()
			l.log.Info("the snapshot's services are read", "services", s.Len(), "took", time.Since(start).Round(time.Millisecond))
		}
		if err := apply(); err != nil {
			l.log.Warn("serving the snapshot", "err", err)
			return
		}
		l.log.Info("the snapshot's route table is built", "took", time.Since(start).Round(time.Millisecond))
	}()
	l.synced.Store(true)
	return nil
}

// hotRoutes returns the routes, by hostname, of the snapshot's names that
// have a certificate in it (their own, or their parent's wildcard).
func hotRoutes(s *fleet.Snapshot, suspended map[string]bool) map[string]edge.Route {
	names := map[string]bool{}
	for _, c := range s.Certificates {
		for _, n := range c.Names {
			names[n] = true
		}
	}
	covered := func(h string) bool {
		if names[h] {
			return true
		}
		_, parent, ok := strings.Cut(h, ".")
		return ok && names["*."+parent]
	}
	var svcs []store.Service
	var y sched.Yielder
	for i := range s.Services {
		y.Maybe()
		if slices.ContainsFunc(s.Services[i].Hostnames, covered) {
			svcs = append(svcs, s.Services[i])
		}
	}
	routes := serving.Routes(svcs, suspended)
	hot := make(map[string]edge.Route, routes.Len())
	for r := range routes.All() {
		if covered(r.Host) {
			hot[r.Host] = *r
		}
	}
	return hot
}

// DefaultInterval is the default of Config.Interval.
const DefaultInterval = 30 * time.Second

// FullEvery is Config.FullInterval's default, in Intervals: every 5 min
// by default.
const FullEvery = 10

// CheckInterval returns nil for a Config.Interval the loop takes (0: the
// default), else an error saying what to give.
func CheckInterval(d time.Duration) error {
	if d < 0 {
		return errors.New("give a positive duration, e.g. 1m")
	}
	return nil
}

// ListenWait is the longest AwaitListen waits.
const ListenWait = 2 * time.Second

// AwaitListen waits, before the first Sync, for the first signal of a
// PostgreSQL store's watch (changes; pg says the store is PostgreSQL),
// which comes once its LISTEN connection is up, for the notices it may
// have missed before. Reading the first snapshot after that signal covers
// them; read before it, the signal would make Run read every service a
// second time, in the first second of serving, when a restarted node's
// clients all reconnect. Bounded by ListenWait and ctx: if LISTEN is slow,
// the second read happens. Without pg it returns at once.
func AwaitListen(ctx context.Context, changes <-chan struct{}, pg bool) {
	if !pg {
		return
	}
	t := time.NewTimer(ListenWait)
	defer t.Stop()
	select {
	case <-changes:
	case <-t.C:
	case <-ctx.Done():
	}
}

// wildcards returns the verified domains whose names share a wildcard
// certificate, as serving.Compute lists them.
func wildcards(ds []store.Domain, wildcard func(store.Domain) bool) []string {
	var out []string
	for _, d := range ds {
		if d.Status == store.DomainVerified && wildcard(d) {
			out = append(out, d.Name)
		}
	}
	return out
}
