package node

import (
	"context"
	"fmt"

	"github.com/spine-platform/spine/internal/serving"
)

// syncChanges applies the services changed since the revision last applied
// (store.ChangesSince), at their cost: serving.Applied makes the delta,
// the certificate manager and the edge take it (certs.UpdateShared,
// edge.UpdateRoutes). It reports false when a full sync is needed instead:
// nothing applied yet, the store says so (another kind of change, or the
// log does not reach back), the delta touches a suspended project or an
// uploaded certificate, or applying it failed. The fail-static snapshot
// and the API's reads while the store is away (api.StaleReads) see the
// services after the change.
func (n *Node) syncChanges(ctx context.Context) (bool, error) {
	n.syncMu.Lock()
	defer n.syncMu.Unlock()
	if !n.synced.Load() {
		return false, nil
	}
	ch, err := n.db.ChangesSince(ctx, n.revision.Load())
	if err != nil {
		n.fleet.health.Note(err)
		return false, err
	}
	d, ok := n.deltas.Prepare(ch)
	if !ok {
		n.log.Debug("changes applied by a full sync", "revision", n.revision.Load(), "store_full", ch.Full)
		return false, nil
	}
	if !d.Empty() {
		n.certs.UpdateShared(ctx, d.Add, d.Drop)
		if err := n.edge.UpdateRoutes(d.Set, d.Remove); err != nil {
			return false, fmt.Errorf("applying changed routes: %w", err)
		}
	}
	n.deltas.Commit(d)
	n.fleet.applied = d.Sum
	if !d.Empty() {
		applied := n.deltas.Snapshot()
		rec := n.fleet.lastSync.Load()
		n.fleet.lastSync.Store(newSyncRecord(applied, rec.suspended, d.Sum))
		n.fleet.reads.SeedServices(applied.List)
		n.fleet.snapshots.Due()
	}
	n.fleet.health.Note(nil)
	n.revision.Store(ch.Revision)
	return true, nil
}

// newSyncRecord records applied, whose list is made once, when first
// asked for (the snapshot writer, /metrics), not on the change's path.
func newSyncRecord(applied *serving.AppliedServices, suspended []string, sum [32]byte) *syncRecord {
	return &syncRecord{services: applied.List, suspended: suspended, sum: sum}
}
