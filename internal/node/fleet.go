// The node's fleet-mode wiring: what the snapshot writer writes, a start
// from the snapshot, and the sync loop that keeps every part in step.

package node

import (
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/gcgoal"
	"github.com/spine-platform/spine/internal/memory"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/syncer"
)

// ECH returns the public name and the ECHConfigList published for the
// node's names (an HTTPS record's ech parameter), or "" and nil when ECH
// is off or its keys are not read yet.
func (n *Node) ECH() (publicName string, configList []byte) { return n.fleet.ECH.Published() }

// snapshotSource is what the snapshot writer writes, without the fleet's
// keys (fleet.Node.Source adds them): nil until a sync succeeded.
func (n *Node) snapshotSource() *fleet.SnapshotSource {
	rec := n.syncer.Last()
	if rec == nil {
		return nil
	}
	// Certificate's sources other than the manager change only with the
	// services (a full sync makes every shard's version new).
	return &fleet.SnapshotSource{Shards: rec.Applied, Suspended: rec.Suspended, Certificate: n.sources.Cached,
		CertificatesVersion: n.certs.CacheVersion,
		Tokens:              n.reads.Tokens, TokensVersion: n.reads.TokensVersion(), TokensComplete: n.reads.TokensComplete(), Keyring: n.db.Keyring()}
}

// serveSnapshot makes the edge serve a snapshot read at start: its ticket
// keys, and its routes through the sync loop (its certificates are in
// fleet.Certs), which then lets go of the services and certificates the
// node holds elsewhere.
func (n *Node) serveSnapshot(s *fleet.Snapshot) error {
	if keys := s.Keys(); len(keys) > 0 {
		n.edge.SetSessionTicketKeys(keys)
	}
	return n.syncer.ServeSnapshot(s)
}

// release gives a sync's burst back to the system (syncer.Config.Release):
// a read of every service is collected at once (its garbage is not free
// until a collection); the syncs after it leave theirs to the edge's
// releaser, which collects and returns at a second without handshakes
// (memory.Settle); any other sync collects only a heap holding a burst.
func release(b syncer.Burst) {
	switch b {
	case syncer.Read:
		memory.Release(true)
	case syncer.AfterRead:
		memory.Settle()
	default:
		memory.Release(false)
	}
}

// The warm-up's look-up reads a name in one round trip on PostgreSQL
// (syncer.Loop's lookup finds these by type assertion).
var (
	_ syncer.WarmReader   = (*store.DB)(nil)
	_ syncer.WarmKeyCerts = (*certs.Stored)(nil)
)

// newSyncLoop builds the loop that keeps the edge, the certificate
// manager, the certificate sources, the stale reads and the snapshot in
// step with the store, once they all exist.
func (n *Node) newSyncLoop() *syncer.Loop {
	cfg := syncer.Config{Store: n.db, Edge: n.edge, Certs: n.certs, Reads: n.reads, Suspended: n.suspended,
		Uploaded: &n.uploaded, Health: n.fleet.Health, Snapshots: n.fleet.Snapshots, Prepare: n.fleet.Prepare.Do,
		Wildcard: n.acme.dns01.Wildcard, ExtraHost: n.cfg.ECHName(n.cfg.Domain), Interval: n.cfg.ResyncInterval, Logger: n.log,
		Release: release,
		Warm: &syncer.WarmConfig{Store: n.db, Edge: n.edge, Certs: n.suspended.Stored(), Above: n.warmUp.above, Hold: n.warmUp.hold,
			Parallel: n.db.Kind() == "postgres", Relax: func() func() { return gcgoal.Raise(gcgoal.Warm()) }}}
	if d := n.acme.dns01.Delegations(); d != nil { // a nil *Delegations's method would not be nil
		cfg.RefreshDelegations = d.Refresh
	}
	return syncer.New(cfg)
}
