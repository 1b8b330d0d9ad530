package syncer

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"log/slog"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/store"
)

// benchStore holds n services under one verified domain; ChangesSince
// answers with changed.
type benchStore struct {
	fakeStore
	svcs    []store.Service
	changed []store.Service
}

func (s *benchStore) ListServices(context.Context, string) ([]store.Service, error) {
	return s.svcs, nil
}
func (s *benchStore) ListDomains(context.Context, string) ([]store.Domain, error) {
	return []store.Domain{{Name: "customers.test", ProjectID: "p", Status: store.DomainVerified}}, nil
}
func (s *benchStore) ChangesSince(context.Context, int64) (store.Changes, error) {
	return store.Changes{Revision: 2, Services: s.changed}, nil
}

// BenchmarkSnapshotAfterChange syncs n services as a node does, writes
// the fail-static snapshot, applies a change of one service (a delta), and
// reports the processor time of the snapshot write that follows, from the
// sync's record as the node's snapshot source reads it, and of a write
// with nothing changed (the writer's tick) (go test -run ^$ -bench
// SnapshotAfterChange -benchtime 1x).
func BenchmarkSnapshotAfterChange(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				benchmarkSnapshotAfterChange(b, n)
			}
		})
	}
}

func benchmarkSnapshotAfterChange(b *testing.B, n int) {
	b.StopTimer()
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &benchStore{svcs: make([]store.Service, n)}
	for i := range st.svcs {
		name := fmt.Sprintf("s%07d", i)
		st.svcs[i] = store.Service{ID: fmt.Sprintf("%x", sha256.Sum256([]byte(name)))[:32], ProjectID: "p", Name: name,
			Domain: "customers.test", Hostnames: []string{name + ".customers.test"}, Upstreams: []string{"http://10.0.0.1:8080"},
			CreatedAt: created, UpdatedAt: created}
	}
	c := st.svcs[n/2]
	c.Upstreams = []string{"http://10.0.0.2:8080"}
	st.changed = []store.Service{c}
	p := &parts{}
	l := New(Config{Store: st, Edge: p, Certs: p, Reads: p, Suspended: p, Uploaded: p, Health: p, Snapshots: p,
		Prepare: func(context.Context) error { return nil }, Wildcard: func(store.Domain) bool { return false },
		Interval: 1, Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	if err := l.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	certs := map[string]*tls.Certificate{} // none in memory: the services alone
	w := fleet.NewSnapshotWriter(b.TempDir(), func() *fleet.SnapshotSource {
		return snapshotSource(l.Last(), func(h string) *tls.Certificate { return certs[h] })
	}, slog.New(slog.DiscardHandler))
	step := func(what string) {
		runtime.GC() // each step pays for its own garbage only
		start, cpu := time.Now(), cpuTime()
		if err := w.Write(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric((cpuTime()-cpu).Seconds()*1000, what+"-cpu-ms")
		b.ReportMetric(time.Since(start).Seconds()*1000, what+"-ms")
	}
	step("first")
	if ok, err := l.SyncChanges(ctx); !ok || err != nil {
		b.Fatalf("SyncChanges = %v, %v", ok, err)
	}
	step("service")
	step("unchanged")
	b.StartTimer()
}

// snapshotSource is the node's snapshot source (node.snapshotSource) for
// the services of rec, its certificates never changing.
func snapshotSource(rec *Record, cert func(string) *tls.Certificate) *fleet.SnapshotSource {
	return &fleet.SnapshotSource{Shards: rec.Applied, Certificate: cert, CertificatesVersion: func() uint64 { return 0 }, Suspended: rec.Suspended}
}

// cpuTime is the processor time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
