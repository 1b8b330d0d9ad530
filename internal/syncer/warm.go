package syncer

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/serving"
	"github.com/spine-platform/spine/internal/store"
)

// The warm-up: with many hostnames, the first full sync (every service
// read, routes built for each) takes seconds, and a node that waited for
// it would answer nothing meanwhile. WarmUp makes the edge serve at once:
// until the first sync is applied, a name the edge does not have is read
// from the store alone (Loop.lookup: its service, the domains above its
// names, its project, its uploaded certificate; each an indexed read) and
// turned into a route by serving.ServiceRoutes, the code the full sync's
// routes come from, so the name is served as the sync will serve it.
// Every change notice during the warm-up makes the edge forget what it
// read (edge.Server.ForgetWarm); the changes that came after the first
// sync's read are applied right after it, as a delta.

// DefaultWarmAbove is WarmConfig.Above's default: from this many
// hostnames a node serves while its first sync runs. Below it the sync
// takes a fraction of a second (BENCHMARKS.md, "A million hostnames"),
// and the node serves once it is applied, as before.
const DefaultWarmAbove = 20000

// WarmStore is what the warm-up reads of one hostname; *store.DB
// satisfies it.
type WarmStore interface {
	HostnamesAtLeast(ctx context.Context, n int) (bool, error)
	ServiceByHostname(ctx context.Context, hostname string) (store.Service, error)
	DomainsNamed(ctx context.Context, names []string) ([]store.Domain, error)
	GetProject(ctx context.Context, id string) (store.Project, error)
	UploadedCertFor(ctx context.Context, hostname string) (store.UploadedCert, error)
}

// WarmReader reads at once all that a look-up needs of one hostname
// (store.WarmRead); *store.DB satisfies it, on PostgreSQL in one round
// trip. With WarmConfig.Parallel, a Store that is one is read so, when
// Certs is a WarmKeyCerts.
type WarmReader interface {
	ReadWarm(ctx context.Context, host string, domains, keyPrefixes []string, keyLimit int) (store.WarmRead, error)
}

// WarmKeyCerts makes a hostname's certificate from the keys its caller
// read (WarmReader); *certs.Stored satisfies it.
type WarmKeyCerts interface {
	// KeyPrefixes returns the key folders to read for host, and the
	// most keys the read should return; nil: read none, call
	// Certificate.
	KeyPrefixes(host string) ([]string, int)
	FromKeys(ctx context.Context, host string, up *store.UploadedCert, kvs []store.KeyValue) *tls.Certificate
}

// WarmEdge serves the warm-up's routes; *edge.Server satisfies it.
type WarmEdge interface {
	Warm(lookup edge.WarmLookup)
	ForgetWarm()
}

// WarmCerts loads a hostname's certificate before the certificate
// manager manages it; *certs.Stored satisfies it.
type WarmCerts interface {
	Certificate(ctx context.Context, host string, up *store.UploadedCert) *tls.Certificate
}

// WarmConfig lets a Loop serve before its first sync (WarmUp). Store,
// Edge and Certs are required.
type WarmConfig struct {
	Store WarmStore
	Edge  WarmEdge
	Certs WarmCerts
	// Above is the count of hostnames from which WarmUp starts a
	// warm-up. Default DefaultWarmAbove; -1: always.
	Above int
	// Parallel reads a name's service, the domains above it and its
	// certificates together (Loop.lookup), instead of one after the
	// other: for a store across the network (PostgreSQL), where each
	// waits a round trip. In one read when Store is a WarmReader and
	// Certs a WarmKeyCerts, else at once. SQLite's reads are work in
	// this process, which running them together does not shorten.
	// Default false.
	Parallel bool
	// Hold, if set, runs before the warm-up's first sync; the sync waits
	// for it (tests hold the warm-up open with it). Default nil.
	Hold func(ctx context.Context) error
	// Relax, if set, is called as the warm-up's first sync begins, and
	// the function it returns once that sync is applied (or the loop
	// ends): the node lets the collector's heap goal rise meanwhile
	// (gcgoal.Raise), since the sync's garbage made collections whose
	// mark phases held the warm-up's handshakes (BENCHMARKS.md). Default
	// nil.
	Relax func() (restore func())
}

// warmRetry is the wait before the warm-up's first sync is tried again
// after it failed.
const warmRetry = 5 * time.Second

