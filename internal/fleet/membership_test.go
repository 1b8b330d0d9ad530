package fleet

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// fakeMembers is a node list that can be made unreachable.
type fakeMembers struct {
	nodes []store.Node
	down  bool
}

func (f *fakeMembers) Heartbeat(context.Context, store.Node) error { return nil }
func (f *fakeMembers) ListNodes(context.Context) ([]store.Node, error) {
	if f.down {
		return nil, fmt.Errorf("listing nodes: %w", store.ErrUnavailable)
	}
	return f.nodes, nil
}

// With the store away, the node list is the last one read, every node
// shown as not connected, and this node in it.
func TestNodesWhileStoreIsAway(t *testing.T) {
	self := store.Node{ID: "a", Version: "v", HTTPSAddr: "127.0.0.2:443"}
	st := &fakeMembers{}
	m := NewMembership(st, self, nil)

	st.down = true
	nodes, err := m.Nodes(context.Background())
	if !errors.Is(err, store.ErrUnavailable) || len(nodes) != 1 || !nodes[0].Self || nodes[0].StoreConnected {
		t.Fatalf("before any read: %+v, %v; want this node alone, not connected, and ErrUnavailable", nodes, err)
	}

	st.down = false
	st.nodes = []store.Node{
		{ID: "a", Heartbeat: time.Now(), Age: time.Second},
		{ID: "b", Heartbeat: time.Now(), Age: 2 * time.Second},
		{ID: "c", Heartbeat: time.Now(), Age: ConnectedWithin + time.Second},
	}
	nodes, err = m.Nodes(context.Background())
	if err != nil || len(nodes) != 3 || !nodes[0].Self || !nodes[0].StoreConnected || !nodes[1].StoreConnected || nodes[2].StoreConnected {
		t.Fatalf("store up: %+v, %v", nodes, err)
	}

	st.down = true
	nodes, err = m.Nodes(context.Background())
	if !errors.Is(err, store.ErrUnavailable) || len(nodes) != 3 {
		t.Fatalf("store away: %+v, %v; want the three nodes last read and ErrUnavailable", nodes, err)
	}
	for _, nd := range nodes {
		if nd.StoreConnected {
			t.Errorf("node %s shown connected while the store is away", nd.ID)
		}
		if age, err := time.ParseDuration(nd.SinceHeartbeat); err != nil || age < time.Second {
			t.Errorf("node %s: since heartbeat %q, want the age last read or more", nd.ID, nd.SinceHeartbeat)
		}
	}
	if !nodes[0].Self || nodes[0].HTTPSAddr != self.HTTPSAddr {
		t.Errorf("this node is %+v, want itself with its addresses", nodes[0])
	}
}
