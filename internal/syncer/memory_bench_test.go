package syncer

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/memory/memtest"
	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/serving"
	"github.com/spine-platform/spine/internal/store"
)

// BenchmarkSyncMemory measures what the sync state of N services (one
// hostname each, one project, one upstream: what bench/seed makes) keeps
// on the heap after a full sync, per hostname (live heap after a GC, as
// runtime.ReadMemStats counts it):
//
//   - total-B/host: a Loop's full sync with a real edge (metrics on) and
//     the read dropped afterwards, what stays alive of the read included
//     (the hostname strings, say): the part of the node's heap that grows
//     with the hostnames, the certificate manager and the snapshot writer
//     left out;
//   - alloc-B/host: what that sync allocated in all (the garbage it
//     leaves behind included);
//   - edge-B/host: edge.Server.SetRoutes's table and metrics recorders,
//     beyond the routes handed to it;
//   - applied-B/host: serving.Applied.Full's record, beyond the State
//     handed to it;
//   - frag-B/host: the heap in use beyond the live heap that the sync
//     added (free room in spans that hold live objects);
//   - gc-ms: a forced collection of the whole heap after the sync, the
//     median of nine: what each collection costs a node in mark work.
//
// Compare runs before and after a change with benchstat; BENCHMARKS.md has
// the figures.
func BenchmarkSyncMemory(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				total, alloc := syncHeap(b, n)
				b.ReportMetric(total, "total-B/host")
				b.ReportMetric(alloc, "alloc-B/host")
				b.ReportMetric(edgeHeap(b, n), "edge-B/host")
				b.ReportMetric(appliedHeap(b, n), "applied-B/host")
			}
		})
	}
}

// readServices returns n services as a store read returns them: every
// string a fresh allocation, as the database driver makes it.
func readServices(n int) []store.Service {
	svcs := make([]store.Service, n)
	now := time.Now()
	for i := range svcs {
		host := fmt.Sprintf("s%06d.bench.test", i)
		svcs[i] = store.Service{
			ID:        fmt.Sprintf("svc_%024x", i), // platform's form
			ProjectID: string([]byte("prj_000000000000000000000001")),
			Name:      host[:len("s000000")], // as the store's read shares it
			Domain:    string([]byte("bench.test")),
			Hostnames: []string{host},
			Upstreams: []string{string([]byte("http://127.0.0.1:19000"))},
			CreatedAt: now,
			UpdatedAt: now,
		}
	}
	return svcs
}

var benchDomains = []store.Domain{{Name: "bench.test", ProjectID: "prj_000000000000000000000001", Status: store.DomainVerified}}

// liveHeap returns the live heap after a full collection, and the bytes
// allocated so far.
func liveHeap() (live, total uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.TotalAlloc
}

// heapInUse returns the heap in use (spans holding objects), after a full
// collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// gcTime returns the median time of nine forced collections.
func gcTime() time.Duration {
	var ts []time.Duration
	for range 9 {
		t := time.Now()
		runtime.GC()
		ts = append(ts, time.Since(t))
	}
	slices.Sort(ts)
	return ts[4]
}

func perHost(after, before uint64, n int) float64 {
	return float64(int64(after)-int64(before)) / float64(n)
}

// storeOf answers ListServices with svcs once, then forgets them.
type storeOf struct {
	fakeStore
	svcs []store.Service
}

func (s *storeOf) ListServices(context.Context, string) ([]store.Service, error) {
	svcs := s.svcs
	s.svcs = nil
	return svcs, nil
}

func (s *storeOf) ListDomains(context.Context, string) ([]store.Domain, error) {
	return benchDomains, nil
}

func newBenchEdge() *edge.Server {
	return edge.New(edge.Config{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.New(metrics.Sources{}),
		HealthInterval: time.Hour})
}

func syncHeap(b *testing.B, n int) (total, alloc float64) {
	st := &storeOf{svcs: readServices(n)}
	p := &parts{}
	e := newBenchEdge()
	defer e.Shutdown(context.Background())
	l := New(Config{Store: st, Edge: e, Certs: p, Reads: p, Suspended: p, Uploaded: p, Health: p, Snapshots: p,
		Prepare: func(context.Context) error { return nil }, Wildcard: func(store.Domain) bool { return false },
		Logger: slog.New(slog.DiscardHandler)})
	p.hosts = nil
	before, allocBefore := liveHeap()
	fragBefore := heapInUse() - before
	// The read is counted from here: it is made before the heap is read
	// only so that its []store.Service, dropped by the sync, is not.
	before -= readBytes(n)
	if err := l.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	p.hosts = nil // the certificate manager's, not measured
	after, allocAfter := liveHeap()
	b.ReportMetric(perHost(heapInUse()-after, fragBefore, n), "frag-B/host")
	b.ReportMetric(float64(gcTime().Microseconds())/1000, "gc-ms")
	runtime.KeepAlive(l)
	runtime.KeepAlive(e)
	return perHost(after, before, n), perHost(allocAfter, allocBefore, n)
}

