package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/store"
)

// StatusStore records the status of hostnames' certificates.
// PutCertStatus replaces the status of s.Hostname; it must be safe for
// concurrent use. *store.DB implements it.
type StatusStore interface {
	PutCertStatus(ctx context.Context, s store.CertStatus) error
}

// How status writes are retried and bounded.
const (
	statusWriteTimeout = 10 * time.Second
	statusRetryDelay   = 5 * time.Second
)

// Status returns the status of name's certificate. A name that is not
// managed has an empty Status.
func (m *Manager) Status(name string) store.CertStatus {
	return m.status.get(hostname.Fold(name))
}

// The certmagic events the manager follows (certmagic v0.25.6):
//
//	cert_obtaining       {identifier, renewal?}      before asking the issuers; an error aborts
//	cert_obtained        {identifier, issuer, renewal, certificate_path, ...}  saved to storage
//	cert_failed          {identifier, renewal, error, issuers}  every issuer failed
//	cached_managed_cert  {sans}                      loaded from storage into the cache
//
// A renewal replaces the cached certificate without cached_managed_cert, so
// a renewal's cert_obtained is what makes it visible here.
var followedEvents = map[string]bool{
	"cert_obtaining":      true,
	"cert_obtained":       true,
	"cert_failed":         true,
	"cached_managed_cert": true,
}

// shouldEmit keeps certmagic from building events nobody reads, notably
// tls_get_certificate on every handshake.
func shouldEmit(event string) bool { return followedEvents[event] }

func (m *Manager) onEvent(ctx context.Context, event string, data map[string]any) error {
	if m.handled != nil {
		defer m.handled(event)
	}
	if event == "cached_managed_cert" || event == "cert_obtained" {
		m.cacheVersion.Add(1)
	}
	switch event {
	case "cert_obtaining":
		name, _ := data["identifier"].(string)
		if !m.managed.Load().has(name) {
			// A retry or renewal of a name Sync removed: drop whatever a
			// late load put in the cache, and do not issue.
			m.uncache(name)
			return certmagic.ErrNoRetry{Err: fmt.Errorf("certs: %s is no longer managed", name)}
		}
		if until, held := m.holds.get(name, time.Now()); held {
			// The CA asked us to wait: fail this attempt without asking
			// it; certmagic retries later.
			return fmt.Errorf("certs: %s: held by the certificate authority's limits until %s", name, until.Format(time.RFC3339))
		}
		m.waits.forget(name) // the ACME issuers decide afresh for this attempt
		m.status.issuing(name)

	case "cert_obtained":
		name, _ := data["identifier"].(string)
		renewal, _ := data["renewal"].(bool)
		issuer, _ := data["issuer"].(string)
		m.metrics.Obtained(issuer, renewal, true)
		if !m.managed.Load().has(name) {
			return nil
		}
		if !renewal && m.events.out == nil {
			return nil // a first certificate becomes active once cached
		}
		path, _ := data["certificate_path"].(string)
		leaf, err := m.loadLeaf(ctx, path)
		if err != nil {
			m.log.Error("reading the certificate obtained", "hostname", name, "err", err)
			return nil
		}
		m.events.add(name, issuedEvent(name, leaf, renewal))
		if renewal {
			m.status.active(name, leaf)
		}

	case "cert_failed":
		name, _ := data["identifier"].(string)
		if !m.managed.Load().has(name) {
			return nil
		}
		err, _ := data["error"].(error)
		renewal, _ := data["renewal"].(bool)
		var bw *BudgetWaitError
		if errors.As(err, &bw) {
			// Not a failure: nothing was asked of the CA. The name waits,
			// and is tried again at bw.Until.
			m.holds.set(name, bw.Until)
			m.status.waiting(name, bw)
			m.log.Info("certificate waits for the certificate authority's budget", "hostname", name, "renewal", renewal, "until", bw.Until, "reason", bw.Reason)
			if !renewal { // renewals are retried by certmagic's maintenance
				m.retryAt(name, bw.Until)
			}
			return nil
		}
		// Counted under the last issuer tried: the one whose error certmagic returns.
		issuers, _ := data["issuers"].([]string)
		issuer := ""
		if len(issuers) > 0 {
			issuer = issuers[len(issuers)-1]
		}
		m.metrics.Obtained(issuer, renewal, false)
		if until, ok := retryAfter(err); ok && until.After(time.Now()) {
			m.holds.set(name, until)
			m.logHold(name, until)
		}
		// The operator's line for a failure: the reason in the words
		// Status shows (certmagic's own lines carry the raw error).
		m.log.Warn("could not get a certificate; certmagic retries", "hostname", name, "renewal", renewal, "err", plainError(err))
		m.status.failed(name, err)
		m.events.add(name, failedEvent(name, err, renewal))

	case "cached_managed_cert":
		sans, _ := data["sans"].([]string)
		managed := m.managed.Load()
		for _, name := range sans {
			if !managed.has(name) {
				// Loaded for a name Sync removed meanwhile: stop its renewal.
				m.uncache(name)
				continue
			}
			m.cached.add(name)
			if leaf := m.cachedLeaf(name); leaf != nil {
				m.status.loaded(name, leaf)
			}
		}
	}
	return nil
}

