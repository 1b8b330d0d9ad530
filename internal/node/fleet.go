// The node's fleet-mode wiring: the parts of package fleet, and starting
// from the snapshot when the store is unreachable (fail static).

package node

import (
	"context"
	"crypto/tls"
	"time"

	"github.com/spine-platform/spine/internal/api"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/syncer"
)

// fleetState is the fleet-mode part of a Node.
type fleetState struct {
	id        string    // stable node ID, kept in <data>/node-id
	startedAt time.Time // of this process
	storage   *certs.Storage
	issuer    *certs.CAIssuer
	health    *fleet.StoreHealth
	members   *fleet.Membership
	tickets   *fleet.TicketKeys
	ech       *fleet.ECHKeys  // nil: ECH off
	published fleet.Published // ALPN and ECH in HTTPS records and the API
	quic      *fleet.QUICKeys // the fleet's, in use; nil: HTTP/3 off or keys of the node's own (quic.go). Set before startFleet
	snapshots *fleet.SnapshotWriter

	// static is set when the node started from its snapshot (loaded)
	// because the store was unreachable.
	static bool
	loaded *fleet.Snapshot
	certs  *fleet.Certificates // the manager's, else the snapshot's
	// sources are the edge's certificate sources in order (upload, suspended, certs) and the snapshot's.
	sources *certs.Sources

	prepare *fleet.Prepare // bootstrap and CA, once

	reads     *api.StaleReads  // the platform's store: API reads answered while the store is away
	suspended *certs.Suspended // certificates of suspended projects' hostnames
	uploaded  certs.Uploaded   // certificates projects uploaded
}

// openStore opens the store, or, if PostgreSQL cannot be reached and the
// data folder holds a snapshot, starts from the snapshot (fleet.Open) and
// connects to the store when it comes back.
func (n *Node) openStore(ctx context.Context, keys *secrets.Keyring) (*store.DB, error) {
	f := &n.fleet
	f.startedAt = time.Now().UTC()
	id, err := fleet.NodeID(n.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	f.id = id
	db, snap, err := fleet.Open(ctx, n.cfg.Store, n.cfg.DataDir, keys, n.log)
	if err != nil {
		return nil, err
	}
	f.health = fleet.NewStoreHealth(n.log, snap == nil)
	f.static, f.loaded = snap != nil, snap
	return db, nil
}

// buildFleet builds the membership, the ticket-key keeper and the snapshot
// writer, once the listeners and the edge exist.
func (n *Node) buildFleet() {
	f := &n.fleet
	f.members = fleet.NewMembership(n.db, store.Node{
		ID: f.id, Version: n.cfg.Version, StartedAt: f.startedAt,
		HTTPSAddr: n.HTTPSAddr(), HTTPAddr: n.HTTPAddr(), APIAddr: n.APIAddr(),
	}, f.health)
	f.tickets = fleet.NewTicketKeys(n.db, f.id, n.edge.SetSessionTicketKeys, n.log)
	f.snapshots = fleet.NewSnapshotWriter(n.cfg.DataDir, n.snapshotSource, n.log)
}

// buildECH builds the keeper of the fleet's ECH keys, which hands them to
// the edge; without a public name, ECH stays off.
func (n *Node) buildECH() {
	name := n.cfg.ECHName(n.cfg.Domain)
	if name == "" {
		if !n.cfg.DisableECH {
			n.log.Info("Encrypted Client Hello is off: it needs a public name (give --ech-public-name, or --domain for ech.<domain>)")
		}
		return
	}
	n.fleet.ech = fleet.NewECHKeys(n.db, n.fleet.id, name, func(keys []tls.EncryptedClientHelloKey) error {
		return n.edge.SetECHKeys(keys, name)
	}, n.log)
	n.fleet.published.ECH = n.fleet.ech
}

// ECH returns the public name and the ECHConfigList published for the
// node's names (an HTTPS record's ech parameter), or "" and nil when ECH
// is off or its keys are not read yet.
func (n *Node) ECH() (publicName string, configList []byte) { return n.fleet.ech.Published() }

// startFleet starts the heartbeat, the ticket-key keeper and the snapshot
// writer; they stop when ctx ends.
func (n *Node) startFleet(ctx context.Context) {
	f := &n.fleet
	for _, run := range []func(context.Context){f.members.Run, f.tickets.Run, f.snapshots.Run} {
		n.wg.Go(func() { run(ctx) })
	}
	if f.ech != nil {
		n.wg.Go(func() { f.ech.Run(ctx) })
	}
}

// snapshotSource is what the snapshot writer writes: nil until a sync
// succeeded.
func (n *Node) snapshotSource() *fleet.SnapshotSource {
	rec := n.syncer.Last()
	if rec == nil {
		return nil
	}
	src := &fleet.SnapshotSource{
		Shards:         rec.Applied,
		Certificate:    n.fleet.sources.Cached,
		TicketKeys:     n.fleet.tickets.Keys(),
		Tokens:         n.fleet.reads.Tokens,
		TokensVersion:  n.fleet.reads.TokensVersion(),
		TokensComplete: n.fleet.reads.TokensComplete(),
		Suspended:      rec.Suspended,
		QUICKeys:       n.fleet.quic,
		Keyring:        n.db.Keyring(),
	}
	if n.fleet.ech != nil {
		src.ECHKeys = n.fleet.ech.SnapshotKeys()
	}
	return src
}

// serveSnapshot makes the edge serve a snapshot read at start: its ticket
// keys, and its routes through the sync loop (its certificates are in
// fleet.certs).
func (n *Node) serveSnapshot(s *fleet.Snapshot) error {
	if keys := s.Keys(); len(keys) > 0 {
		n.edge.SetSessionTicketKeys(keys)
	}
	return n.syncer.ServeSnapshot(s)
}

// newSyncLoop builds the loop that keeps the edge, the certificate
// manager, the certificate sources, the stale reads and the snapshot in
// step with the store, once they all exist.
func (n *Node) newSyncLoop() *syncer.Loop {
	cfg := syncer.Config{Store: n.db, Edge: n.edge, Certs: n.certs, Reads: n.fleet.reads, Suspended: n.fleet.suspended,
		Uploaded: &n.fleet.uploaded, Health: n.fleet.health, Snapshots: n.fleet.snapshots, Prepare: n.fleet.prepare.Do,
		Wildcard: n.acme.dns01.Wildcard, ExtraHost: n.cfg.ECHName(n.cfg.Domain), Interval: n.cfg.ResyncInterval, Logger: n.log,
		Warm: &syncer.WarmConfig{Store: n.db, Edge: n.edge, Certs: n.fleet.suspended.Stored(), Above: n.cfg.warmUp.above, Hold: n.cfg.warmUp.hold}}
	if d := n.acme.dns01.Delegations(); d != nil { // a nil *Delegations's method would not be nil
		cfg.RefreshDelegations = d.Refresh
	}
	return syncer.New(cfg)
}
