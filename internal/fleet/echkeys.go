// ECH keys shared by the nodes of a fleet through the store: every node
// decrypts a ClientHello encrypted with a configuration any node published.

package fleet

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

const (
	// echKeysKey is the store key of the shared ECH keys.
	echKeysKey = "spine/tls/ech-keys"
	// echRotateLock lets one node at a time rotate them.
	echRotateLock = "spine/tls/ech-keys-rotate"
	// ECHRotation is how often a new ECH key starts being published; the
	// key it replaces is still accepted for ECHGrace, so that a client
	// holding the configuration from a DNS answer cached before the
	// rotation still gets ECH without a retry.
	ECHRotation = 24 * time.Hour
	// ECHGrace is how long a replaced key is still accepted.
	ECHGrace = 24 * time.Hour
	// echCheck is how often a node reads the keys (and rotates them when due).
	echCheck = time.Minute
)

// ECHKeys keeps a node's ECH keys equal to the fleet's, kept in the store,
// and rotates them when due (one node at a time, under a lease lock). The
// private keys are secrets: they never reach a log line or the API; the
// configurations are public (DNS publishes them).
type ECHKeys struct {
	shared     sharedKeys[echKeyRing]
	publicName string
	apply      func(keys []tls.EncryptedClientHelloKey) error
	log        *slog.Logger
	now        func() time.Time
	// ring is the keys as last read from the store, read every minute: a
	// rotation another node made is used here at most a minute later,
	// and the replaced key is still accepted for ECHGrace.
	ring atomic.Pointer[echKeyRing]
	// stored: ring was read from the store (not only restored from the
	// snapshot); until then Run reads every second, so that the store's
	// keys win as soon as it answers.
	stored atomic.Bool
}

// NewECHKeys returns the keeper of the ECH keys for publicName (the outer
// SNI clients show) in st. owner names this node as the holder of the
// rotation lock; apply hands the keys, newest first, to the edge
// (edge.Server.SetECHKeys).
func NewECHKeys(st TicketStore, owner, publicName string, apply func([]tls.EncryptedClientHelloKey) error, log *slog.Logger) *ECHKeys {
	e := &ECHKeys{publicName: publicName, apply: apply, log: log, now: time.Now}
	e.shared = sharedKeys[echKeyRing]{
		store: st, owner: owner, key: echKeysKey, lock: echRotateLock, what: "ECH keys",
		now: func() time.Time { return e.now() },
		rotated: func(r echKeyRing, now time.Time) (echKeyRing, bool, error) {
			return r.rotated(now, publicName)
		},
		logRotated: func(next echKeyRing) {
			log.Info("rotated the fleet's ECH keys", "public_name", publicName, "keys", len(next.Keys))
		},
	}
	return e
}

// PublicName is the public name of the configurations.
func (e *ECHKeys) PublicName() string { return e.publicName }

// Published returns the public name and the ECHConfigList published for
// the node's names (an HTTPS record's ech parameter), or "" and nil for a
// nil e (ECH off) or before the keys are read.
func (e *ECHKeys) Published() (publicName string, configList []byte) {
	if e == nil {
		return "", nil
	}
	return e.publicName, e.ConfigList()
}

// ConfigList returns the ECHConfigList to publish (in an HTTPS record's
// ech parameter): the newest configuration, or nil before the keys are read.
func (e *ECHKeys) ConfigList() []byte {
	r := e.ring.Load()
	if r == nil || len(r.Keys) == 0 {
		return nil
	}
	return configList(r.Keys[0].Config)
}

// Load makes ECH work from the node's first handshake: it applies the
// keys of snap (the snapshot the node started from with the store away;
// nil: none) and then the store's, if it answers; with neither, ECH starts
// once Run reads them. What it could not use is logged, not returned.
func (e *ECHKeys) Load(ctx context.Context, snap *Snapshot) {
	if snap != nil {
		if err := e.Restore(snap.ECHKeys); err != nil {
			e.log.Warn("the snapshot's ECH keys are unusable", "err", err)
		}
	}
	if err := e.Refresh(ctx); err != nil {
		if e.ConfigList() != nil {
			e.log.Warn("ECH keys not read from the store; using the snapshot's until it answers", "err", err)
		} else {
			e.log.Warn("ECH keys not read yet; ECH starts once they are", "err", err)
		}
	}
}

// Run reads the keys every minute (every second until it has them),
// rotates them when due and applies them, until ctx ends.
func (e *ECHKeys) Run(ctx context.Context) {
	runEvery(ctx, e.log, "ECH keys", e.Refresh, func() time.Duration {
		if !e.stored.Load() {
			return time.Second
		}
		return echCheck
	})
}

// echKey is one shared ECH key.
type echKey struct {
	Config     []byte    `json:"config"`      // the ECHConfig, as published
	PrivateKey []byte    `json:"private_key"` // X25519
	PublicName string    `json:"public_name"`
	Created    time.Time `json:"created"`
}