// cachedLeaf returns the leaf of the newest cached certificate for exactly
// name, or nil.
func (m *Manager) cachedLeaf(name string) *x509.Certificate {
	var leaf *x509.Certificate
	for _, c := range m.cache.AllMatchingCertificates(name) {
		if c.Leaf == nil || !contains(c.Names, name) {
			continue
		}
		if leaf == nil || c.Leaf.NotAfter.After(leaf.NotAfter) {
			leaf = c.Leaf
		}
	}
	return leaf
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// loadLeaf reads the first certificate of the PEM chain at storage key path.
func (m *Manager) loadLeaf(ctx context.Context, path string) (*x509.Certificate, error) {
	if path == "" {
		return nil, errors.New("no certificate path in event")
	}
	chain, err := m.storage.Load(ctx, path)
	if err != nil {
		return nil, err
	}
	leaf, err := parseLeaf(chain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return leaf, nil
}

// statusBook keeps every managed name's status in memory and writes
// changes to a StatusStore from one goroutine: the latest status of each
// changed name, so the backlog is bounded by the number of names. The
// memory is this node's view and answers Manager.Status at once; the
// store's record of a name trails it by the writer's backlog, and skips
// the statuses a later one replaced before it was written.
type statusBook struct {
	out StatusStore // may be nil
	log *slog.Logger
	// covered returns the hostnames a certificate subject stands for
	// besides itself (the names under a wildcard); they share its status.
	covered func(subject string) []string
	// inMemory reports whether a name's certificate may be in the cache
	// (cachedSet.mayHold; nil: always). A valid name's status is kept
	// only while it is (release): see byName.
	inMemory func(name string) bool

	mu sync.Mutex
	// byName are the statuses this node knows of: every name not valid
	// (pending, issuing, failed), and a valid name's while its certificate
	// is in the cache, or until its change is written. A valid name whose
	// certificate left the cache (release), or whose renewal from its
	// record was written while it is not in memory (flush), is dropped:
	// the store's record says the same, and a name started from its
	// record had none here. Bound: the names not valid, plus the cache's
	// capacity, plus the changes not yet written. (Every name loaded once
	// stayed: at a million names served over a day, another 200 MB or so.)
	byName map[string]store.CertStatus
	dirty  map[string]struct{} // changed since last written
	// watchers are closed at the next change of their name's status
	// (see watch); a name has one only while a handshake waits on it.
	watchers map[string]chan struct{}
	wake     chan struct{} // capacity 1: "dirty is not empty"
	done     chan struct{} // closed when run returns
}

func newStatusBook(out StatusStore, log *slog.Logger, covered func(string) []string) *statusBook {
	if covered == nil {
		covered = func(string) []string { return nil }
	}
	return &statusBook{
		out:      out,
		log:      log,
		covered:  covered,
		byName:   make(map[string]store.CertStatus),
		dirty:    make(map[string]struct{}),
		watchers: make(map[string]chan struct{}),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

func (b *statusBook) get(name string) store.CertStatus {
	if s, ok := b.lookup(name); ok {
		return s
	}
	return store.CertStatus{Hostname: name}
}

// lookup returns name's status and whether the book has one.
func (b *statusBook) lookup(name string) (store.CertStatus, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.byName[name]
	return s, ok
}

// watch returns name's status and a channel that is closed at the next
// change of that name's status.
func (b *statusBook) watch(name string) (store.CertStatus, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.byName[name]
	if !ok {
		s = store.CertStatus{Hostname: name}
	}
	ch := b.watchers[name]
	if ch == nil {
		ch = make(chan struct{})
		b.watchers[name] = ch
	}
	return s, ch
}

// changedLocked wakes the watchers of name; b.mu is held.
func (b *statusBook) changedLocked(name string) {
	if ch := b.watchers[name]; ch != nil {
		close(ch)
		delete(b.watchers, name)
	}
}

// update applies f to name's status, and to that of the names it covers,
// and queues them for writing.
func (b *statusBook) update(name string, f func(s *store.CertStatus)) {
	names := append([]string{name}, b.covered(name)...)
	now := time.Now().UTC()
	b.mu.Lock()
	for _, n := range names {
		s := b.byName[n]
		s.Hostname = n
		f(&s)
		s.Hostname = n
		s.UpdatedAt = now
		b.byName[n] = s
		b.dirty[n] = struct{}{}
		b.changedLocked(n)
	}
	b.mu.Unlock()
	b.signal()
}

// copy gives name the status of subject, the certificate that covers it.
func (b *statusBook) copy(subject, name string) {
	b.mu.Lock()
	s, ok := b.byName[subject]
	if !ok {
		s = store.CertStatus{Status: store.CertPending}
	}
	s.Hostname = name
	s.UpdatedAt = time.Now().UTC()
	b.byName[name] = s
	b.dirty[name] = struct{}{}
	b.changedLocked(name)
	b.mu.Unlock()
	b.signal()
}

func (b *statusBook) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// seed records s as a name's status if it has none in memory, without
// writing it: it is the recorded status, read back.
func (b *statusBook) seed(s store.CertStatus) {
	b.mu.Lock()
	if _, ok := b.byName[s.Hostname]; !ok {
		b.byName[s.Hostname] = s
	}
	b.mu.Unlock()
}

// loaded records a certificate loaded from storage. A name without a
// status in memory was started from its record, which already says so:
// nothing is written for it.
func (b *statusBook) loaded(name string, leaf *x509.Certificate) {
	b.mu.Lock()
	_, known := b.byName[name]
	if !known {
		b.byName[name] = store.CertStatus{
			Hostname: name, Status: store.CertActive, Issuer: leaf.Issuer.CommonName,
			NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, UpdatedAt: time.Now().UTC(),
		}
		b.changedLocked(name)
	}
	b.mu.Unlock()
	if known {
		b.active(name, leaf)
	}
}

// pending starts name afresh: nothing issued yet.
func (b *statusBook) pending(name string) {
	b.update(name, func(s *store.CertStatus) {
		*s = store.CertStatus{Status: store.CertPending}
	})
}

// issuing marks an issuance in progress. A renewal of a certificate that
// is still valid keeps the name active: clients are served meanwhile.
func (b *statusBook) issuing(name string) {
	b.update(name, func(s *store.CertStatus) {
		if !valid(s, time.Now()) {
			s.Status = store.CertIssuing
		}
	})
}

func (b *statusBook) active(name string, leaf *x509.Certificate) {
	b.update(name, func(s *store.CertStatus) {
		s.Status = store.CertActive
		if now := time.Now(); now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
			// An expired certificate loaded from storage: certmagic
			// renews it right away.
			s.Status = store.CertIssuing
		}
		s.Issuer = leaf.Issuer.CommonName
		s.NotBefore = leaf.NotBefore
		s.NotAfter = leaf.NotAfter
		s.Error = ""
	})
}

// waiting records that name waits for a CA's budget: pending (a valid
// certificate stays active), with the reason and the time it is tried.
func (b *statusBook) waiting(name string, bw *BudgetWaitError) {
	b.update(name, func(s *store.CertStatus) {
		if !valid(s, time.Now()) {
			s.Status = store.CertPending
		}
		s.Error = bw.Error()
	})
}

// failed records err. A failed renewal of a certificate that is still
// valid keeps the name active, with the error to show.
func (b *statusBook) failed(name string, err error) {
	b.update(name, func(s *store.CertStatus) {
		if !valid(s, time.Now()) {
			s.Status = store.CertFailed
		}
		s.Error = plainError(err)
	})
}

// release drops name's status if it is a valid one already written and no
// handshake waits on it: its certificate left the cache, and the store's
// record says the same. It reports whether it did.
func (b *statusBook) release(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.releaseLocked(name, time.Now())
}

func (b *statusBook) releaseLocked(name string, now time.Time) bool {
	s, ok := b.byName[name]
	if !ok || !valid(&s, now) || b.watchers[name] != nil {
		return false
	}
	if _, dirty := b.dirty[name]; dirty {
		return false
	}
	delete(b.byName, name)
	return true
}

// size returns how many names have a status in memory.
func (b *statusBook) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.byName)
}

func (b *statusBook) forget(name string) {
	b.mu.Lock()
	delete(b.byName, name)
	delete(b.dirty, name)
	b.changedLocked(name)
	b.mu.Unlock()
}

// valid reports whether s describes an active certificate valid at now.
func valid(s *store.CertStatus, now time.Time) bool {
	return s.Status == store.CertActive && now.After(s.NotBefore) && now.Before(s.NotAfter)
}

// plainError is the text shown for a failure: what an ACME problem means
// and its detail rather than its type URN, else the error text.
func plainError(err error) string { return describe(err) }

// run writes queued status changes until ctx is done, then writes what is
// left once and returns.
func (b *statusBook) run(ctx context.Context) {
	defer close(b.done)
	if b.out == nil {
		<-ctx.Done()
		return
	}
	for {
		select {
		case <-b.wake:
			if !b.flush(context.Background()) {
				// Try again later rather than hammer a failing store.
				t := time.NewTimer(statusRetryDelay)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
				b.signal()
			}
		case <-ctx.Done():
			b.flush(context.Background())
			return
		}
	}
}

// flush writes every dirty status; it reports whether all writes succeeded.
// Failed ones stay dirty unless they changed meanwhile.
func (b *statusBook) flush(ctx context.Context) bool {
	b.mu.Lock()
	batch := make([]store.CertStatus, 0, len(b.dirty))
	for name := range b.dirty {
		batch = append(batch, b.byName[name])
	}
	clear(b.dirty)
	b.mu.Unlock()

	ok := true
	for _, s := range batch {
		wctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
		err := b.out.PutCertStatus(wctx, s)
		cancel()
		if err == nil {
			// Written: a valid status of a name not in memory (a renewal
			// from its record) is the record's now.
			if b.inMemory != nil && !b.inMemory(s.Hostname) {
				b.mu.Lock()
				if cur, known := b.byName[s.Hostname]; known && cur.UpdatedAt.Equal(s.UpdatedAt) {
					b.releaseLocked(s.Hostname, time.Now())
				}
				b.mu.Unlock()
			}
			continue
		}
		ok = false
		b.log.Warn("writing certificate status", "hostname", s.Hostname, "err", err)
		b.mu.Lock()
		if cur, managed := b.byName[s.Hostname]; managed && cur.UpdatedAt.Equal(s.UpdatedAt) {
			b.dirty[s.Hostname] = struct{}{}
		}
		b.mu.Unlock()
	}
	return ok
}

// wait blocks until run has returned.
func (b *statusBook) wait() { <-b.done }
