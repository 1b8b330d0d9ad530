package certs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"

	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/logging"
	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// Config configures a Manager. It is not changed once handed to New.
type Config struct {
	// Storage holds certificates, keys and ACME accounts; nodes that share
	// it share certificates. Required.
	Storage certmagic.Storage

	// Issuers are tried in order until one issues. An *ACMEIssuer is a
	// template that New binds to the manager (storage, challenges), so a
	// literal such as &certs.ACMEIssuer{CA: url, Email: e} is enough.
	// Default: the internal CA kept in Storage (ca.Load, default options).
	Issuers []certmagic.Issuer

	// Status receives every change of a hostname's status, written in the
	// background in order of changes, the latest status per hostname. If
	// nil, status is kept in memory only (see Manager.Status).
	Status StatusStore

	// Orders keeps the count of ACME orders that the CAs' budgets and the
	// projects' orders per hour are checked against before each order
	// (budget.go); a fleet that shares it shares the counts. If nil, orders
	// are placed without such checks.
	Orders OrderBook

	// Events records certificate.issued, .renewed and .failed events, from
	// the node that obtained or failed (see events.go). If nil, none are
	// recorded.
	Events EventRecorder

	// Logger receives the manager's lines, and certmagic's and acmez's
	// through internal/logging's bridge (their routine per-hostname lines
	// at Debug). If nil, nothing is logged.
	Logger *slog.Logger

	// RenewalWindowRatio is the part of a certificate's lifetime, at its
	// end, in which it is renewed. The lifetime counts from NotBefore, so
	// it includes any backdating for clock skew. Default:
	// certmagic.DefaultRenewalWindowRatio (1/3).
	RenewalWindowRatio float64

	// RenewCheckInterval is how often managed certificates are checked for
	// renewal; keep it well below lifetime × RenewalWindowRatio. Default:
	// certmagic.DefaultRenewCheckInterval (10 minutes).
	RenewCheckInterval time.Duration

	// DNS01Solver solves ACME DNS-01 challenges. The ACME issuers use it
	// for wildcard names ("*.example.com", see SyncShared) and only for
	// them; other names are validated through HTTP-01 and TLS-ALPN-01,
	// which the edge answers. If nil, wildcard names are issued by the
	// non-ACME issuers only (the internal CA).
	DNS01Solver acmez.Solver

	// CacheCapacity is the most certificates kept in memory; when it is
	// reached, a random one is dropped for a new one. A served name whose
	// certificate is not in memory has it loaded from Storage by its next
	// handshake. Default DefaultCacheCapacity; negative: no bound.
	CacheCapacity int

	// ACMEOrderBurst and ACMEOrderInterval pace the ACME orders of each CA
	// and account: up to ACMEOrderBurst at once, then one every
	// ACMEOrderInterval. Defaults DefaultACMEOrderBurst (50) and
	// DefaultACMEOrderInterval (1s).
	ACMEOrderBurst    int
	ACMEOrderInterval time.Duration

	// Metrics counts the certificates obtained and failed
	// (spine_certificate_obtain_total) and the requests to ACME CAs. If
	// nil, none are counted.
	Metrics *metrics.Registry
}

