package dashboard

import (
	"context"
	"sync"
	"time"

	"github.com/spine-platform/spine/client"
)

// views keeps, per project being looked at, its services and certificates
// as the API last answered them, so that a page of a project with 10,000
// hostnames is rendered from memory instead of reading 10,000 rows twice.
//
// Contract (the table of caches in docs/architecture.md): a page shows the
// project's services and certificates as read at most maxAge (2 s) plus
// one read's time ago; an older view is still shown once, while one
// background read (per project) replaces it. A change made through the
// dashboard reads its project's view again before its answer, and signing
// in reads it, so the pages after them show it; changes made elsewhere
// show within maxAge, and certificate status changes reach open pages at
// once through the event stream. A read never replaces one that began
// after it. Bound: maxViews projects (the least recently used dropped); a
// view unused for idleAfter is dropped, and the next page reads anew. Only a token that passed the API's own check and has the read
// scope is answered from it (page checks both on every request), and a
// view holds one project's data only, keyed by the project's ID.
type views struct {
	load func(ctx context.Context, token string) (*projectView, error)
	now  func() time.Time
	// base ends the background reads (close); wg waits for them.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	m  map[string]*viewEntry
}

// projectView is one read of a project's services and certificates.
type projectView struct {
	services []client.Service
	certs    []client.Certificate // by hostname
	active   map[string]bool      // hostnames whose certificate is active
	read     time.Time
	// lastEvent is the project's latest event before the read.
	lastEvent int64
}

type viewEntry struct {
	data       *projectView
	used       time.Time
	refreshing bool
}

const (
	maxViews  = 64
	maxAge    = 2 * time.Second
	idleAfter = 10 * time.Minute
	// loadTimeout bounds a background read.
	loadTimeout = 30 * time.Second
)

func newViews(load func(ctx context.Context, token string) (*projectView, error), now func() time.Time) *views {
	base, cancel := context.WithCancel(context.Background())
	return &views{load: load, now: now, m: map[string]*viewEntry{}, base: base, cancel: cancel}
}

// close ends the background reads and waits for them.
func (v *views) close() {
	v.cancel()
	v.wg.Wait()
}

// get returns project's view, reading it with token if there is none.
func (v *views) get(ctx context.Context, project, token string) (*projectView, error) {
	now := v.now()
	v.mu.Lock()
	e := v.m[project]
	if e != nil && e.data != nil {
		e.used = now
		data := e.data
		if now.Sub(data.read) > maxAge && !e.refreshing && v.base.Err() == nil {
			e.refreshing = true
			v.wg.Go(func() { v.refresh(project, token, e) })
		}
		v.mu.Unlock()
		return data, nil
	}
	v.mu.Unlock()

	return v.reload(ctx, project, token)
}

// reload reads project's view now and keeps it, unless a read that began
// later was kept meanwhile.
func (v *views) reload(ctx context.Context, project, token string) (*projectView, error) {
	data, err := v.load(ctx, token)
	if err != nil {
		return nil, err
	}
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.dropIdle(now)
	e := v.m[project]
	if e == nil {
		if len(v.m) >= maxViews {
			v.dropLeastUsed()
		}
		e = &viewEntry{}
		v.m[project] = e
	}
	e.used = now
	if e.data == nil || !data.read.Before(e.data.read) {
		e.data = data
	}
	return data, nil
}

func (v *views) refresh(project, token string, e *viewEntry) {
	ctx, cancel := context.WithTimeout(v.base, loadTimeout)
	defer cancel()
	data, err := v.load(ctx, token)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.dropIdle(v.now())
	e.refreshing = false
	if v.m[project] != e {
		return // dropped meanwhile
	}
	if err != nil {
		// The token was revoked, the store is away...: the next page reads
		// for itself and shows why.
		delete(v.m, project)
		return
	}
	if !data.read.Before(e.data.read) { // not older than a reload's
		e.data = data
	}
}

// dropIdle and dropLeastUsed run under mu.
func (v *views) dropIdle(now time.Time) {
	for p, e := range v.m {
		if now.Sub(e.used) > idleAfter {
			delete(v.m, p)
		}
	}
}

func (v *views) dropLeastUsed() {
	var oldest string
	var at time.Time
	for p, e := range v.m {
		if at.IsZero() || e.used.Before(at) {
			oldest, at = p, e.used
		}
	}
	delete(v.m, oldest)
}