// WarmUp decides whether the node serves before its first sync: with
// Config.Warm set and the store holding at least Above hostnames, it
// starts the edge's warm-up and returns true; Run then applies the first
// sync, which the caller must not call Sync for. Otherwise (or if the
// store cannot be counted) it returns false, and the caller syncs first.
func (l *Loop) WarmUp(ctx context.Context) bool {
	w := l.cfg.Warm
	if w == nil {
		return false
	}
	if above := cmpOr(w.Above, DefaultWarmAbove); above >= 0 {
		ok, err := w.Store.HostnamesAtLeast(ctx, above)
		if err != nil || !ok {
			return false
		}
	}
	w.Edge.Warm(l.lookup)
	l.warming.Store(true)
	l.log.Info("serving while the first sync runs: names are read from the store one at a time until it is applied")
	return true
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// FirstSync is how long the warm-up's first sync took to be applied (from
// WarmUp), 0 before it is or without a warm-up.
func (l *Loop) FirstSync() time.Duration { return time.Duration(l.firstSync.Load()) }

// warmUp applies the first sync of a warm-up, the edge forgetting what it
// read at each change notice meanwhile (while a failed sync waits to be
// tried again too), then the changes that came during the sync. It
// retries a failed sync; false: ctx ended first.
func (l *Loop) warmUp(ctx context.Context, changes <-chan struct{}) bool {
	start := time.Now()
	w := l.cfg.Warm
	changed := false
	var retry <-chan time.Time
	if w.Relax != nil {
		defer w.Relax()() // the first sync's collections fewer, until it is applied
	}
	done := l.firstSyncAsync(ctx)
	for {
		select {
		case <-ctx.Done():
			if done != nil {
				<-done // Sync honours ctx
			}
			return false
		case _, ok := <-changes:
			if !ok {
				changes = nil // the store closed: ctx ends too
				continue
			}
			changed = true
			l.projects.forget()
			w.Edge.ForgetWarm()
		case <-retry:
			retry = nil
			done = l.firstSyncAsync(ctx)
		case err := <-done:
			done = nil
			if err == nil {
				d := time.Since(start)
				l.firstSync.Store(int64(d))
				l.warming.Store(false)
				l.early.Clear()
				l.projects.forget()
				ph, _ := l.LastPhases()
				l.log.Info("first sync applied: the warm-up is over", "duration", d.Round(time.Millisecond), "phases", ph)
				if changed {
					l.resyncChanges(ctx) // what changed since the sync's read
				}
				return true
			}
			if ctx.Err() == nil {
				l.log.Warn("the first sync failed; names are still read from the store one at a time", "err", err)
			}
			retry = time.After(warmRetry)
		}
	}
}

// firstSyncAsync runs the warm-up's first sync (after Hold) on its own
// goroutine; its error comes on the channel returned.
func (l *Loop) firstSyncAsync(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() {
		if h := l.cfg.Warm.Hold; h != nil {
			if err := h(ctx); err != nil {
				done <- err
				return
			}
		}
		done <- l.Sync(ctx)
	}()
	return done
}

// lookup is the warm-up's edge.WarmLookup: host's route as the full sync
// will make it, and the certificate a full sync would serve for it.
//
// With WarmConfig.Parallel, its reads go at once: the service holding
// host, the domains at or above host (host's route depends on those
// alone: platform.Serving), host's uploaded certificate and its stored
// one; then the service's project, unless the warm-up read it already
// (warmProjects): one round trip a name. A name no service holds costs
// the four reads (the edge bounds the look-ups under way). Without, one
// after the other, the certificate only for a name served.
func (l *Loop) lookup(ctx context.Context, host string) (*edge.Route, *tls.Certificate, error) {
	w := l.cfg.Warm
	var (
		svc              store.Service
		ds               []store.Domain
		c                store.UploadedCert
		stored           *tls.Certificate
		sErr, dErr, cErr error
	)
	gen := l.projects.generation()
	rd, readsAll := w.Store.(WarmReader)
	kc, fromKeys := w.Certs.(WarmKeyCerts)
	switch {
	case w.Parallel && readsAll && fromKeys:
		// One round trip on one connection: four reads at once took
		// four pooled connections (32 at 8 look-ups, of a pool of 16)
		// and waited for the slowest of four database backends
		// (BENCHMARKS.md, "A node told to stop while it manages, and
		// the warm-up's reads in one round trip").
		prefixes, limit := kc.KeyPrefixes(host)
		r, err := rd.ReadWarm(ctx, host, namesAbove([]string{host}), prefixes, limit)
		if err != nil {
			return nil, nil, err
		}
		svc, sErr, ds, c, cErr = r.Service, r.ServiceErr, r.Domains, r.Uploaded, r.UploadedErr
		if prefixes != nil {
			stored = kc.FromKeys(ctx, host, nil, r.Keys)
		} else {
			stored = w.Certs.Certificate(ctx, host, nil)
		}
	case w.Parallel:
		var wg sync.WaitGroup
		wg.Go(func() { ds, dErr = w.Store.DomainsNamed(ctx, namesAbove([]string{host})) })
		wg.Go(func() { c, cErr = w.Store.UploadedCertFor(ctx, host) })
		// Read even if an upload is found (and then not used): uploads
		// are rare, and waiting for that answer would cost every other
		// name a round trip.
		wg.Go(func() { stored = w.Certs.Certificate(ctx, host, nil) })
		svc, sErr = w.Store.ServiceByHostname(ctx, host)
		wg.Wait()
	default:
		svc, sErr = w.Store.ServiceByHostname(ctx, host)
		if sErr == nil {
			ds, dErr = w.Store.DomainsNamed(ctx, namesAbove(svc.Hostnames))
		}
	}
	if errors.Is(sErr, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err := cmp.Or(sErr, dErr); err != nil {
		return nil, nil, err
	}
	p, ok := l.projects.get(svc.ProjectID)
	if !ok {
		var err error
		if p, err = w.Store.GetProject(ctx, svc.ProjectID); err != nil {
			return nil, nil, err
		}
		l.projects.put(p, gen)
	}
	var route *edge.Route
	for _, r := range serving.ServiceRoutes(svc, ds, !p.SuspendedAt.IsZero(), l.log) {
		if r.Host == host {
			route = &r
			break
		}
	}
	if route == nil {
		return nil, nil, nil // not served: an unverified domain, another project's
	}
	if !w.Parallel {
		c, cErr = w.Store.UploadedCertFor(ctx, host)
	}
	var up *store.UploadedCert
	switch {
	case cErr == nil && c.ProjectID == route.Project: // Uploaded.Apply's rule
		up = &c
	case cErr != nil && !errors.Is(cErr, store.ErrNotFound):
		return nil, nil, cErr
	}
	cert := stored
	if up != nil || !w.Parallel {
		cert = w.Certs.Certificate(ctx, host, up)
	}
	if cert == nil && up == nil && !route.Suspended && !l.sharesWildcard(host, ds) {
		l.manageEarly(ctx, host)
	}
	return route, cert, nil
}

// warmProjectsMax bounds the projects a warm-up keeps (warmProjects).
const warmProjectsMax = 10000

// warmProjects are the projects the warm-up read, so that a name of a
// project already read costs no read of it (its suspension decides the
// route). Contract: at most warmProjectsMax, then emptied; each as read,
// never older than the last change notice (forget, called at each
// notice and at the warm-up's end; a read begun before a forget is not
// kept). Safe for concurrent use.
type warmProjects struct {
	mu  sync.Mutex
	gen uint64
	m   map[string]store.Project
}

// generation returns what put needs: read it before the reads.
func (w *warmProjects) generation() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen
}

func (w *warmProjects) get(id string) (store.Project, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p, ok := w.m[id]
	return p, ok
}

// put keeps p, read after generation returned gen, unless forget ran since.
func (w *warmProjects) put(p store.Project, gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if gen != w.gen {
		return
	}
	if w.m == nil || len(w.m) >= warmProjectsMax {
		w.m = map[string]store.Project{}
	}
	w.m[p.ID] = p
}

func (w *warmProjects) forget() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	w.m = nil
}

