// Storage: certmagic's storage over the store's key-value space, with the
// store's lease rows as the distributed lock.

package certs

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/store"
)

// KV is the part of store.DB that Storage needs. Implementations must be safe
// for concurrent use and return errors that wrap store.ErrNotFound for a
// missing key or a lock the owner does not hold.
type KV interface {
	PutKey(ctx context.Context, key string, value []byte) error
	GetKey(ctx context.Context, key string) ([]byte, error)
	DeleteKey(ctx context.Context, key string) error
	ListKeys(ctx context.Context, prefix string, recursive bool) ([]string, error)
	StatKey(ctx context.Context, key string) (store.KeyInfo, error)
	// TryLock takes a free or expired lock, or extends one that owner holds.
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	Unlock(ctx context.Context, name, owner string) error
}

// StorageOptions tunes the locks of a Storage. The zero value gives the
// defaults.
type StorageOptions struct {
	// LockTTL is the lease of a lock. A held lock's lease is renewed in the
	// background, so a long issuance keeps it; if its holder dies, another node
	// takes the lock at most LockTTL after the last renewal. Default 15s.
	LockTTL time.Duration
	// LockRefresh is how often a held lease is renewed. Default LockTTL/3.
	LockRefresh time.Duration
	// LockPoll is how long Lock first waits before asking again for a lock
	// that another holds; each further wait doubles, up to LockPollMax. A
	// holder in the same process wakes the waiters when it unlocks.
	// Default 20ms.
	LockPoll time.Duration
	// LockPollMax is the longest wait between two tries. Default 1s.
	LockPollMax time.Duration
}

// lockPrefix keeps certmagic's lock names apart from other users of the store's locks.
const lockPrefix = "certs/"

// Storage is a certmagic.Storage (and certmagic.Locker, certmagic.TryLocker)
// over a KV, normally the store, so that all nodes of a fleet share their
// certificates, keys and ACME accounts and obtain each certificate once.
type Storage struct {
	kv   KV
	opts StorageOptions
	id   string // random per Storage: this process's part of lock owners
	seq  atomic.Uint64

	mu       sync.Mutex
	held     map[string]*lease        // by lock name
	released map[string]chan struct{} // by lock name: closed when this process unlocks it

	prefetch *prefetch // nil if the KV cannot read prefixes: every Load reads its key alone
}

// lease is a lock this Storage holds, and the goroutine that renews it.
type lease struct {
	owner string
	stop  context.CancelFunc
	done  chan struct{}

	mu sync.Mutex
	// lost ends, with an ErrLeaseLost cause, when the lease is about to run
	// out unrenewed or another holder has the lock: the holder can no
	// longer count on holding it. A later successful renewal (the lock was
	// free again, under the same owner) starts a new lost, so that the next
	// issuance under this lock is not stopped by an old loss.
	lost context.Context
	lose context.CancelCauseFunc
}

func newLease(owner string, stop context.CancelFunc) *lease {
	l := &lease{owner: owner, stop: stop, done: make(chan struct{})}
	l.lost, l.lose = context.WithCancelCause(context.Background())
	return l
}

// current returns the context that ends when the lease is next lost.
func (l *lease) current() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

func (l *lease) markLost(cause error) {
	l.mu.Lock()
	l.lose(cause)
	l.mu.Unlock()
}

// renewed records a successful renewal: after a loss, the lease is held
// again from now on.
func (l *lease) renewed() {
	l.mu.Lock()
	if l.lost.Err() != nil {
		l.lost, l.lose = context.WithCancelCause(context.Background())
	}
	l.mu.Unlock()
}

// ErrLeaseLost is the cause of an IssuanceContext's end when the lease of
// the issuance lock could not be renewed.
var ErrLeaseLost = errors.New("certs: the issuance lock's lease could not be renewed")

// issueLockPrefix is how certmagic names the lock it holds while it
// obtains or renews a certificate: "issue_cert_" + the name (certmagic's
// Config.lockKey with certIssueLockOp; TestIssuanceStopsWhenLeaseLost
// pins it).
const issueLockPrefix = "issue_cert_"

