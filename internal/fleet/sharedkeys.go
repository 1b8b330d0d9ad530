// Key rings that the nodes of a fleet share through the store and rotate
// one node at a time under a lease lock: the session-ticket keys
// (tickets.go) and the ECH keys (echkeys.go).

package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// sharedKeys is a key ring of type R (JSON) kept in the store at key and
// rotated by one node at a time under the lease lock lock.
type sharedKeys[R any] struct {
	store     TicketStore
	owner     string // this node, as the holder of lock
	key, lock string
	what      string // names the ring in errors: "ticket keys"
	now       func() time.Time
	// rotated returns the ring rotated at now and whether that changed it.
	rotated func(ring R, now time.Time) (R, bool, error)
	// logRotated says that this node rotated the ring into next.
	logRotated func(next R)
}

// refresh returns what the store holds, after rotating it if due:
// under the lease lock, read again under it (another node may have rotated
// meanwhile). Whichever node rotated, the ring is read again after; a ring
// another node holds the lock of stays due, and the next refresh retries.
func (s *sharedKeys[R]) refresh(ctx context.Context) (R, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ring, err := s.read(ctx)
	if err != nil {
		return ring, err
	}
	if _, due, _ := s.rotated(ring, s.now()); !due {
		return ring, nil
	}
	ok, err := s.store.TryLock(ctx, s.lock, s.owner, 30*time.Second)
	if err != nil {
		return ring, fmt.Errorf("fleet: locking %s: %w", s.what, err)
	}
	if ok {
		err := s.rotate(ctx)
		s.store.Unlock(context.WithoutCancel(ctx), s.lock, s.owner)
		if err != nil {
			return ring, err
		}
	}
	return s.read(ctx)
}

// rotate rotates the stored ring if it is still due; the lock is held.
func (s *sharedKeys[R]) rotate(ctx context.Context) error {
	ring, err := s.read(ctx)
	if err != nil {
		return err
	}
	next, changed, err := s.rotated(ring, s.now())
	if err != nil || !changed {
		return err
	}
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := s.store.PutKey(ctx, s.key, b); err != nil {
		return fmt.Errorf("fleet: storing %s: %w", s.what, err)
	}
	s.logRotated(next)
	return nil
}

// read returns the stored ring, the zero R if there is none yet.
func (s *sharedKeys[R]) read(ctx context.Context) (R, error) {
	var ring R
	b, err := s.store.GetKey(ctx, s.key)
	if errors.Is(err, store.ErrNotFound) {
		return ring, nil
	}
	if err != nil {
		return ring, fmt.Errorf("fleet: reading %s: %w", s.what, err)
	}
	if err := json.Unmarshal(b, &ring); err != nil {
		return ring, fmt.Errorf("fleet: decoding %s: %w", s.what, err) // the value, never shown
	}
	return ring, nil
}

// runEvery calls step, then waits wait() (asked after each step), until ctx
// ends. A failed step is logged as a warning with msg, unless ctx ended or
// the store is away (the store's health says that once).
func runEvery(ctx context.Context, log *slog.Logger, msg string, step func(context.Context) error, wait func() time.Duration) {
	for {
		if err := step(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrUnavailable) {
			log.Warn(msg, "err", err)
		}
		timer := time.NewTimer(wait())
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}
