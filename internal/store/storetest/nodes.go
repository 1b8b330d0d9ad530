package storetest

import (
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// testNodes: a heartbeat creates the node's row and a later one updates it;
// the list shows how long ago each node reported, by the database's clock.
func testNodes(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	if _, err := db.ListNodes(ctx); err != nil {
		t.Fatalf("ListNodes on an empty store: %v", err)
	}
	if err := db.Heartbeat(ctx, store.Node{}); err == nil {
		t.Error("Heartbeat without an ID succeeded")
	}
	a := store.Node{ID: "node-a", Version: "v1", HTTPSAddr: "127.0.0.2:443", HTTPAddr: "127.0.0.2:80", APIAddr: "127.0.0.1:2019", StartedAt: t0}
	b := store.Node{ID: "node-b", Version: "v1", HTTPSAddr: "127.0.0.3:443", StartedAt: t0}
	for _, n := range []store.Node{a, b} {
		if err := db.Heartbeat(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	a.Version = "v2"
	if err := db.Heartbeat(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := db.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "node-a" || got[1].ID != "node-b" {
		t.Fatalf("ListNodes = %+v, want node-a and node-b", got)
	}
	if got[0].Version != "v2" || got[0].HTTPSAddr != a.HTTPSAddr || got[0].APIAddr != a.APIAddr || !got[0].StartedAt.Equal(t0) {
		t.Errorf("node-a = %+v, want the last heartbeat's fields", got[0])
	}
	for _, n := range got {
		if n.Heartbeat.IsZero() || n.Age < 0 || n.Age > time.Minute {
			t.Errorf("%s: heartbeat %v, age %v; want a recent heartbeat", n.ID, n.Heartbeat, n.Age)
		}
	}
}