// Manager obtains, renews and serves the certificates of a set of
// hostnames. It is safe for concurrent use.
type Manager struct {
	magic   atomic.Pointer[certmagic.Config] // set once in New
	wild    atomic.Pointer[certmagic.Config] // for wildcard names (DNS-01); set once in New
	cache   *certmagic.Cache
	storage certmagic.Storage
	log     *slog.Logger
	zlog    *zap.Logger // certmagic's logger, writing to log's handler

	// challenges are the HTTP-01 and TLS-ALPN-01 challenges in progress,
	// which the edge answers (challenge.go).
	challenges *challenges

	// managed is the set of certificate subjects: hostnames, and wildcard
	// names that stand for several hostnames. served is the set of
	// hostnames handshakes may be answered for, read without a lock;
	// covers maps a wildcard subject to the served names it stands for.
	// SyncShared replaces each whole, UpdateShared copies the shards it
	// changes (names.go). When no served name is covered by a wildcard
	// subject (covers is empty), managed and served hold the same names
	// and are one nameSet (subjects).
	managed atomic.Pointer[nameSet]
	served  atomic.Pointer[nameSet]
	covers  atomic.Pointer[names[[]string]]

	syncMu      sync.Mutex                    // serialises Sync, UpdateShared and Stop
	cancels     map[string]context.CancelFunc // per managed name: stops its retries
	wildDomains map[string]bool               // under syncMu: the wildcard domains of the last SyncShared

	ctx      context.Context // lives until Stop
	cancel   context.CancelFunc
	stopOnce sync.Once

	status  *statusBook
	events  *eventQueue
	holds   holds          // rate-limit holds per subject
	orders  *orderLimiters // ACME orders per CA and account
	book    OrderBook      // Config.Orders
	waits   budgetWaits    // names that wait for a CA's budget
	retryMu sync.Mutex
	retries map[string]*time.Timer // names waiting for a CA's budget: when each is tried again; under retryMu
	waiters chan struct{}          // handshakes waiting for a first certificate (awaitFirst)
	// handled, if set, is told each certmagic event onEvent has handled:
	// tests wait for one instead of sleeping. Set before the first Sync.
	handled func(event string)
	// cacheVersion counts the certificates that entered the cache
	// (CacheVersion).
	cacheVersion atomic.Uint64

	metrics  *metrics.Registry // Config.Metrics; may be nil
	lister   StatusLister      // nil unless Config.Status is one
	ratio    float64           // renewal window ratio
	loads    flights           // loads from storage, one per subject at a time
	cached   *cachedSet        // the names in the cache, to make room before a load (evict.go)
	synced   bool              // under syncMu: a first Sync has run
	capacity int               // Config.CacheCapacity as given
	wg       sync.WaitGroup
}

// New builds a Manager. It does not manage any name until Sync. Call Stop
// when done with it.
func New(cfg Config) (*Manager, error) {
	if cfg.Storage == nil {
		return nil, errors.New("certs: Config.Storage is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	issuers := slices.Clone(cfg.Issuers)
	if len(issuers) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		internal, err := ca.Load(ctx, cfg.Storage, ca.Options{})
		if err != nil {
			return nil, fmt.Errorf("certs: loading the internal CA: %w", err)
		}
		issuers = []certmagic.Issuer{internal}
	}

	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		storage: cfg.Storage,
		metrics: cfg.Metrics,
		log:     log,
		zlog:    logging.Certmagic(log.Handler()),
		cancels: make(map[string]context.CancelFunc),
		ctx:     ctx,
		cancel:  cancel,
		orders:  newOrderLimiters(cfg.ACMEOrderBurst, cfg.ACMEOrderInterval),
		book:    cfg.Orders,
		retries: map[string]*time.Timer{},
	}
	m.challenges = newChallenges(cfg.Storage, log)
	m.managed.Store(&nameSet{})
	m.served.Store(&nameSet{})
	m.covers.Store(&names[[]string]{})
	m.status = newStatusBook(cfg.Status, log, m.coveredBy)
	m.events = newEventQueue(cfg.Events, log)
	m.waiters = make(chan struct{}, maxFirstIssuanceWaiters)
	m.lister, _ = cfg.Status.(StatusLister)
	m.ratio = cfg.RenewalWindowRatio
	if m.ratio <= 0 || m.ratio >= 1 {
		m.ratio = certmagic.DefaultRenewalWindowRatio
	}
	capacity := cfg.CacheCapacity
	m.capacity = capacity
	switch {
	case capacity == 0:
		capacity = DefaultCacheCapacity
	case capacity < 0:
		capacity = 0 // certmagic: no bound
	}

	m.cached = newCachedSet(capacity)
	m.status.inMemory = m.cached.mayHold
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		// Wildcard certificates are renewed through DNS-01, every other
		// one through the challenges the edge answers.
		GetConfigForCert: func(c certmagic.Certificate) (*certmagic.Config, error) {
			magic := m.magic.Load()
			if slices.ContainsFunc(c.Names, hostname.IsWildcard) {
				magic = m.wild.Load()
			}
			if magic == nil {
				return nil, errors.New("certs: manager not ready")
			}
			return magic, nil
		},
		RenewCheckInterval: cfg.RenewCheckInterval,
		Capacity:           capacity,
		Logger:             m.zlog.Named("cache"),
	})
	magic, err := m.newConfig(cfg, issuers, false)
	if err != nil {
		return nil, err
	}
	// Wildcard names need DNS-01: the ACME issuers get the solver, or are
	// left out when there is none.
	wild, err := m.newConfig(cfg, issuers, true)
	if err != nil {
		return nil, err
	}
	m.magic.Store(magic)
	m.wild.Store(wild)

	go m.status.run(ctx)
	go m.events.run(ctx)
	if m.lister != nil {
		interval := cfg.RenewCheckInterval
		if interval <= 0 {
			interval = certmagic.DefaultRenewCheckInterval
		}
		m.wg.Go(func() { m.renewals(ctx, m.lister, interval) })
	}
	return m, nil
}

