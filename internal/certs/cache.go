// The bounded certificate cache: which certificates are kept in memory,
// and how a managed name whose certificate is not loads it from storage on
// its first handshake.
//
// The cache is certmagic's (one per Manager). Its contract: at most
// Config.CacheCapacity certificates, a random one dropped for a new one; a
// handshake gets the certificate in memory for its name, else the one in
// storage (loadCertificate: one load per subject at a time, under a
// certificate load, so one read of the store; flights keeps nothing once
// a load ends). A certificate that another node renewed is served from
// memory until this node's maintenance (every Config.RenewCheckInterval)
// finds its own copy in the renewal window and, under the issuance lock,
// reloads the renewed one from storage instead of renewing again; the old
// one is still valid until then. A name Sync drops leaves the cache at
// once.

package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/sched"
)

// DefaultCacheCapacity is the default of Config.CacheCapacity.
const DefaultCacheCapacity = 10_000

// CheckCacheCapacity returns nil for a Config.CacheCapacity the manager
// takes (-1: no bound, 0: the default, else at least 1), else an error
// saying what to give.
func CheckCacheCapacity(n int) error {
	if n < -1 {
		return errors.New("give the most certificates to hold in memory (at least 1, e.g. 10000), or -1 for no bound")
	}
	return nil
}

// loadTimeout bounds a handshake's wait for a certificate from storage.
const loadTimeout = 10 * time.Second

// subjectOf returns the managed certificate subject that serves name: name
// itself, or the wildcard that stands for it. It reports false if neither
// is managed.
func subjectOf(managed *nameSet, name string) (string, bool) {
	if managed.has(name) {
		return name, true
	}
	if d, ok := hostname.Parent(name); ok {
		if w := hostname.Wildcard(d); managed.has(w) {
			return w, true
		}
	}
	return "", false
}

// loadCertificate loads the certificate of a served name that is not in
// memory from storage into the cache, and returns it. Concurrent
// handshakes for one certificate wait for a single load; loads of
// different certificates do not wait for each other. A certificate that is
// not in storage either is obtained in the background (the handshake
// fails meanwhile), as for a name managed from the start.
func (m *Manager) loadCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	subject, ok := subjectOf(m.managed.Load(), hostname.Clean(hello.ServerName))
	if !ok {
		return nil, errors.New("not managed")
	}
	sched.Foreground() // background loops hold off meanwhile
	return m.loads.do(subject, func() (*tls.Certificate, error) {
		magic := m.magic.Load()
		if hostname.IsWildcard(subject) {
			magic = m.wild.Load()
		}
		ctx, cancel := context.WithTimeout(withCertificateLoad(m.ctx), loadTimeout)
		defer cancel()
		cert, err := m.cacheManaged(ctx, magic, subject) // one read of its keys
		if errors.Is(err, fs.ErrNotExist) {
			go m.manageMissing(subject)
			return nil, fmt.Errorf("not in storage; obtaining it")
		}
		if err != nil {
			return nil, fmt.Errorf("loading from storage: %w", err)
		}
		return &cert.Certificate, nil
	})
}

// cacheManaged loads subject's certificate from storage into the cache,
// having made room for it first (cachedSet).
func (m *Manager) cacheManaged(ctx context.Context, magic *certmagic.Config, subject string) (certmagic.Certificate, error) {
	for _, v := range m.cached.victims() {
		m.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: v}}) // any issuer
		m.status.release(v)
	}
	defer m.cached.loaded()
	return magic.CacheManagedCertificate(ctx, subject)
}

// uncache takes name's managed certificates out of the cache.
func (m *Manager) uncache(name string) {
	m.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: name}}) // any issuer
	m.cached.remove(name)
}

