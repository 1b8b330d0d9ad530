// Fail static: a node that starts while the store is unreachable serves
// its snapshot, with the snapshot's certificates, until the store answers.

package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

// Open opens the store at dsn. If the store is unreachable
// (store.ErrUnavailable) and dir holds a snapshot, it returns the store
// opened lazily (store.OpenLazy: its calls fail until it answers) and the
// snapshot to serve meanwhile, its sealed keys opened with k; the snapshot
// is nil when the store answered.
func Open(ctx context.Context, dsn, dir string, k *secrets.Keyring, log *slog.Logger) (*store.DB, *Snapshot, error) {
	db, err := store.Open(ctx, dsn)
	if err == nil {
		return db, nil, nil
	}
	if !errors.Is(err, store.ErrUnavailable) {
		return nil, nil, fmt.Errorf("opening the store: %w", err)
	}
	snap, serr := ReadSnapshotHotFirst(dir, k) // syncer.Loop.ServeSnapshot reads the rest
	if serr != nil {
		return nil, nil, fmt.Errorf("opening the store: %w (and no usable snapshot to serve from: %v)", err, serr)
	}
	db, lerr := store.OpenLazy(ctx, dsn)
	if lerr != nil {
		return nil, nil, fmt.Errorf("opening the store: %w", lerr)
	}
	log.Warn("the store is unreachable; serving the last known snapshot until it returns",
		"snapshot_written", snap.WrittenAt, "services", snap.Len(), "err", err)
	return db, snap, nil
}

// CertSource is the part of the certificate manager (*certs.Manager) that
// Certificates needs.
type CertSource interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	CertificateNow(*tls.ClientHelloInfo) (*tls.Certificate, error)
	CachedCertificate(name string) *tls.Certificate
}

// Certificates is a node's certificate source: its certificate manager,
// and for a node that started from its snapshot, the snapshot's
// certificate of a name the manager has none for yet. The snapshot's
// certificates are fixed at start; the manager's replace them as it
// obtains or loads its own.
//
// The snapshot's certificates, as a cache: at most the CertCacheSize the
// previous run had in memory when it last wrote the snapshot, as old as
// that write, kept for the process's life. One is served for a name only
// when the manager has no certificate for it right now (CertificateNow
// fails: none in memory, and the store unreadable or without one); the
// edge asks only for names of its route table.
//
// The stored certificates, as a cache: for a node started from its
// snapshot, once the store answers and until its first sync from the
// store is applied (the manager manages no name before it: 20 s at a
// million hostnames), the certificate stored for a routed name that
// neither the manager nor the snapshot has, read on its first handshake;
// at most maxStoredLoads, emptied when full. A name without one is read
// again at its next handshake.
type Certificates struct {
	manager CertSource
	snap    map[string]*tls.Certificate // read-only

	load    func(ctx context.Context, host string) *tls.Certificate // nil: no loads
	loading func() bool                                             // whether to load now
	mu      sync.Mutex
	loaded  map[string]*tls.Certificate
}

// maxStoredLoads bounds Certificates' stored certificates (the warm-up's
// bound, syncer's).
const maxStoredLoads = 10_000

// storedLoadTimeout bounds a stored certificate's read.
const storedLoadTimeout = 3 * time.Second

// NewCertificates returns the certificates of manager, with snap (by
// hostname, Snapshot.CertificatesByName; nil without a snapshot) behind.
func NewCertificates(manager CertSource, snap map[string]*tls.Certificate) *Certificates {
	return &Certificates{manager: manager, snap: snap}
}

// LoadStored makes c read a routed name's stored certificate with load
// when neither the manager nor the snapshot has one and loading reports
// true (a node started from its snapshot: the store answers and its first
// sync is not applied yet). Call it before the edge serves.
func (c *Certificates) LoadStored(load func(ctx context.Context, host string) *tls.Certificate, loading func() bool) {
	c.load, c.loading = load, loading
}

// stored is the stored certificate of host, read once (see LoadStored).
func (c *Certificates) stored(host string) *tls.Certificate {
	c.mu.Lock()
	cert := c.loaded[host]
	c.mu.Unlock()
	if cert != nil {
		return cert
	}
	ctx, cancel := context.WithTimeout(context.Background(), storedLoadTimeout)
	defer cancel()
	if cert = c.load(ctx, host); cert == nil {
		return nil
	}
	c.mu.Lock()
	if c.loaded == nil || len(c.loaded) >= maxStoredLoads {
		c.loaded = map[string]*tls.Certificate{}
	}
	c.loaded[host] = cert
	c.mu.Unlock()
	return cert
}

// GetCertificate is the edge's: the manager's certificate, or the
// snapshot's if it has one and the manager has none now. It never waits
// for an issuance in progress for a name the snapshot has (with the store
// down, the issuance cannot finish). A name neither has is read from the
// store while LoadStored says so.
func (c *Certificates) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	fallback := c.snap[hello.ServerName]
	if fallback == nil {
		cert, err := c.manager.GetCertificate(hello)
		if err != nil && c.load != nil && c.loading() {
			if sc := c.stored(hello.ServerName); sc != nil {
				return sc, nil
			}
		}
		return cert, err
	}
	if cert, err := c.manager.CertificateNow(hello); err == nil {
		return cert, nil
	}
	return fallback, nil
}

// Cached is the certificate in memory for host, the manager's or the
// snapshot's, or nil. It never reads the store (SnapshotSource.Certificate).
func (c *Certificates) Cached(host string) *tls.Certificate {
	if cert := c.manager.CachedCertificate(host); cert != nil {
		return cert
	}
	return c.snap[host]
}
