// TLS session-ticket keys shared by the nodes of a fleet through the store,
// so a client that resumes on another node skips the full handshake.

package fleet

import (
	"context"
	"crypto/rand"
	"log/slog"
	"sync/atomic"
	"time"
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
	shared sharedKeys[ticketKeyRing]
	apply  func(keys [][32]byte) error
	log    *slog.Logger
	// ring is the keys as last read from the store, read every minute: a
	// rotation another node made is used here at most a minute later, and
	// every key of the ring decrypts on every node meanwhile.
	ring atomic.Pointer[ticketKeyRing]
}

// NewTicketKeys returns the keeper of the keys in st. owner names this node
// as the holder of the rotation lock; apply hands the keys, newest first,
// to the edge (edge.Server.SetSessionTicketKeys).
func NewTicketKeys(st TicketStore, owner string, apply func(keys [][32]byte) error, log *slog.Logger) *TicketKeys {
	return &TicketKeys{apply: apply, log: log, shared: sharedKeys[ticketKeyRing]{
		store: st, owner: owner, key: ticketKeysKey, lock: ticketRotateLock, what: "ticket keys", now: time.Now,
		rotated: ticketKeyRing.rotated,
		logRotated: func(next ticketKeyRing) {
			log.Info("rotated the fleet's session ticket keys", "keys", len(next.Keys))
		},
	}}
}

// Keys returns the keys as last read from the store, newest first.
func (t *TicketKeys) Keys() [][32]byte { return t.ring.Load().keys() }

// Run reads the keys every minute (every second until it has them),
// rotates them when due and applies them, until ctx ends.
func (t *TicketKeys) Run(ctx context.Context) {
	runEvery(ctx, t.log, "session ticket keys", t.refresh, func() time.Duration {
		if t.ring.Load() == nil {
			return time.Second // not shared yet (another node is creating them, or the store is away)
		}
		return ticketCheck
	})
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
	ring, err := t.shared.refresh(ctx)
	if err != nil {
		return err
	}
	keys := ring.keys()
	if len(keys) == 0 {
		return nil // another node is rotating; next time
	}
	t.ring.Store(&ring)
	return t.apply(keys)
}