// Sync makes hostnames the set of managed names, each with a certificate
// of its own. It is SyncShared without shared wildcard certificates.
func (m *Manager) Sync(ctx context.Context, hostnames []string) {
	m.SyncShared(ctx, hostnames, nil)
}

// SyncShared makes hostnames the set of served names. A hostname exactly
// one label under one of wildcardDomains is covered by one certificate
// for "*.<domain>", shared with its siblings and obtained through DNS-01
// (see Config.DNS01Solver); every other hostname gets a certificate of its
// own. Names not managed yet are managed at once, in the background: their
// certificate is loaded from storage or obtained, and their status starts
// as pending (or as that of the wildcard certificate already covering
// them). With a StatusLister, names whose certificate is recorded as valid
// and not yet due for renewal are not loaded: the first handshake for one
// loads its certificate from storage (see Config.CacheCapacity), and it is
// renewed from its record. This is how a node with many names starts
// without reading every certificate; the record is read once, on the first
// SyncShared (not on an UpdateShared before it), and on calls that add
// many names. Names no longer present stop
// being served and renewed. SyncShared is idempotent. ctx bounds the call
// only; management runs until the name is removed or Stop. A name the call
// had not begun to manage when ctx ended is managed by the next
// SyncShared.
func (m *Manager) SyncShared(ctx context.Context, hostnames, wildcardDomains []string) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	if m.ctx.Err() != nil {
		return // stopped
	}

	wild := make(map[string]bool, len(wildcardDomains))
	for _, d := range wildcardDomains {
		if n := hostname.Fold(d); n != "" {
			wild[n] = true
		}
	}
	oldWild := m.wildDomains
	m.wildDomains = wild
	sb := newNamesBuilder[struct{}](len(hostnames))
	coverLists := make(map[string][]string)
	// Each loop below is over every name (seconds at a million): handshakes
	// run in between (sched.Yield).
	var y sched.Yielder
	for i, h := range hostnames {
		y.Every(i)
		sb.expect(h) // in normal form already, but for a rare one Fold changes
	}
	for i, h := range hostnames {
		y.Every(i)
		n := hostname.Fold(h)
		if n == "" {
			continue
		}
		sb.put(n, struct{}{})
		if subject := m.subjectFor(n); subject != n {
			coverLists[subject] = append(coverLists[subject], n)
		}
	}
	cb := newNamesBuilder[[]string](len(coverLists))
	for subject, hs := range coverLists {
		slices.Sort(hs)
		cb.put(subject, hs)
	}
	served, covers := sb.build(&y), cb.build(&y)
	want := m.subjects(served, covers, &y)

	oldServed := m.served.Load()
	old := m.managed.Load()
	// Sized for what the counts say: grown by append, a list of a
	// million names is reallocated twenty times, the last ones 8 and 16
	// MB, each zeroed and faulted in at once (one such append took 48 ms
	// on one processor, waits of 23-58 ms for the warm-up's handshakes).
	added := make([]string, 0, max(0, want.len()-old.len()))
	removed := make([]string, 0, max(0, old.len()-want.len()))
	i := 0
	for n := range want.all() {
		i++
		y.Every(i)
		if !old.has(n) {
			added = append(added, n)
		}
	}
	for n := range old.all() {
		i++
		y.Every(i)
		if !want.has(n) {
			removed = append(removed, n)
		}
	}
	sched.Sort(added, &y) // every name at the first sync
	sched.Sort(removed, &y)
	recorded, ok := m.recordedValid(ctx, added, true, &y)
	if !ok {
		m.wildDomains = oldWild
		return // abandoned: the served names stay as they were
	}

	// Swap the sets first: handshakes for removed names fail from now on,
	// and events for them are ignored.
	m.covers.Store(covers)
	m.served.Store(served)
	m.managed.Store(want)

	for n := range oldServed.all() {
		i++
		y.Every(i)
		if !served.has(n) && !want.has(n) {
			m.status.forget(n)
		}
	}
	m.unmanage(removed)
	// A hostname newly covered by a wildcard that is already managed
	// shows that certificate's status at once.
	for subject, hs := range covers.all() {
		if !old.has(subject) {
			continue
		}
		for _, h := range hs {
			if !oldServed.has(h) || old.has(h) {
				m.status.copy(subject, h)
			}
		}
	}
	m.startManaging(ctx, added, recorded, &y)
}