// readBytes is what readServices allocates for n services, counted as
// the read's (measured once).
func readBytes(n int) uint64 {
	before, _ := liveHeap()
	svcs := readServices(n)
	after, _ := liveHeap()
	runtime.KeepAlive(svcs)
	return after - before
}

func edgeHeap(b *testing.B, n int) float64 {
	st := serving.Compute(readServices(n), benchDomains, func(store.Domain) bool { return false }, slog.New(slog.DiscardHandler))
	routes := serving.Routes(st.Services, nil).Slice()
	e := newBenchEdge()
	defer e.Shutdown(context.Background())
	before, _ := liveHeap()
	if err := e.SetRoutes(routes); err != nil {
		b.Fatal(err)
	}
	after, _ := liveHeap()
	runtime.KeepAlive(routes)
	runtime.KeepAlive(e)
	return perHost(after, before, n)
}

func appliedHeap(b *testing.B, n int) float64 {
	st := serving.Compute(readServices(n), benchDomains, func(store.Domain) bool { return false }, slog.New(slog.DiscardHandler))
	a := serving.NewApplied(slog.New(slog.DiscardHandler))
	before, _ := liveHeap()
	a.Full(st, benchDomains, nil, nil)
	after, _ := liveHeap()
	runtime.KeepAlive(st)
	runtime.KeepAlive(a)
	return perHost(after, before, n)
}

// BenchmarkSyncMark measures what each collection pays to mark the sync
// state of N services (one hostname each, one project, one upstream: what
// bench/seed makes), per hostname, over a read whose strings are parts of
// 16 KiB blocks as the store's read makes them (store.packed): the
// processor time of a forced collection's mark phase (memtest.MarkCPU)
// with the state alive, less without, for serving.Applied's records
// (applied-mark-ns/host), the edge's table with the hostnames' blocks
// (edge-mark-ns/host), and both (mark-ns/host). At a million hostnames a
// node's every collection marks these (and the certificate manager's name
// sets and its cache); on one processor its mark phase is that long, and
// handshakes wait behind its worker meanwhile (BENCHMARKS.md, "What a
// collection marks at a million hostnames").
func BenchmarkSyncMark(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				base := memtest.MarkCPU()
				a, e := packedState(b, n)
				both := memtest.MarkCPU()
				runtime.KeepAlive(a)
				a = nil
				edgeOnly := memtest.MarkCPU()
				e.Shutdown(context.Background())
				runtime.KeepAlive(e)
				e = nil
				none := memtest.MarkCPU()
				b.ReportMetric(float64(both-none)/float64(n), "mark-ns/host")
				b.ReportMetric(float64(both-edgeOnly)/float64(n), "applied-mark-ns/host")
				b.ReportMetric(float64(edgeOnly-none)/float64(n), "edge-mark-ns/host")
				b.ReportMetric(float64(none-base)/float64(n), "left-mark-ns/host") // ~0: nothing of it stays
			}
		})
	}
}

// packedState returns the record and the edge of a full sync of
// packedRead(n); the read and what was computed of it are dropped.
func packedState(b *testing.B, n int) (*serving.Applied, *edge.Server) {
	st := serving.Compute(packedRead(n), benchDomains, func(store.Domain) bool { return false }, slog.New(slog.DiscardHandler))
	a := serving.NewApplied(slog.New(slog.DiscardHandler))
	a.Full(st, benchDomains, nil, nil)
	e := newBenchEdge()
	if err := e.SetRoutes(serving.Routes(st.Services, nil).Slice()); err != nil {
		b.Fatal(err)
	}
	return a, e
}

// packedRead returns n services as the store's read of every service
// returns them: the IDs, names and hostnames parts of 16 KiB blocks
// (store.packed), a name the first label of its hostname, the project,
// domain and upstream one string each that every service shares
// (store.repeated).
func packedRead(n int) []store.Service {
	var block []byte
	pack := func(s string) string {
		if cap(block)-len(block) < len(s) {
			block = make([]byte, 0, 16<<10)
		}
		i := len(block)
		block = append(block, s...)
		return unsafe.String(&block[i], len(s))
	}
	project, domain := string([]byte("prj_000000000000000000000001")), string([]byte("bench.test"))
	upstreams := []string{string([]byte("http://127.0.0.1:19000"))}
	now := time.Now()
	svcs := make([]store.Service, n)
	for i := range svcs {
		host := pack(fmt.Sprintf("s%07d.bench.test", i))
		svcs[i] = store.Service{ID: pack(fmt.Sprintf("svc_%024x", i)), ProjectID: project, Name: host[:len("s0000000")],
			Domain: domain, Hostnames: []string{host}, Upstreams: upstreams, CreatedAt: now, UpdatedAt: now}
	}
	return svcs
}
