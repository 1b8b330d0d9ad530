package node

import (
	"context"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/fleet"
)

// quicKeys returns the fleet's QUIC keys (the snapshot's if the node
// started from it and the store cannot give them; nil: keys of the node's
// own), and records them for the snapshot (fleetState.quic).
func (n *Node) quicKeys(ctx context.Context) *edge.QUICKeys {
	var snap *fleet.Snapshot
	if n.fleet.static {
		snap = n.fleet.loaded
	}
	k := fleet.QUICKeysForNode(ctx, n.db, n.fleet.id, snap, n.log)
	if k == nil {
		return nil
	}
	n.fleet.quic = k
	return &edge.QUICKeys{StatelessReset: k.StatelessReset, Token: k.Token}
}