// UpdateShared changes the served names by a delta, at the cost of the
// names it changes rather than of every name: the hostnames of remove stop
// being served and those of add start, by the rules of SyncShared with the
// wildcard domains of the last SyncShared (a change of those needs
// SyncShared). A name in both stays served. As after SyncShared, a name
// newly managed is managed at once, in the background; a hostname newly
// covered by a wildcard certificate already managed shows its status at
// once; a certificate subject no longer needed stops being served and
// renewed. ctx bounds the call only, as for SyncShared.
func (m *Manager) UpdateShared(ctx context.Context, add, remove []string) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	if m.ctx.Err() != nil {
		return // stopped
	}
	adding := make(map[string]bool, len(add))
	for _, h := range add {
		if n := hostname.Fold(h); n != "" {
			adding[n] = true
		}
	}
	oldServed, old, oldCovers := m.served.Load(), m.managed.Load(), m.covers.Load()
	sb := newNamesDelta(oldServed)
	wb := newNamesDelta(old)
	cb := newNamesDelta(oldCovers)
	var left, dropped []string // hostnames no longer served; subjects no longer needed
	for _, h := range remove {
		n := hostname.Fold(h)
		if n == "" || adding[n] || !sb.s.has(n) {
			continue
		}
		sb.remove(n)
		left = append(left, n)
		subject := m.subjectFor(n)
		if subject != n {
			hs, _ := cb.s.get(subject)
			hs = slices.DeleteFunc(slices.Clone(hs), func(c string) bool { return c == n })
			if len(hs) > 0 {
				cb.put(subject, hs)
				continue
			}
			cb.remove(subject)
		}
		if wb.s.has(subject) {
			wb.remove(subject)
			dropped = append(dropped, subject)
		}
	}
	var added []string
	var copies [][2]string // a wildcard subject already managed, a hostname it now covers
	for _, n := range slices.Sorted(maps.Keys(adding)) {
		if sb.s.has(n) {
			continue
		}
		sb.put(n, struct{}{})
		subject := m.subjectFor(n)
		if subject != n {
			hs, _ := cb.s.get(subject)
			i, _ := slices.BinarySearch(hs, n)
			cb.put(subject, slices.Insert(slices.Clone(hs), i, n))
			if old.has(subject) {
				copies = append(copies, [2]string{subject, n})
			}
		}
		if !wb.s.has(subject) {
			wb.put(subject, struct{}{})
		}
		if !old.has(subject) && !slices.Contains(added, subject) {
			added = append(added, subject)
		}
	}
	served, want := sb.s, wb.s
	if cb.s.len() == 0 {
		// The same names (see subjects): one set, not two; wb's copies
		// of the shards it changed go with it.
		want = served
	}
	// A subject dropped by one hostname and needed by another stays.
	dropped = slices.DeleteFunc(dropped, want.has)
	slices.Sort(added)
	slices.Sort(dropped)
	var y sched.Yielder
	recorded, ok := m.recordedValid(ctx, added, false, &y)
	if !ok {
		return // abandoned: the served names stay as they were
	}

	m.covers.Store(cb.s)
	m.served.Store(served)
	m.managed.Store(want)

	for _, n := range left {
		if !served.has(n) && !want.has(n) {
			m.status.forget(n)
		}
	}
	m.unmanage(dropped)
	for _, c := range copies {
		m.status.copy(c[0], c[1])
	}
	m.startManaging(ctx, added, recorded, &y)
}

// subjects returns the certificate subjects of served, whose covered
// hostnames are covers': served itself when covers is empty (no hostname
// is covered by a wildcard subject, so every hostname is its own
// subject), else served without the covered hostnames and with the
// wildcard subjects, sharing with served the shards where nothing
// changes. syncMu is held.
func (m *Manager) subjects(served *nameSet, covers *names[[]string], y *sched.Yielder) *nameSet {
	if covers.len() == 0 {
		return served
	}
	i := 0
	d := newNamesDelta(served.filter(func(n string) bool {
		i++
		y.Every(i)
		return m.subjectFor(n) == n
	}))
	for subject := range covers.all() {
		d.put(subject, struct{}{})
	}
	return d.s
}

