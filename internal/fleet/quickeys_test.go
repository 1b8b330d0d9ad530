package fleet

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spine-platform/spine/internal/store"
)

// Nodes starting at once on one store all get the same QUIC keys, and a
// node started later reads them back.
func TestQUICKeysSharedByEveryNode(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys := make([]QUICKeys, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = LoadQUICKeys(ctx, db, "node-"+string(rune('a'+i))) })
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if keys[i] != keys[0] {
			t.Errorf("node %d got other keys than node 0", i)
		}
	}
	if keys[0].StatelessReset == ([32]byte{}) || keys[0].Token == keys[0].StatelessReset {
		t.Error("keys are zero or equal")
	}
	later, err := LoadQUICKeys(ctx, db, "node-z")
	if err != nil || later != keys[0] {
		t.Errorf("a later node: %v, same keys %v", err, later == keys[0])
	}
}
