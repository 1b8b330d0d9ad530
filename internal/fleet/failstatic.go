// Fail static: a node that starts while the store is unreachable serves
// its snapshot, with the snapshot's certificates, until the store answers.

package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"

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
	snap, serr := ReadSnapshot(dir, k)
	if serr != nil {
		return nil, nil, fmt.Errorf("opening the store: %w (and no usable snapshot to serve from: %v)", err, serr)
	}
	db, lerr := store.OpenLazy(ctx, dsn)
	if lerr != nil {
		return nil, nil, fmt.Errorf("opening the store: %w", lerr)
	}
	log.Warn("the store is unreachable; serving the last known snapshot until it returns",
		"snapshot_written", snap.WrittenAt, "services", len(snap.Services), "err", err)
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
type Certificates struct {
	manager CertSource
	snap    map[string]*tls.Certificate // read-only
}

// NewCertificates returns the certificates of manager, with snap (by
// hostname, Snapshot.CertificatesByName; nil without a snapshot) behind.
func NewCertificates(manager CertSource, snap map[string]*tls.Certificate) *Certificates {
	return &Certificates{manager: manager, snap: snap}
}

// GetCertificate is the edge's: the manager's certificate, or the
// snapshot's if it has one and the manager has none now. It never waits
// for an issuance in progress for a name the snapshot has (with the store
// down, the issuance cannot finish).
func (c *Certificates) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	fallback := c.snap[hello.ServerName]
	if fallback == nil {
		return c.manager.GetCertificate(hello)
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
