package node

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// BenchmarkSyncChanges measures the change path of a node serving 100,000
// hostnames (SQLite): one service created, or deleted, in the store, then
// applied as a delta (syncer.Loop.SyncChanges: ChangesSince, serving.Applied, the
// certificate manager, the edge). ms/change includes the store's write,
// apply-ms/change is the node's part alone; the change notice's own delay
// is in neither. full-sync-ms is one more change applied by the full sync
// instead, for comparison.
func BenchmarkSyncChanges(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	dir := b.TempDir()
	nd, err := Start(ctx, config.Config{
		DataDir: dir, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Version: "test", ResyncInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nd.Close(context.Background()) })
	svc := func(name string) store.Service {
		return store.Service{ID: "bench-" + name, ProjectID: platform.DefaultProjectID, Name: name, Domain: "localhost",
			Hostnames: []string{name + ".localhost"}, Upstreams: []string{"http://127.0.0.1:9"}}
	}
	// Each hostname's certificate recorded as valid, as on a node that
	// has run a while: the manager loads them on demand instead of
	// issuing 100,000 certificates (certs.Manager.SyncShared).
	seeded := time.Now()
	now := time.Now()
	for i := 0; i < n; i += 5000 {
		batch := make([]store.Service, 0, 5000)
		statuses := make([]store.CertStatus, 0, 5000)
		for j := i; j < i+5000; j++ {
			batch = append(batch, svc("s"+strconv.Itoa(j)))
			statuses = append(statuses, store.CertStatus{Hostname: "s" + strconv.Itoa(j) + ".localhost", Status: store.CertActive,
				Issuer: "bench", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(60 * 24 * time.Hour), UpdatedAt: now})
		}
		if err := nd.db.CreateServices(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if err := nd.db.PutKeysAndCertStatus(ctx, nil, statuses); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d services in %v", n, time.Since(seeded))
	synced := time.Now()
	if err := nd.syncer.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("full sync of %d services in %v", n, time.Since(synced))
	if !nd.edge.Has("s99999.localhost") {
		b.Fatal("not every service routed")
	}
	b.ResetTimer()
	start := time.Now()
	var apply time.Duration
	i := 0
	for b.Loop() {
		var err error
		if i%2 == 0 {
			err = nd.db.CreateService(ctx, svc("changed"))
		} else {
			err = nd.db.DeleteService(ctx, platform.DefaultProjectID, "changed")
		}
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		ok, err := nd.syncer.SyncChanges(ctx)
		apply += time.Since(t0)
		if err != nil || !ok {
			b.Fatalf("not applied as a delta: %v", err)
		}
		if nd.edge.Has("changed.localhost") != (i%2 == 0) {
			b.Fatal("the change is not routed")
		}
		i++
	}
	b.StopTimer()
	// For comparison, the same change applied by a full sync, as every
	// change was before the change log.
	if err := nd.db.CreateService(ctx, svc("full")); err != nil {
		b.Fatal(err)
	}
	full := time.Now()
	if err := nd.syncer.Sync(ctx); err != nil || !nd.edge.Has("full.localhost") {
		b.Fatalf("full sync: %v", err)
	}
	b.ReportMetric(float64(time.Since(full).Microseconds())/1000, "full-sync-ms")
	b.ReportMetric(float64(full.Sub(start).Microseconds())/1000/float64(i), "ms/change")
	b.ReportMetric(float64(apply.Microseconds())/1000/float64(i), "apply-ms/change")
}
