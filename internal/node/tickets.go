// TLS session-ticket keys shared by the nodes of a fleet through the store,
// so a client that resumes on another node skips the full handshake.

package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

const (
	// ticketKeysKey is the store key of the shared keys.
	ticketKeysKey = "spine/tls/ticket-keys"
	// ticketRotateLock lets one node at a time rotate them.
	ticketRotateLock = "spine/tls/ticket-keys-rotate"
	// ticketRotation is how often a new key starts encrypting tickets; the
	// key it replaces still decrypts for one more period.
	ticketRotation = 12 * time.Hour
	// ticketCheck is how often a node reads the keys (and rotates them when due).
	ticketCheck = time.Minute
)

// ticketKey is one shared session-ticket key.
type ticketKey struct {
	Key     []byte    `json:"key"` // 32 bytes
	Created time.Time `json:"created"`
}

// ticketKeyRing is the stored list of keys, newest first. Keys are secrets:
// they never reach a log line or the API.
type ticketKeyRing struct {
	Keys []ticketKey `json:"keys"`
}

// keys returns the keys for edge.SetSessionTicketKeys, newest first.
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

func ticketKeysFrom(raw [][]byte) [][32]byte {
	var out [][32]byte
	for _, k := range raw {
		if len(k) == 32 {
			out = append(out, [32]byte(k))
		}
	}
	return out
}

// rotated returns the ring with a new key in front if the newest is older
// than ticketRotation (or there is none), without keys that stopped
// encrypting more than one period ago; and whether it changed.
func (r ticketKeyRing) rotated(now time.Time) (ticketKeyRing, bool, error) {
	changed := false
	if len(r.Keys) == 0 || now.Sub(r.Keys[0].Created) >= ticketRotation {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return r, false, err
		}
		r.Keys = append([]ticketKey{{Key: k, Created: now}}, r.Keys...)
		changed = true
	}
	// Keys[i] stopped encrypting when Keys[i-1] was created.
	for i := 1; i < len(r.Keys); i++ {
		if now.Sub(r.Keys[i-1].Created) >= ticketRotation {
			r.Keys = r.Keys[:i]
			changed = true
			break
		}
	}
	return r, changed, nil
}

// ticketKeys keeps the edge's ticket keys equal to the store's, and rotates
// them when due, until ctx ends.
func (n *Node) ticketKeys(ctx context.Context) {
	for {
		if err := n.refreshTicketKeys(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, store.ErrUnavailable) {
			n.log.Warn("session ticket keys", "err", err)
		}
		wait := ticketCheck
		if n.fleet.ticketKeys.Load() == nil {
			wait = time.Second // not shared yet (another node is creating them, or the store is away)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// refreshTicketKeys rotates the stored keys if due (one node at a time,
// under a lease lock) and hands them to the edge.
func (n *Node) refreshTicketKeys(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ring, err := n.readTicketKeys(ctx)
	if err != nil {
		return err
	}
	if _, due, _ := ring.rotated(time.Now()); due {
		ok, err := n.db.TryLock(ctx, ticketRotateLock, n.fleet.id, 30*time.Second)
		if err != nil {
			return fmt.Errorf("locking ticket keys: %w", err)
		}
		if ok {
			err := n.rotateTicketKeys(ctx)
			n.db.Unlock(context.WithoutCancel(ctx), ticketRotateLock, n.fleet.id)
			if err != nil {
				return err
			}
		}
		// Whoever rotated, read what the store holds now.
		if ring, err = n.readTicketKeys(ctx); err != nil {
			return err
		}
	}
	keys := ring.keys()
	if len(keys) == 0 {
		return nil // another node is rotating; next time
	}
	n.fleet.ticketKeys.Store(&ring)
	return n.edge.SetSessionTicketKeys(keys)
}

func (n *Node) rotateTicketKeys(ctx context.Context) error {
	// Read again under the lock: another node may have rotated meanwhile.
	ring, err := n.readTicketKeys(ctx)
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
	if err := n.db.PutKey(ctx, ticketKeysKey, b); err != nil {
		return fmt.Errorf("storing ticket keys: %w", err)
	}
	n.log.Info("rotated the fleet's session ticket keys", "keys", len(next.Keys))
	return nil
}

func (n *Node) readTicketKeys(ctx context.Context) (ticketKeyRing, error) {
	var ring ticketKeyRing
	b, err := n.db.GetKey(ctx, ticketKeysKey)
	if errors.Is(err, store.ErrNotFound) {
		return ring, nil
	}
	if err != nil {
		return ring, fmt.Errorf("reading ticket keys: %w", err)
	}
	if err := json.Unmarshal(b, &ring); err != nil {
		return ring, fmt.Errorf("decoding ticket keys: %w", err) // the value, never shown
	}
	return ring, nil
}