// echKeyRing is the stored list of keys, newest first.
type echKeyRing struct {
	Keys []echKey `json:"keys"`
}

// tlsKeys returns the keys for crypto/tls: the newest is sent as the retry
// configuration to a client whose configuration is stale or unknown.
func (r *echKeyRing) tlsKeys() []tls.EncryptedClientHelloKey {
	out := make([]tls.EncryptedClientHelloKey, 0, len(r.Keys))
	for i, k := range r.Keys {
		out = append(out, tls.EncryptedClientHelloKey{Config: k.Config, PrivateKey: k.PrivateKey, SendAsRetry: i == 0})
	}
	return out
}

// rotated returns the ring with a new key in front if the newest is older
// than ECHRotation, was made for another public name, or there is none;
// without keys replaced more than ECHGrace ago; and whether it changed.
func (r echKeyRing) rotated(now time.Time, publicName string) (echKeyRing, bool, error) {
	changed := false
	if len(r.Keys) == 0 || now.Sub(r.Keys[0].Created) >= ECHRotation || r.Keys[0].PublicName != publicName {
		k, err := newECHKey(publicName, r.Keys, now)
		if err != nil {
			return r, false, err
		}
		r.Keys = append([]echKey{k}, r.Keys...)
		changed = true
	}
	// Keys[i] was replaced when Keys[i-1] was created.
	for i := 1; i < len(r.Keys); i++ {
		if now.Sub(r.Keys[i-1].Created) >= ECHGrace {
			r.Keys = r.Keys[:i]
			changed = true
			break
		}
	}
	return r, changed, nil
}

// newECHKey makes an X25519 key and its ECHConfig (RFC 9849 section 4):
// HKDF-SHA256 with AES-128-GCM or ChaCha20-Poly1305, a config_id that no
// key of others uses.
func newECHKey(publicName string, others []echKey, now time.Time) (echKey, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return echKey{}, err
	}
	var id [1]byte
	for {
		rand.Read(id[:])
		taken := false
		for _, o := range others {
			if len(o.Config) > 4 && o.Config[4] == id[0] {
				taken = true
			}
		}
		if !taken {
			break
		}
	}
	var b cryptobyte.Builder
	b.AddUint16(0xfe0d) // version: ECH
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(id[0])
		b.AddUint16(0x0020) // DHKEM(X25519, HKDF-SHA256)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(priv.PublicKey().Bytes()) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16(0x0001) // HKDF-SHA256
			b.AddUint16(0x0001) // AES-128-GCM
			b.AddUint16(0x0001) // HKDF-SHA256
			b.AddUint16(0x0003) // ChaCha20-Poly1305
		})
		b.AddUint8(0) // maximum_name_length: clients pad as they see fit
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(publicName)) })
		b.AddUint16(0) // no extensions
	})
	config, err := b.Bytes()
	if err != nil {
		return echKey{}, fmt.Errorf("fleet: encoding the ECH configuration: %w", err)
	}
	return echKey{Config: config, PrivateKey: priv.Bytes(), PublicName: publicName, Created: now.UTC()}, nil
}

// configList wraps ECHConfigs in an ECHConfigList.
func configList(configs ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, c := range configs {
			b.AddBytes(c)
		}
	})
	return b.BytesOrPanic()
}

// Refresh rotates the stored keys if due and applies them.
func (e *ECHKeys) Refresh(ctx context.Context) error {
	ring, err := e.shared.refresh(ctx)
	if err != nil {
		return err
	}
	if len(ring.Keys) == 0 {
		return nil // another node is rotating; next time
	}
	e.ring.Store(&ring)
	e.stored.Store(true)
	return e.apply(ring.tlsKeys())
}

// SnapshotKeys returns the keys in use, encoded for the snapshot
// (Snapshot.ECHKeys), or nil before they are read. Secret: only for the
// snapshot, which seals them.
func (e *ECHKeys) SnapshotKeys() []byte {
	r := e.ring.Load()
	if r == nil || len(r.Keys) == 0 {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil
	}
	return b
}

// Restore applies the keys of a snapshot (Snapshot.ECHKeys) to a node
// that started from it with the store away, unless keys were read from the
// store meanwhile: ECH with the configuration published before the
// restart. Only keys made for this public name are kept; they are not
// rotated until the store answers (Refresh, every second until then,
// replaces them with the store's). Call it before Run.
func (e *ECHKeys) Restore(b []byte) error {
	if len(b) == 0 || e.stored.Load() {
		return nil
	}
	var ring echKeyRing
	if err := json.Unmarshal(b, &ring); err != nil {
		return fmt.Errorf("fleet: decoding the snapshot's ECH keys: %w", err) // the value, never shown
	}
	ring.Keys = slices.DeleteFunc(ring.Keys, func(k echKey) bool { return k.PublicName != e.publicName })
	if len(ring.Keys) == 0 {
		return nil
	}
	if !e.ring.CompareAndSwap(nil, &ring) {
		return nil // read from the store meanwhile
	}
	return e.apply(ring.tlsKeys())
}