// subjectFor returns the certificate subject of the served hostname n: the
// wildcard name of its parent, if that is one of the wildcard domains and
// n is exactly one label under it, else n. syncMu is held.
func (m *Manager) subjectFor(n string) string {
	if d, ok := hostname.Parent(n); ok && !hostname.IsWildcard(n) && m.wildDomains[d] {
		return hostname.Wildcard(d)
	}
	return n
}

// unmanage stops managing the subjects of removed: their retries and
// renewals stop, their certificates leave the cache. syncMu is held.
func (m *Manager) unmanage(removed []string) {
	for _, n := range removed {
		if cancel := m.cancels[n]; cancel != nil {
			cancel()
		}
		delete(m.cancels, n)
		m.uncache(n)
		m.status.forget(n)
		m.log.Debug("stopped managing certificate", "hostname", n)
	}
}

// startManaging manages the subjects of added (sorted): those recorded as
// valid are loaded by their first handshake (and warmed in the background
// when they all fit in the cache), the others at once. syncMu is held.
//
// When ctx ends on the way (the node is stopping), it stops there: the
// subjects it did not manage leave the managed set (abandon), so that the
// next SyncShared manages them. A node whose first sync found half a
// million names without a certificate (a bulk import, a seed cut short)
// kept managing them one after the other once told to stop, each a
// certificate obtained, and its Close waited for minutes (BENCHMARKS.md,
// "A node told to stop while it manages").
func (m *Manager) startManaging(ctx context.Context, added []string, recorded *nameSet, y *sched.Yielder) {
	lazy := 0
	for i, n := range added {
		y.Every(i)
		if recorded.has(n) {
			lazy++ // loaded by its first handshake, renewed from its record
			continue
		}
		// At each name: the certificates the names before it obtain run
		// between this loop's yields, and with a look every EveryN names
		// a stopping node went on for 0.9-1.6 s.
		if ctx.Err() != nil {
			m.abandon(added[i:], recorded, y)
			return
		}
		m.manage(n)
	}
	if lazy == 0 {
		return
	}
	names := warmList(added, recorded.has, lazy, m.warmRoom(), y)
	if names == nil {
		// More names than the cache holds: which of them handshakes will
		// ask for is not known, and the cache keeps those. Warming the
		// first 9,000 of a million in name order served no handshake in
		// particular and cost the node's warm-up 367 MB of garbage (41 KB
		// a load, most of it certmagic's), half a core for seconds, and,
		// loaded among the first sync's garbage, about 60 MB of resident
		// memory in part-used spans beside the 37 MB the certificates
		// hold (BENCHMARKS.md, "The per-hostname memory at a million").
		m.log.Info("managing certificates recorded as valid; each is loaded from storage on its first handshake, and the cache keeps those asked for",
			"hostnames", lazy, "cache_capacity", cmp.Or(m.capacity, DefaultCacheCapacity))
		return
	}
	m.log.Info("managing certificates recorded as valid; each is loaded from storage on its first handshake, and all are loaded in the background",
		"hostnames", lazy)
	m.wg.Go(func() { m.warm(names) })
}

// abandon takes out of the managed set the subjects of rest (sorted) that
// startManaging has not managed: those not recorded as valid (the others
// are managed by their record alone). They stay served, so an
// UpdateShared that adds one again changes nothing; their handshakes fail
// until the next SyncShared manages them. syncMu is held.
func (m *Manager) abandon(rest []string, recorded *nameSet, y *sched.Yielder) {
	left := 0
	for _, n := range rest {
		if !recorded.has(n) {
			left++
		}
	}
	if left == 0 {
		return
	}
	i := 0
	m.managed.Store(m.managed.Load().filter(func(n string) bool {
		i++
		y.Every(i)
		_, in := slices.BinarySearch(rest, n)
		return !in || recorded.has(n)
	}))
	m.log.Info("stopped managing new certificates: the call ended (the node is stopping); the next sync manages the rest",
		"not_managed", left)
}

// warmList returns the names of added that recorded has (lazy of them)
// for warm to load if they all fit in room, else nil.
func warmList(added []string, recorded func(string) bool, lazy, room int, y *sched.Yielder) []string {
	if lazy > room {
		return nil
	}
	names := make([]string, 0, lazy)
	for i, n := range added {
		y.Every(i)
		if recorded(n) {
			names = append(names, n)
		}
	}
	return names
}

