// Renewal of certificates that are not in memory: certmagic's maintenance
// renews only the certificates in its cache, so the manager renews the
// others from the status records, in bounded batches.

package certs

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/store"
)

// StatusLister is a StatusStore that can also read back what it recorded;
// *store.DB implements it. With one, a Manager starts names whose
// certificate is recorded as valid without reading storage (the
// certificate is loaded on the name's first handshake), and renews
// certificates that are not in memory when their record says they are due.
type StatusLister interface {
	StatusStore
	// ListCertStatus returns every recorded status.
	ListCertStatus(ctx context.Context) ([]store.CertStatus, error)
	// ListCertStatusDue returns at most limit statuses of certificates
	// (active or failed, with a validity) whose renewal window, the last
	// ratio of their lifetime, has begun at now; those ending first first.
	ListCertStatusDue(ctx context.Context, ratio float64, now time.Time, limit int) ([]store.CertStatus, error)
}

// ValidLister is a StatusLister that also lists, in the store, the names
// whose recorded certificate is active, begun and not yet in its renewal
// window (the last ratio of its lifetime) at now, reading names only: a
// manager's first sync of 100,000 names uses it instead of every status.
// The names come in chunks (store.DB.ListCertValid).
type ValidLister interface {
	ListCertValid(ctx context.Context, ratio float64, now time.Time) ([][]string, error)
}

var _ ValidLister = (*store.DB)(nil)

// How renewals of certificates not in memory are paced.
const (
	renewBatch       = 256             // records read per round
	renewParallel    = 4               // renewals at once
	renewTimeout     = 5 * time.Minute // per renewal, retries included
	renewNextBatchIn = 2 * time.Second // when a round was full
)

// renewals renews due certificates that are not in memory, every
// interval (with up to a tenth of jitter, so a fleet's nodes do not all ask
// at once; the storage lock makes one of them renew), until ctx ends.
func (m *Manager) renewals(ctx context.Context, lister StatusLister, interval time.Duration) {
	for {
		wait := interval + rand.N(interval/10+1)
		for {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if read, tried := m.renewDue(ctx, lister); read < renewBatch || tried == 0 {
				break
			}
			wait = renewNextBatchIn
		}
	}
}

// renewDue renews one batch of due certificates. It returns how many
// records it read and how many renewals it tried.
func (m *Manager) renewDue(ctx context.Context, lister StatusLister) (read, tried int) {
	qctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
	due, err := lister.ListCertStatusDue(qctx, m.ratio, time.Now(), renewBatch)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("listing certificates due for renewal", "err", err)
		}
		return 0, 0
	}
	sem := make(chan struct{}, renewParallel)
	var wg sync.WaitGroup
	for _, s := range due {
		name := s.Hostname
		if !m.managed.Load().has(name) || m.cachedLeaf(name) != nil {
			continue // not ours, or in memory: certmagic's maintenance renews it
		}
		m.status.seed(s) // a renewal keeps a valid certificate's name active
		magic := m.magic.Load()
		if hostname.IsWildcard(name) {
			magic = m.wild.Load()
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return len(due), tried
		}
		tried++
		wg.Go(func() {
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, renewTimeout)
			defer cancel()
			// Under the name's storage lock, and only if storage still
			// holds a certificate that needs it: another node may have
			// renewed it meanwhile.
			if err := magic.RenewCertAsync(rctx, name, false); err != nil && ctx.Err() == nil {
				m.log.Warn("renewing certificate", "hostname", name, "err", err)
			}
		})
	}
	wg.Wait()
	return len(due), tried
}