// manageMissing starts managing subject as a new name (obtain, then keep
// renewed) when its certificate was expected in storage but is not there.
func (m *Manager) manageMissing(subject string) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	if m.ctx.Err() != nil || !m.managed.Load().has(subject) || m.cancels[subject] != nil {
		return
	}
	m.log.Warn("certificate recorded but not in storage; obtaining it", "hostname", subject)
	m.manage(subject)
}

// warm loads the certificates of names started from their record into
// memory, one at a time and at most half the time, in the background,
// while the cache has room (at most nine tenths of its capacity, so that
// warming does not evict). startManaging calls it only when every name
// fits: each certificate ends up in memory as if loaded at start, and so
// in the node's snapshot, without delaying the start.
func (m *Manager) warm(names []string) {
	for _, n := range names[:min(len(names), m.warmRoom())] {
		if m.ctx.Err() != nil {
			return
		}
		if !m.managed.Load().has(n) || m.cachedLeaf(n) != nil {
			continue
		}
		start := time.Now()
		m.loads.do(n, func() (*tls.Certificate, error) {
			magic := m.magic.Load()
			if hostname.IsWildcard(n) {
				magic = m.wild.Load()
			}
			ctx, cancel := context.WithTimeout(withCertificateLoad(m.ctx), loadTimeout)
			defer cancel()
			cert, err := m.cacheManaged(ctx, magic, n)
			if err != nil {
				return nil, err // its first handshake tries again
			}
			return &cert.Certificate, nil
		})
		// Take at most half of a core: handshakes come first.
		t := time.NewTimer(time.Since(start))
		select {
		case <-m.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// warmRoom returns how many names warm loads at most: nine tenths of the
// cache's capacity (certmagic does not tell its count), or all without a
// bound.
func (m *Manager) warmRoom() int {
	switch c := m.capacity; {
	case c == 0:
		return DefaultCacheCapacity * 9 / 10
	case c < 0:
		return math.MaxInt
	default:
		return c * 9 / 10
	}
}

// CachedCertificate returns the certificate in memory for a served name,
// or nil; unlike GetCertificate it never reads storage.
func (m *Manager) CachedCertificate(name string) *tls.Certificate {
	name = hostname.Fold(name)
	if !m.served.Load().allows(name) {
		return nil
	}
	if !m.cached.mayHold(name) {
		// Most names of a large node (the snapshot writer asks for every
		// one): certmagic's look-up takes its cache's lock and splits the
		// name into labels, 48 bytes of garbage, a million times a scan.
		return nil
	}
	var best *certmagic.Certificate
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf == nil || len(c.Certificate.Certificate) == 0 {
			continue
		}
		if best == nil || c.Leaf.NotAfter.After(best.Leaf.NotAfter) {
			best = &c
		}
	}
	if best == nil {
		return nil
	}
	return &best.Certificate
}

// CacheVersion changes each time a certificate enters the cache: loaded
// from storage (certmagic's cached_managed_cert, after it is in the
// cache), obtained or renewed (cert_obtained: a renewal's certificate
// replaces the old one in the cache just after it, so a reader that saw
// this version may still have found the old one). It does not change when
// a certificate leaves the cache. The snapshot writer looks up the
// hostnames' certificates again when it changed
// (fleet.SnapshotSource.CertificatesVersion).
func (m *Manager) CacheVersion() uint64 { return m.cacheVersion.Load() }

// flights runs one load per key at a time: callers with the same key wait
// for the first and share its result. The lock is held only to look up
// and record a flight, never during one.
type flights struct {
	mu    sync.Mutex
	calls map[string]*flight
}

type flight struct {
	done chan struct{}
	cert *tls.Certificate
	err  error
}

func (f *flights) do(key string, load func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	f.mu.Lock()
	if c, ok := f.calls[key]; ok {
		f.mu.Unlock()
		<-c.done // bounded by load's own timeout
		return c.cert, c.err
	}
	if f.calls == nil {
		f.calls = make(map[string]*flight)
	}
	c := &flight{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	c.cert, c.err = load()
	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	close(c.done)
	return c.cert, c.err
}