// warmManageMax bounds the hostnames a warm-up hands the certificate
// manager before its first sync (manageEarly).
const warmManageMax = 10000

// manageEarly hands host, served but without a stored certificate (a
// service created since the node started, or one whose first issuance
// has not ended), to the certificate manager now rather than at the end of
// the first sync (29 s at a million names): its first handshake then waits
// for the issuance as after a sync (certs' awaitFirst), instead of
// failing until the sync is applied. Once per name and at most
// warmManageMax names per warm-up; never after it (the sync's SyncShared,
// and the changes applied after it, decide what is managed: a name the
// sync does not serve stops being managed then).
func (l *Loop) manageEarly(ctx context.Context, host string) {
	if !l.warming.Load() {
		return
	}
	if _, had := l.early.LoadOrStore(host, struct{}{}); had {
		return
	}
	if l.earlyN.Add(1) > warmManageMax {
		return
	}
	l.cfg.Certs.UpdateShared(ctx, []string{host}, nil)
}

// sharesWildcard reports whether host is exactly one label under a domain
// of ds whose names share a wildcard certificate (Config.Wildcard): the
// sync manages that certificate, obtained through DNS-01, not host's own.
func (l *Loop) sharesWildcard(host string, ds []store.Domain) bool {
	_, parent, ok := strings.Cut(host, ".")
	if !ok || l.cfg.Wildcard == nil {
		return false
	}
	for _, d := range ds {
		if d.Name == parent && l.cfg.Wildcard(d) {
			return true
		}
	}
	return false
}

// namesAbove returns every name at or above each of hosts: the domains
// that decide whether a host is served (platform.Serving).
func namesAbove(hosts []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, h := range hosts {
		for name := h; name != "" && !seen[name]; {
			seen[name] = true
			out = append(out, name)
			_, rest, ok := strings.Cut(name, ".")
			if !ok {
				break
			}
			name = rest
		}
	}
	return out
}
