// QUIC keys shared by the nodes of a fleet through the store, so that an
// address-validation token made by one node is good on another, and a node
// answers a packet of another node's connection with a stateless reset the
// client recognises.

package fleet

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

const (
	// quicKeysKey is the store key of the shared QUIC keys.
	quicKeysKey = "spine/quic/keys"
	// quicKeysLock lets one node create them.
	quicKeysLock = "spine/quic/keys-create"
)

// QUICKeys are the fleet's QUIC keys (see edge.QUICKeys). They are not
// rotated: quic-go takes them once, when its transport starts, and RFC 9000
// (section 10.3.1) wants the stateless reset key to outlive every
// connection; an address-validation token expires on its own (at most 24
// hours). Secrets: they never reach a log line or the API.
type QUICKeys struct {
	StatelessReset [32]byte
	Token          [32]byte
}

type storedQUICKeys struct {
	StatelessReset []byte    `json:"stateless_reset"`
	Token          []byte    `json:"token"`
	Created        time.Time `json:"created"`
}

// LoadQUICKeys returns the fleet's QUIC keys from st, creating them (one
// node at a time, under a lease lock) if the store has none yet.
func LoadQUICKeys(ctx context.Context, st TicketStore, owner string) (QUICKeys, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for range 30 {
		k, ok, err := readQUICKeys(ctx, st)
		if err != nil || ok {
			return k, err
		}
		locked, err := st.TryLock(ctx, quicKeysLock, owner, 30*time.Second)
		if err != nil {
			return QUICKeys{}, fmt.Errorf("fleet: locking QUIC keys: %w", err)
		}
		if locked {
			k, err := createQUICKeys(ctx, st)
			st.Unlock(context.WithoutCancel(ctx), quicKeysLock, owner)
			return k, err
		}
		// Another node is creating them.
		select {
		case <-ctx.Done():
			return QUICKeys{}, fmt.Errorf("fleet: waiting for the QUIC keys: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return QUICKeys{}, errors.New("fleet: the QUIC keys were not created in time")
}

// QUICKeysForNode returns the fleet's QUIC keys for a starting node
// (LoadQUICKeys). When the store cannot give them, as when the node started
// from its snapshot (snap, nil if it did not) with PostgreSQL away, they are
// the snapshot's (the store's as of the snapshot: they are never rotated),
// or nil, with a warning: the node then uses keys of its own until it
// restarts.
func QUICKeysForNode(ctx context.Context, st TicketStore, owner string, snap *Snapshot, log *slog.Logger) *QUICKeys {
	k, err := LoadQUICKeys(ctx, st, owner)
	if err != nil && snap != nil {
		if sk, ok := snap.QUIC(); ok {
			log.Warn("HTTP/3: the fleet's QUIC keys could not be read from the store; using the snapshot's", "err", err)
			k, err = sk, nil
		}
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			log.Warn("HTTP/3: the fleet's QUIC keys could not be read; this node uses keys of its own until it restarts "+
				"(clients of other nodes that come here do a full handshake and time out instead of a stateless reset)", "err", err)
		}
		return nil
	}
	return &k
}

func createQUICKeys(ctx context.Context, st TicketStore) (QUICKeys, error) {
	// Read again under the lock: another node may have created them.
	if k, ok, err := readQUICKeys(ctx, st); err != nil || ok {
		return k, err
	}
	var k QUICKeys
	rand.Read(k.StatelessReset[:])
	rand.Read(k.Token[:])
	b, err := json.Marshal(storedQUICKeys{StatelessReset: k.StatelessReset[:], Token: k.Token[:], Created: time.Now().UTC()})
	if err != nil {
		return QUICKeys{}, err
	}
	if err := st.PutKey(ctx, quicKeysKey, b); err != nil {
		return QUICKeys{}, fmt.Errorf("fleet: storing QUIC keys: %w", err)
	}
	return k, nil
}

func readQUICKeys(ctx context.Context, st TicketStore) (QUICKeys, bool, error) {
	b, err := st.GetKey(ctx, quicKeysKey)
	if errors.Is(err, store.ErrNotFound) {
		return QUICKeys{}, false, nil
	}
	if err != nil {
		return QUICKeys{}, false, fmt.Errorf("fleet: reading QUIC keys: %w", err)
	}
	var s storedQUICKeys
	if err := json.Unmarshal(b, &s); err != nil || len(s.StatelessReset) != 32 || len(s.Token) != 32 {
		return QUICKeys{}, false, errors.New("fleet: the stored QUIC keys are malformed") // the value, never shown
	}
	return QUICKeys{StatelessReset: [32]byte(s.StatelessReset), Token: [32]byte(s.Token)}, true, nil
}
