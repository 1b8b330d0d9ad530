// A node's part of its fleet, as one value: what node.Start builds and
// runs of this package.

package fleet

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

// Node is one node's part of its fleet. Join makes it, with the store (or,
// with the store unreachable, the snapshot to serve from); Build adds the
// heartbeat, the ticket-key and ECH keepers and the snapshot writer once
// the edge exists; Run runs them.
type Node struct {
	ID        string    // stable, kept in <data>/node-id
	StartedAt time.Time // of this process
	Health    *StoreHealth
	// Loaded is the snapshot the node started from because the store was
	// unreachable (fail static); nil when the store answered at start.
	Loaded *Snapshot
	// Published is what the node publishes for its names; its caller sets
	// HTTP3 and Serves, Build sets ECH.
	Published Published
	Prepare   *Prepare      // bootstrap and CA, once; set by the caller
	Certs     *Certificates // the manager's, else the snapshot's; set by the caller
	Members   *Membership
	Tickets   *TicketKeys
	ECH       *ECHKeys  // nil: ECH off
	QUIC      *QUICKeys // the fleet's, in use; nil: HTTP/3 off or keys of the node's own
	Snapshots *SnapshotWriter
	log       *slog.Logger
	source    func() *SnapshotSource
}

// MakeDataDir creates the data folder dir (0700), and makes it 0700 if it
// exists.
func MakeDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating data folder %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("securing data folder %s: %w", dir, err)
	}
	return nil
}

// Join reads the node's ID in the data folder dir and opens the store at
// dsn, or, if PostgreSQL cannot be reached and dir holds a snapshot, the
// store lazily and the snapshot to serve meanwhile (Open).
func Join(ctx context.Context, dsn, dir string, keys *secrets.Keyring, log *slog.Logger) (*store.DB, *Node, error) {
	f := &Node{StartedAt: time.Now().UTC(), log: log}
	id, err := NodeID(dir)
	if err != nil {
		return nil, nil, err
	}
	f.ID = id
	db, snap, err := Open(ctx, dsn, dir, keys, log)
	if err != nil {
		return nil, nil, err
	}
	f.Health = NewStoreHealth(log, snap == nil)
	f.Loaded = snap
	return db, f, nil
}

// Static reports whether the node started from its snapshot.
func (f *Node) Static() bool { return f.Loaded != nil }

// BuildConfig is what Build needs of the rest of the node.
type BuildConfig struct {
	Store interface {
		MemberStore
		TicketStore
	}
	// Self is the node's record in the node list (its ID and StartedAt
	// are set by Build).
	Self    store.Node
	DataDir string
	// ECHName is the public name of ECH; "" leaves ECH off, and
	// ECHDisabled says whether the operator turned it off (else Build
	// says why it is off).
	ECHName     string
	ECHDisabled bool
	// SetTicketKeys and SetECHKeys hand keys to the edge.
	SetTicketKeys func(keys [][32]byte) error
	SetECHKeys    func(keys []tls.EncryptedClientHelloKey, publicName string) error
	// Source is what the snapshot writer writes, without the fleet's keys
	// (Build adds the ticket, ECH and QUIC keys); nil until a sync
	// succeeded.
	Source func() *SnapshotSource
}

// Build builds the membership, the ticket-key keeper, the ECH keeper
// (unless ECH is off) and the snapshot writer.
func (f *Node) Build(c BuildConfig) {
	c.Self.ID, c.Self.StartedAt = f.ID, f.StartedAt
	f.Members = NewMembership(c.Store, c.Self, f.Health)
	f.Tickets = NewTicketKeys(c.Store, f.ID, c.SetTicketKeys, f.log)
	if name := c.ECHName; name != "" {
		f.ECH = NewECHKeys(c.Store, f.ID, name, func(keys []tls.EncryptedClientHelloKey) error {
			return c.SetECHKeys(keys, name)
		}, f.log)
		f.Published.ECH = f.ECH
	} else if !c.ECHDisabled {
		f.log.Info("Encrypted Client Hello is off: it needs a public name (give --ech-public-name, or --domain for ech.<domain>)")
	}
	f.source = c.Source
	f.Snapshots = NewSnapshotWriter(c.DataDir, f.Source, f.log)
}

// Source is what the snapshot writer writes: BuildConfig.Source's, with
// the fleet's ticket, ECH and QUIC keys; nil until a sync succeeded.
func (f *Node) Source() *SnapshotSource {
	src := f.source()
	if src == nil {
		return nil
	}
	src.TicketKeys, src.QUICKeys = f.Tickets.Keys(), f.QUIC
	if f.ECH != nil {
		src.ECHKeys = f.ECH.SnapshotKeys()
	}
	return src
}

// QUICKeysFor returns the fleet's QUIC keys (the snapshot's if the node
// started from it and st cannot give them; nil: keys of the node's own),
// and keeps them for the snapshot.
func (f *Node) QUICKeysFor(ctx context.Context, st TicketStore) *QUICKeys {
	f.QUIC = QUICKeysForNode(ctx, st, f.ID, f.Loaded, f.log)
	return f.QUIC
}

// Run starts the heartbeat, the ticket-key and ECH keepers and the
// snapshot writer in wg; they stop when ctx ends.
func (f *Node) Run(ctx context.Context, wg *sync.WaitGroup) {
	for _, run := range []func(context.Context){f.Members.Run, f.Tickets.Run, f.Snapshots.Run} {
		wg.Go(func() { run(ctx) })
	}
	if f.ECH != nil {
		wg.Go(func() { f.ECH.Run(ctx) })
	}
}
