// TLS session-ticket keys shared by the nodes of a fleet through the store,
// so a client that resumes on another node skips the full handshake.

package fleet

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

const (
	// ticketKeysKey is the store key of the shared keys.
	ticketKeysKey = "spine/tls/ticket-keys"
	// ticketRotateLock lets one node at a time rotate them.
	ticketRotateLock = "spine/tls/ticket-keys-rotate"
	// TicketRotation is how often a new key starts encrypting tickets; the
	// key it replaces still decrypts for one more period.
	TicketRotation = 12 * time.Hour
	// ticketCheck is how often a node reads the keys (and rotates them when due).
	ticketCheck = time.Minute
)

// TicketStore is the part of the store that TicketKeys needs.
type TicketStore interface {
	GetKey(ctx context.Context, key string) ([]byte, error)
	PutKey(ctx context.Context, key string, value []byte) error
	TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	Unlock(ctx context.Context, name, owner string) error
}

// TicketKeys keeps a node's session-ticket keys equal to the fleet's, kept
// in the store, and rotates them when due (one node at a time, under a
// lease lock). Keys are secrets: they never reach a log line or the API.
type TicketKeys struct {
	store TicketStore
	owner string
	apply func(keys [][32]byte) error
	log   *slog.Logger
	// ring is the keys as last read from the store, read every minute: a
	// rotation another node made is used here at most a minute later, and
	// every key of the ring decrypts on every node meanwhile.
	ring atomic.Pointer[ticketKeyRing]
}

// NewTicketKeys returns the keeper of the keys in st. owner names this node
// as the holder of the rotation lock; apply hands the keys, newest first,
// to the edge (edge.Server.SetSessionTicketKeys).
func NewTicketKeys(st TicketStore, owner string, apply func(keys [][32]byte) error, log *slog.Logger) *TicketKeys {
	return &TicketKeys{store: st, owner: owner, apply: apply, log: log}
}

// Keys returns the keys as last read from the store, newest first.
func (t *TicketKeys) Keys() [][32]byte { return t.ring.Load().keys() }

// Run reads the keys every minute (every second until it has them),
// rotates them when due and applies them, until ctx ends.
func (t *TicketKeys) Run(ctx context.Context) {
	for {
		if err := t.refresh(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrUnavailable) {
			t.log.Warn("session ticket keys", "err", err)
		}
		wait := ticketCheck
		if t.ring.Load() == nil {
			wait = time.Second // not shared yet (another node is creating them, or the store is away)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// ticketKey is one shared session-ticket key.
type ticketKey struct {
	Key     []byte    `json:"key"` // 32 bytes
	Created time.Time `json:"created"`
}

// ticketKeyRing is the stored list of keys, newest first.
type ticketKeyRing struct {
	Keys []ticketKey `json:"keys"`
}

// keys returns the keys for the edge, newest first.
func (r *ticketKeyRing) keys() [][32]byte {
	if r == nil {
		return nil
	}
	var out [][32]byte
	for _, k := range r.Keys {
		if len(k.Key) == 32 {
			out = append(out, [32]byte(k.Key))
		}
	}
	return out
}

// rotated returns the ring with a new key in front if the newest is older
// than TicketRotation (or there is none), without keys that stopped
// encrypting more than one period ago; and whether it changed.
func (r ticketKeyRing) rotated(now time.Time) (ticketKeyRing, bool, error) {
	changed := false
	if len(r.Keys) == 0 || now.Sub(r.Keys[0].Created) >= TicketRotation {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return r, false, err
		}
		r.Keys = append([]ticketKey{{Key: k, Created: now}}, r.Keys...)
		changed = true
	}
	// Keys[i] stopped encrypting when Keys[i-1] was created.
	for i := 1; i < len(r.Keys); i++ {
		if now.Sub(r.Keys[i-1].Created) >= TicketRotation {
			r.Keys = r.Keys[:i]
			changed = true
			break
		}
	}
	return r, changed, nil
}

// refresh rotates the stored keys if due and applies them.
func (t *TicketKeys) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ring, err := t.read(ctx)
	if err != nil {
		return err
	}
	if _, due, _ := ring.rotated(time.Now()); due {
		ok, err := t.store.TryLock(ctx, ticketRotateLock, t.owner, 30*time.Second)
		if err != nil {
			return fmt.Errorf("fleet: locking ticket keys: %w", err)
		}
		if ok {
			err := t.rotate(ctx)
			t.store.Unlock(context.WithoutCancel(ctx), ticketRotateLock, t.owner)
			if err != nil {
				return err
			}
		}
		// Whoever rotated, read what the store holds now.
		if ring, err = t.read(ctx); err != nil {
			return err
		}
	}
	keys := ring.keys()
	if len(keys) == 0 {
		return nil // another node is rotating; next time
	}
	t.ring.Store(&ring)
	return t.apply(keys)
}

func (t *TicketKeys) rotate(ctx context.Context) error {
	// Read again under the lock: another node may have rotated meanwhile.
	ring, err := t.read(ctx)
	if err != nil {
		return err
	}
	next, changed, err := ring.rotated(time.Now())
	if err != nil || !changed {
		return err
	}
	b, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := t.store.PutKey(ctx, ticketKeysKey, b); err != nil {
		return fmt.Errorf("fleet: storing ticket keys: %w", err)
	}
	t.log.Info("rotated the fleet's session ticket keys", "keys", len(next.Keys))
	return nil
}

func (t *TicketKeys) read(ctx context.Context) (ticketKeyRing, error) {
	var ring ticketKeyRing
	b, err := t.store.GetKey(ctx, ticketKeysKey)
	if errors.Is(err, store.ErrNotFound) {
		return ring, nil
	}
	if err != nil {
		return ring, fmt.Errorf("fleet: reading ticket keys: %w", err)
	}
	if err := json.Unmarshal(b, &ring); err != nil {
		return ring, fmt.Errorf("fleet: decoding ticket keys: %w", err) // the value, never shown
	}
	return ring, nil
}