// manage starts managing a new name: its certificate is loaded from
// storage or obtained, in the background, and kept renewed. syncMu is held.
func (m *Manager) manage(n string) {
	m.status.pending(n)
	nctx, cancel := context.WithCancel(m.ctx)
	m.cancels[n] = cancel
	magic := m.magic.Load()
	if hostname.IsWildcard(n) {
		magic = m.wild.Load()
	}
	if err := magic.ManageAsync(nctx, []string{n}); err != nil {
		m.status.failed(n, err)
		m.log.Error("managing certificate", "hostname", n, "err", err)
		return
	}
	m.log.Debug("managing certificate", "hostname", n)
}

// lazyMinAdded is how many names a Sync (after the first) must add for the
// status record to be read: reading it costs one query over every name, a
// handful of new names is cheaper to load.
const lazyMinAdded = 64

// recordedValid returns the names of added whose certificate is recorded
// as valid and not due for renewal; full for a SyncShared. The record is
// read for the first SyncShared, and for a call that adds lazyMinAdded
// names or more: an UpdateShared before the first SyncShared (a name a
// node's warm-up found without a certificate) leaves that read to it, or
// the first SyncShared, with every name, would manage each one at once.
//
// ok is false when ctx was canceled during the read (the node is shutting
// down): the caller then abandons the sync and changes nothing. Falling
// back to loading every certificate then made a node stopped during its
// first sync at 1M hostnames start managing every name while holding
// syncMu, so that Stop waited for minutes (a SIGTERM did not stop it). A
// read that fails otherwise (a deadline, the store away) still falls back
// to loading every certificate. syncMu is held.
//
// The names come as a name set (names.go), built shard by shard between
// yields: a map made for a million names was made in one go, a run of
// the processor no yield breaks (about 150 ms at 1M in the runtime's
// 10-18 ms preemption slices, each a wait for the warm-up's handshakes).
func (m *Manager) recordedValid(ctx context.Context, added []string, full bool, y *sched.Yielder) (recorded *nameSet, ok bool) {
	first := full && !m.synced
	if full {
		m.synced = true
	}
	if m.lister == nil || len(added) == 0 || (!first && len(added) < lazyMinAdded) {
		return nil, true
	}
	failed := func(err error) (*nameSet, bool) {
		if errors.Is(ctx.Err(), context.Canceled) {
			if first {
				m.synced = false // the next SyncShared reads the record
			}
			return nil, false
		}
		m.log.Warn("reading recorded certificate status; loading every certificate", "err", err)
		return nil, true
	}
	now := time.Now()
	if vl, ok := m.lister.(ValidLister); ok {
		chunks, err := vl.ListCertValid(ctx, m.ratio, now)
		if err != nil {
			return failed(err)
		}
		total := 0
		for _, ch := range chunks {
			total += len(ch)
		}
		b := newNamesBuilder[struct{}](total)
		for _, ch := range chunks {
			for i, n := range ch {
				y.Every(i)
				b.expect(n)
			}
		}
		for _, ch := range chunks {
			for i, n := range ch {
				y.Every(i)
				b.put(n, struct{}{})
			}
		}
		return b.build(y), true // names not added are never asked for
	}
	all, err := m.lister.ListCertStatus(ctx)
	if err != nil {
		return failed(err)
	}
	b := newNamesBuilder[struct{}](len(all))
	for i, s := range all {
		y.Every(i)
		if s.Status != store.CertActive || !now.After(s.NotBefore) {
			continue
		}
		lifetime := s.NotAfter.Sub(s.NotBefore)
		if now.Before(s.NotAfter.Add(-time.Duration(float64(lifetime) * m.ratio))) {
			b.put(s.Hostname, struct{}{})
		}
	}
	return b.build(y), true // names not added are never asked for
}

// coveredBy returns the served hostnames a wildcard subject stands for.
func (m *Manager) coveredBy(subject string) []string {
	if !hostname.IsWildcard(subject) {
		return nil
	}
	hs, _ := m.covers.Load().get(subject)
	return hs
}

// Stop stops renewals, retries and the cache's maintenance, and writes the
// last status changes. The Manager serves no new name afterwards.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		m.syncMu.Lock()
		m.cancel()
		m.syncMu.Unlock()
		m.stopRetries()
		m.wg.Wait()
		m.cache.Stop()
		m.status.wait()
		m.events.wait()
	})
}

// Manages reports whether the manager obtains and renews a certificate
// that serves name: its own, or a wildcard one that covers it.
func (m *Manager) Manages(name string) bool {
	return m.served.Load().has(hostname.Fold(name))
}
