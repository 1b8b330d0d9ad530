package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/memory"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/syncer"
)

// countingHandler counts the records with one message.
type countingHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// A sync that finds what was applied last leaves the edge alone; a change
// is applied (a full sync: a change of services alone is applied as a
// delta, TestChangesAppliedAsDelta).
func TestSyncAppliesOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	var applied atomic.Int64
	ctx := context.Background()
	n, err := Start(ctx, config.Config{
		DataDir: dir, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Version: "test",
		Logger: slog.New(countingHandler{msg: "routes updated", n: &applied}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	before := applied.Load()
	for range 3 {
		if err := n.syncer.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := applied.Load(); got != before {
		t.Errorf("routes rebuilt %d times by syncs that found nothing new", got-before)
	}

	admin := adminClient(t, n, dir)
	if _, err := admin.CreateService(ctx, client.ServiceCreate{Name: "more", Upstreams: []string{"http://127.0.0.1:9"}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the new service routed", waitTimeout, func() error {
		if !n.edge.Has("more.localhost") {
			return fmt.Errorf("more.localhost not routed")
		}
		return nil
	})
	after := applied.Load()
	if err := n.syncer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if applied.Load() != after {
		t.Error("routes rebuilt again with nothing new")
	}
}

// The snapshot a node writes holds every served certificate, and the
// admin token's hash (for reads without the store), never the token.
func TestSnapshotHoldsServedCertificatesAndTokenHashes(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	ctx := context.Background()
	admin := adminClient(t, n, dir)
	if _, err := admin.CreateService(ctx, client.ServiceCreate{Name: "more", Upstreams: []string{"http://127.0.0.1:9"}}); err != nil {
		t.Fatal(err)
	}
	if err := n.syncer.Sync(ctx); err != nil { // full, whether or not the notice's delta came first
		t.Fatal(err)
	}
	for _, h := range []string{"hello.localhost", "more.localhost"} {
		poll.Until(t, h+" served", waitTimeout, func() error {
			_, _, err := httpsGet(t, n, h, "/")
			return err
		})
	}
	snapDir := t.TempDir()
	if err := fleet.NewSnapshotWriter(snapDir, n.fleet.Source, n.log).Write(); err != nil {
		t.Fatal(err)
	}
	snap, err := fleet.ReadSnapshot(snapDir, n.db.Keyring()) // the node's secret key file's
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range snap.Certificates {
		if _, err := tls.X509KeyPair([]byte(c.ChainPEM), []byte(c.KeyPEM)); err != nil {
			t.Errorf("certificate of %v does not load: %v", c.Names, err)
		}
		for _, h := range c.Names {
			names[h] = true
		}
	}
	if !names["hello.localhost"] || !names["more.localhost"] || len(snap.Services) != 2 {
		t.Errorf("snapshot: %d services, names %v", len(snap.Services), names)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.TokenHashes) != 1 || snap.TokenHashes[0].Hash != platform.HashToken(strings.TrimSpace(string(tok))) || snap.TokenHashes[0].Project.ID != platform.DefaultProjectID {
		t.Errorf("snapshot token hashes %+v, want the admin token's", snap.TokenHashes)
	}
	raw := snapshotBytes(t, snapDir)
	if bytes.Contains(raw, bytes.TrimSpace(tok)) {
		t.Error("the snapshot holds the admin token itself")
	}
	if bytes.Contains(raw, []byte("PRIVATE KEY")) {
		t.Error("the snapshot holds a private key in PEM: not sealed")
	}
}

// snapshotBytes returns every file of the snapshot folder in dataDir,
// concatenated: what a reader of the disk would find.
func snapshotBytes(t *testing.T, dataDir string) []byte {
	t.Helper()
	var all []byte
	err := filepath.WalkDir(filepath.Join(dataDir, fleet.SnapshotDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		all = append(all, b...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// A sync's burst: the read itself is collected at once; the two syncs
// after it leave theirs to the edge's releaser (a return pending, made at
// a second without handshakes) rather than force a collection at the tick.
func TestReleaseAfterARead(t *testing.T) {
	defer memory.Returned()
	memory.Returned()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	release(syncer.Read)
	runtime.ReadMemStats(&after)
	if after.NumForcedGC == before.NumForcedGC {
		t.Error("the sync that read every service forced no collection")
	}
	memory.Returned()
	debug.FreeOSMemory() // no peak left for Settle to collect (memory.Peak)
	runtime.ReadMemStats(&before)
	release(syncer.AfterRead)
	runtime.ReadMemStats(&after)
	if after.NumForcedGC != before.NumForcedGC {
		t.Error("a sync after the read forced a collection at its tick")
	}
	if !memory.Pending() {
		t.Error("a sync after the read left no return pending for the edge")
	}
}
