// The node's fleet-mode wiring: the parts of package fleet, and starting
// from the snapshot when the store is unreachable (fail static).

package node

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/internal/api"
	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/serving"
	"github.com/spine-platform/spine/internal/store"
)

// listenWait is the longest the first sync waits for the watch's LISTEN.
const listenWait = 2 * time.Second

// fleetState is the fleet-mode part of a Node.
type fleetState struct {
	id        string    // stable node ID, kept in <data>/node-id
	startedAt time.Time // of this process
	storage   *certs.Storage
	issuer    *certs.CAIssuer
	health    *fleet.StoreHealth
	members   *fleet.Membership
	tickets   *fleet.TicketKeys
	ech       *fleet.ECHKeys  // nil: ECH off (ech.go)
	quic      *fleet.QUICKeys // the fleet's, in use; nil: HTTP/3 off or keys of the node's own (quic.go). Set before startFleet
	snapshots *fleet.SnapshotWriter

	// static is set when the node started from its snapshot (loaded)
	// because the store was unreachable.
	static bool
	loaded *fleet.Snapshot
	certs  *fleet.Certificates // the manager's, else the snapshot's
	// sources are the edge's certificate sources in order (upload, suspended, certs) and the snapshot's.
	sources *certs.Sources

	prepared  atomic.Bool // bootstrap and CA done
	prepareMu sync.Mutex

	lastSync atomic.Pointer[syncRecord] // the last successful sync
	applied  [sha256.Size]byte          // fingerprint of what the last sync applied; under Node.syncMu

	reads     *api.StaleReads  // the platform's store: API reads answered while the store is away
	suspended *certs.Suspended // certificates of suspended projects' hostnames
	uploaded  certs.Uploaded   // certificates projects uploaded
}

// syncRecord is what a successful sync read: the services it serves and
// their fingerprint.
type syncRecord struct {
	services  func() []store.Service // newSyncRecord: made on first use
	suspended []string               // IDs of the suspended projects
	sum       [sha256.Size]byte
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

// prepare does the start-up work that needs the store: the default project
// and admin token, the configured domain, the internal CA. It is done once;
// a node that started from its snapshot retries it before each sync.
func (n *Node) prepare(ctx context.Context) error {
	f := &n.fleet
	if f.prepared.Load() {
		return nil
	}
	f.prepareMu.Lock()
	defer f.prepareMu.Unlock()
	if f.prepared.Load() {
		return nil
	}
	// The key file first: nothing may be written unsealed, or sealed with
	// a key the fleet does not share.
	if err := n.keys.Ensure(ctx); err != nil {
		return err
	}
	tokenFile := filepath.Join(n.cfg.DataDir, "admin.token")
	admin, err := n.platform.Bootstrap(ctx, tokenFile)
	if err != nil {
		return err
	}
	// The admin token's look-up goes into the snapshot before its first use.
	if tok, err := os.ReadFile(tokenFile); err == nil {
		if c, err := n.db.TokenByHash(ctx, platform.HashToken(strings.TrimSpace(string(tok)))); err == nil && c.Project.ID == admin.ID {
			f.reads.RememberToken(c.Token.Hash, c)
		}
	}
	if n.cfg.Domain != "" {
		if _, err := n.platform.EnsureDomain(ctx, platform.DefaultProjectID, n.cfg.Domain, true); err != nil {
			return fmt.Errorf("configuring domain %s: %w", n.cfg.Domain, err)
		}
	}
	c, err := ca.Load(ctx, f.storage, ca.Options{LeafLifetime: n.cfg.LeafLifetime})
	if err != nil {
		return fmt.Errorf("loading the internal CA: %w", err)
	}
	if err := c.WriteRootPEM(filepath.Join(n.cfg.DataDir, "ca", "root.pem")); err != nil {
		return fmt.Errorf("writing the CA root: %w", err)
	}
	f.issuer.SetCA(c)
	f.prepared.Store(true)
	return nil
}

// caRoot is the API's CARoot: nil until the CA is loaded.
func (n *Node) caRoot() []byte {
	if c := n.fleet.issuer.CA(); c != nil {
		return c.RootPEM()
	}
	return nil
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
	rec := n.fleet.lastSync.Load()
	if rec == nil {
		return nil
	}
	src := &fleet.SnapshotSource{
		Services:       rec.services(),
		Sum:            rec.sum,
		Certificate:    n.fleet.sources.Cached,
		TicketKeys:     n.fleet.tickets.Keys(),
		Tokens:         n.fleet.reads.Tokens,
		TokensVersion:  n.fleet.reads.TokensVersion(),
		TokensComplete: n.fleet.reads.TokensComplete(),
		Suspended:      rec.suspended,
		QUICKeys:       n.fleet.quic,
		Keyring:        n.db.Keyring(),
	}
	if n.fleet.ech != nil {
		src.ECHKeys = n.fleet.ech.SnapshotKeys()
	}
	return src
}

// recordSync records the services of a successful sync, for the snapshot and
// for reads while the store is away, and asks for a snapshot.
func (n *Node) recordSync(suspended map[string]bool, sum [sha256.Size]byte, changed bool) {
	// The snapshot lists the services in Applied's order, the one deltas
	// keep, so that it rewrites only the parts a change touched.
	applied := n.deltas.Snapshot()
	n.fleet.lastSync.Store(newSyncRecord(applied, slices.Sorted(maps.Keys(suspended)), sum))
	n.fleet.reads.SeedServices(applied.List) // listed only if the store goes away
	n.fleet.health.Note(nil)
	if changed {
		n.fleet.snapshots.Due() // else the writer's own tick still picks up new certificates
	}
}

// serveSnapshot makes the edge serve a snapshot read at start: its routes
// and its ticket keys (its certificates are in fleet.certs).
func (n *Node) serveSnapshot(s *fleet.Snapshot) error {
	if keys := s.Keys(); len(keys) > 0 {
		n.edge.SetSessionTicketKeys(keys)
	}
	routes, _ := serving.Routes(s.Services)
	routes, _ = serving.Suspend(routes, nil, s.SuspendedProjects())
	n.fleet.suspended.Set(serving.SuspendedHosts(routes))
	if err := n.edge.SetRoutes(routes); err != nil {
		return fmt.Errorf("applying the snapshot's routes: %w", err)
	}
	n.fleet.reads.SeedSnapshot(s.Services, s.Credentials(), s.TokensComplete)
	n.synced.Store(true)
	return nil
}