// errReleased ends the issuance contexts of a lock that was released.
var errReleased = errors.New("certs: the issuance lock was released")

var (
	_ certmagic.Storage   = (*Storage)(nil)
	_ certmagic.TryLocker = (*Storage)(nil)
	_ PrefixReader        = (*store.DB)(nil)
)

// NewStorage returns a Storage over kv; the zero StorageOptions gives the
// defaults.
func NewStorage(kv KV, o StorageOptions) *Storage {
	if o.LockTTL <= 0 {
		o.LockTTL = 15 * time.Second
	}
	if o.LockRefresh <= 0 || o.LockRefresh >= o.LockTTL {
		o.LockRefresh = o.LockTTL / 3
	}
	if o.LockPoll <= 0 {
		o.LockPoll = 20 * time.Millisecond
	}
	if o.LockPollMax < o.LockPoll {
		o.LockPollMax = max(time.Second, o.LockPoll)
	}
	return &Storage{kv: kv, opts: o, id: rand.Text(), held: make(map[string]*lease), released: make(map[string]chan struct{}),
		prefetch: newPrefetch(kv)}
}

// Store puts value at key.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	err := s.kv.PutKey(ctx, key, value)
	if l := certificateLoadOf(ctx); l != nil {
		l.written(key, value, false, err)
	}
	return err
}

// Load returns the value at key; the error wraps fs.ErrNotExist if there
// is none. It returns what the last Store of key wrote (certmagic's
// contract), except within a certificate load (withCertificateLoad), which
// reads a certificate's keys at once and answers them as of that read
// (see prefetch).
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	if l := certificateLoadOf(ctx); l != nil && s.prefetch != nil {
		if v, ok, err := s.prefetch.load(ctx, l, key); ok {
			return v, err
		}
	}
	v, err := s.kv.GetKey(ctx, key)
	return v, notExist(err)
}

// Delete deletes key and every key under it. A key that does not exist is not an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	err := s.kv.DeleteKey(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		err = nil
	}
	if l := certificateLoadOf(ctx); l != nil {
		l.written(key, nil, true, err)
	}
	return err
}

// Exists reports whether key is a key or a directory of keys.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.kv.StatKey(ctx, key)
	return err == nil
}

// List returns the keys under path: its immediate children (keys and
// directories), or, if recursive, every key below it. The error wraps
// fs.ErrNotExist if there are none.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	keys, err := s.kv.ListKeys(ctx, path, recursive)
	return keys, notExist(err)
}

// Stat describes key; the error wraps fs.ErrNotExist if there is no such key or directory.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	info, err := s.kv.StatKey(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, notExist(err)
	}
	return certmagic.KeyInfo{Key: info.Key, Modified: info.Modified, Size: info.Size, IsTerminal: info.IsTerminal}, nil
}

// Lock takes the lock name, waiting while another holder (in this process or on
// another node) has it, until ctx ends. The lease is renewed until Unlock.
//
// It asks again after LockPoll, then after twice as long each time, up to
// LockPollMax (with a little jitter, so that waiters on several nodes do not
// ask in step): an issuance usually ends within tens of milliseconds, and
// the waiters then find its certificate in storage.
func (s *Storage) Lock(ctx context.Context, name string) error {
	poll := s.opts.LockPoll
	for {
		released := s.releasedChan(name) // before trying: an unlock after the try wakes us
		ok, err := s.TryLock(ctx, name)
		if ok {
			return nil
		}
		// A database that is away for a moment is waited out like a busy lock.
		if err != nil && !errors.Is(err, store.ErrUnavailable) {
			return err
		}
		t := time.NewTimer(poll + mrand.N(poll/4+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("certs: waiting for lock %q: %w", name, ctx.Err())
		case <-released:
			t.Stop()
		case <-t.C:
			poll = min(2*poll, s.opts.LockPollMax)
		}
	}
}

// releasedChan returns the channel closed when this process next unlocks name.
func (s *Storage) releasedChan(name string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.released[name]
	if c == nil {
		c = make(chan struct{})
		s.released[name] = c
	}
	return c
}

// TryLock takes the lock name if no one holds it, and reports whether it did.
// Every call uses a new owner, so two callers in one process exclude each other too.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	owner := s.id + "-" + strconv.FormatUint(s.seq.Add(1), 10)
	ok, err := s.kv.TryLock(ctx, lockPrefix+name, owner, s.opts.LockTTL)
	if err != nil || !ok {
		return false, err
	}
	rctx, stop := context.WithCancel(context.Background())
	l := newLease(owner, stop)
	go s.renew(rctx, name, l)

	s.mu.Lock()
	old := s.held[name] // a lease of ours that expired without an Unlock
	s.held[name] = l
	s.mu.Unlock()
	if old != nil {
		old.stop()
		old.markLost(errReleased)
	}
	return true, nil
}

