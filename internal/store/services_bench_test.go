package store_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// BenchmarkListServicesMemory reads every one of 100,000 one-hostname
// services (a node's full sync) and reports, per service, what the read
// allocated (alloc-B/svc, allocs/svc) and what stays on the heap of the
// strings a node keeps from it, the ID, name and hostname, once the rest
// of the read is dropped (kept-B/svc; the string headers are the
// keeper's and not counted). BENCHMARKS.md has the figures.
func BenchmarkListServicesMemory(b *testing.B) {
	benchStores(b, func(b *testing.B, ctx context.Context, db *store.DB, now time.Time, must func(error)) {
		const n = 100_000
		createOneHostnameServices(ctx, db, n, now, must)
		kept := make([][3]string, n)
		for b.Loop() {
			clear(kept)
			before := statsAfterGC()
			ss, err := db.ListServices(ctx, "")
			must(err)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			alloc, allocs := ms.TotalAlloc-before.TotalAlloc, ms.Mallocs-before.Mallocs
			if len(ss) != n {
				b.Fatalf("read %d services, want %d", len(ss), n)
			}
			for i := range ss {
				kept[i] = [3]string{ss[i].ID, ss[i].Name, ss[i].Hostnames[0]}
			}
			ss = nil
			after := statsAfterGC()
			b.ReportMetric(float64(alloc)/n, "alloc-B/svc")
			b.ReportMetric(float64(allocs)/n, "allocs/svc")
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "kept-B/svc")
		}
		runtime.KeepAlive(kept)
	})
}

// BenchmarkScanServicesMemory passes over every one of 100,000
// one-hostname services one at a time (a node's periodic check,
// serving.ScanSum) and reports what the pass allocated per service: it
// keeps nothing, so all of it is garbage, which on a node of a million
// brings collections whose mark phases slow its handshakes.
func BenchmarkScanServicesMemory(b *testing.B) {
	benchStores(b, func(b *testing.B, ctx context.Context, db *store.DB, now time.Time, must func(error)) {
		const n = 100_000
		createOneHostnameServices(ctx, db, n, now, must)
		for b.Loop() {
			before := statsAfterGC()
			seen := 0
			must(db.ScanServices(ctx, func(s *store.Service) error {
				if len(s.Hostnames) != 1 || len(s.Upstreams) != 1 {
					return fmt.Errorf("service %s: %d hostnames, %d upstreams", s.ID, len(s.Hostnames), len(s.Upstreams))
				}
				seen++
				return nil
			}))
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if seen != n {
				b.Fatalf("scanned %d services, want %d", seen, n)
			}
			b.ReportMetric(float64(ms.TotalAlloc-before.TotalAlloc)/n, "alloc-B/svc")
			b.ReportMetric(float64(ms.Mallocs-before.Mallocs)/n, "allocs/svc")
		}
	})
}

// createOneHostnameServices stores n services of one hostname each under
// example.test, a thousand a batch.
func createOneHostnameServices(ctx context.Context, db *store.DB, n int, now time.Time, must func(error)) {
	svcs := make([]store.Service, 0, 1000)
	for i := range n {
		svcs = append(svcs, store.Service{ID: fmt.Sprintf("svc_%024d", i), ProjectID: "p", Name: fmt.Sprintf("s%06d", i), Domain: "example.test",
			Hostnames: []string{fmt.Sprintf("s%06d.example.test", i)}, Upstreams: []string{"http://127.0.0.1:1"}, CreatedAt: now, UpdatedAt: now})
		if len(svcs) == cap(svcs) {
			must(db.CreateServices(ctx, svcs))
			svcs = svcs[:0]
		}
	}
}

// statsAfterGC returns the runtime's statistics after a full collection:
// HeapAlloc is then the live heap.
func statsAfterGC() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// BenchmarkListCertValidMemory reads the hostnames of 10,000 valid
// certificate statuses (a certificate manager's first sync) and reports
// what the read allocated per hostname.
func BenchmarkListCertValidMemory(b *testing.B) {
	benchStores(b, func(b *testing.B, ctx context.Context, db *store.DB, now time.Time, must func(error)) {
		const n = 10_000
		for i := range n {
			must(db.PutCertStatus(ctx, store.CertStatus{Hostname: fmt.Sprintf("s%06d.example.test", i), Status: store.CertActive,
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour)}))
		}
		for b.Loop() {
			before := statsAfterGC()
			chunks, err := db.ListCertValid(ctx, 1.0/3, now)
			must(err)
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			read := 0
			for _, ch := range chunks {
				read += len(ch)
			}
			if read != n {
				b.Fatalf("read %d hostnames, want %d", read, n)
			}
			b.ReportMetric(float64(ms.TotalAlloc-before.TotalAlloc)/n, "alloc-B/name")
			b.ReportMetric(float64(ms.Mallocs-before.Mallocs)/n, "allocs/name")
		}
	})
}