// renew extends l's lease every LockRefresh until ctx ends or the lease is
// lost. A failed renewal is retried at the next tick; when the last
// success is so old that the lease runs out before another attempt could
// renew it, l.lost ends: a holder that cannot reach the store cannot store
// what it obtains either, and once the lease runs out another node takes
// the lock and obtains the same certificate. One slow or failed query
// while the lease still has time left stops nothing.
func (s *Storage) renew(ctx context.Context, name string, l *lease) {
	defer close(l.done)
	t := time.NewTicker(s.opts.LockRefresh)
	defer t.Stop()
	lastOK := time.Now() // the lease was taken just before
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.opts.LockRefresh)
		ok, err := s.kv.TryLock(rctx, lockPrefix+name, l.owner, s.opts.LockTTL)
		cancel()
		switch {
		case ctx.Err() != nil:
			return // unlocked meanwhile: the renewal's outcome means nothing
		case err == nil && !ok:
			l.markLost(fmt.Errorf("%w: lock %q was taken by another holder", ErrLeaseLost, name))
			return // expired and taken by another: nothing left to renew
		case err == nil:
			lastOK = time.Now()
			l.renewed()
		case time.Since(lastOK)+s.opts.LockRefresh >= s.opts.LockTTL:
			l.markLost(fmt.Errorf("%w: lock %q: %w", ErrLeaseLost, name, err))
		}
	}
}

// IssuanceContext returns a context for obtaining a certificate for names
// that ends when ctx ends or, if this Storage holds certmagic's issuance
// lock of one of the names, as soon as that lock's lease is lost (it would
// run out before another renewal could succeed, or another holder has
// it); context.Cause then wraps ErrLeaseLost. An Issuer runs its work
// under it, so that a node that lost the store stops instead of placing an
// order whose certificate it could not store, and that another node would
// place again once the lease ran out. Call cancel when done.
func (s *Storage) IssuanceContext(ctx context.Context, names []string) (context.Context, context.CancelFunc) {
	s.mu.Lock()
	var l *lease
	for _, name := range names {
		if l = s.held[issueLockPrefix+name]; l != nil {
			break
		}
	}
	s.mu.Unlock()
	ictx, cancel := context.WithCancelCause(ctx)
	if l == nil {
		return ictx, func() { cancel(nil) }
	}
	lost := l.current()
	stop := context.AfterFunc(lost, func() { cancel(context.Cause(lost)) })
	return ictx, func() {
		stop()
		cancel(nil)
	}
}

// Unlock releases the lock name, taken with Lock or TryLock. A lease that
// expired and that another holder took is not an error: it is released already.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	l := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if l == nil {
		return fmt.Errorf("certs: unlocking %q: not locked here", name)
	}
	// Stop renewing first, so that a renewal cannot take the lock again after the delete.
	l.stop()
	<-l.done
	l.markLost(errReleased) // for an issuance that outlived the lock
	// Release even if the caller's context has ended, or others wait out the lease.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := s.kv.Unlock(uctx, lockPrefix+name, l.owner)
	s.mu.Lock()
	if c := s.released[name]; c != nil {
		close(c)
		delete(s.released, name)
	}
	s.mu.Unlock()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("certs: unlocking %q: %w", name, err)
	}
	return nil
}

// notExist makes a missing key look like a missing file, as certmagic expects.
func notExist(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("certs: %w: %w", err, fs.ErrNotExist)
	}
	return err
}
