package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spine-platform/spine/internal/api"
	"github.com/spine-platform/spine/internal/dashboard"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// BenchmarkPages answers every page of the dashboard for a project with
// 10,000 hostnames (100 services of 100 names; 9,800 certificates active,
// 100 issuing, 50 failed, 50 expiring in 3 days), in SQLite and in
// PostgreSQL (skipped if it cannot be reached), through the same parts as
// a node (store behind api.StaleReads, platform, api.Local). Every page
// reads what it shows from the store, nothing is kept between requests:
// the figures per page are its server time, reads included: ns/op (the
// mean), p50-ms (the median) and cpu-ms/op (the process's CPU time, which
// for SQLite includes the database's).
// BENCHMARKS.md has them.
func BenchmarkPages(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchPages(b, "sqlite:"+filepath.Join(b.TempDir(), "spine.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		dsn := os.Getenv("SPINE_TEST_POSTGRES")
		if dsn == "" {
			dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if dsn == "skip" {
			b.Skip("SPINE_TEST_POSTGRES=skip")
		}
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Skipf("PostgreSQL unreachable: %v", err)
		}
		conn.Close(ctx)
		benchPages(b, storetest.PostgresDSN(b))
	})
}

func benchPages(b *testing.B, dsn string) {
	d, token, admin := tenThousand(b, dsn)
	pages := []string{
		"/ui/", "/ui/services", "/ui/services?q=h-0042", "/ui/services?page=2", "/ui/services/svc-42",
		"/ui/hostnames", "/ui/hostnames?q=h-00420", "/ui/hostnames?status=active&page=150",
		"/ui/hostnames?page=200", "/ui/hostnames?status=failed", "/ui/hostnames?status=pending", "/ui/hostnames?expiring=1",
		"/ui/hostnames/h-04242.example.test", "/ui/domains", "/ui/events", "/ui/tokens", "/ui/webhooks", "/ui/operator",
	}
	for _, p := range pages {
		b.Run(p, func(b *testing.B) {
			cpu := processCPU()
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				req := httptest.NewRequest("GET", p, nil)
				if p == "/ui/operator" {
					req.Header.Set("Authorization", "Bearer "+admin) // the operator's token
				} else {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				rec := httptest.NewRecorder()
				d.ServeHTTP(rec, req)
				took = append(took, time.Since(start))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body.String())
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2])/1e6, "p50-ms")
			// The process's CPU time per page (the server's, and SQLite's,
			// which runs in it; not PostgreSQL's): on a loaded machine, wall
			// time (ns/op) is mostly waiting for a processor.
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N)/1e6, "cpu-ms/op")
		})
	}
}

// processCPU is the CPU time the process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func tenThousand(b *testing.B, dsn string) (d *dashboard.Dashboard, token, admin string) {
	b.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	reads := api.NewStaleReads(db)
	p := platform.New(reads, platform.Options{})
	tokenFile := filepath.Join(b.TempDir(), "admin.token")
	if _, err := p.Bootstrap(ctx, tokenFile); err != nil {
		b.Fatal(err)
	}
	adminToken, err := os.ReadFile(tokenFile)
	if err != nil {
		b.Fatal(err)
	}
	_, token, err = p.CreateProject(ctx, "big")
	if err != nil {
		b.Fatal(err)
	}
	c, err := p.Authenticate(ctx, token)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	if err := db.CreateDomain(ctx, store.Domain{Name: "example.test", ProjectID: c.Project.ID, Status: store.DomainVerified, CreatedAt: now, VerifiedAt: now}); err != nil {
		b.Fatal(err)
	}
	if err := db.CreateDomain(ctx, store.Domain{Name: "pending.test", ProjectID: c.Project.ID, Status: store.DomainPending, VerifyToken: "t", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	for s := range 100 {
		svc := store.Service{ID: fmt.Sprintf("svc_%d", s), ProjectID: c.Project.ID, Name: fmt.Sprintf("svc-%d", s), Domain: "example.test",
			Upstreams: []string{fmt.Sprintf("http://127.0.0.1:%d", 20000+s)}, CreatedAt: now, UpdatedAt: now}
		svc.Hostnames = append(svc.Hostnames, svc.Name+".example.test")
		for h := range 99 {
			svc.Hostnames = append(svc.Hostnames, fmt.Sprintf("h-%05d.example.test", s*100+h))
		}
		if err := db.CreateService(ctx, svc); err != nil {
			b.Fatal(err)
		}
		for i, h := range svc.Hostnames {
			st := store.CertStatus{Hostname: h, Status: store.CertActive, Issuer: "Spine Internal CA",
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(60 * 24 * time.Hour), UpdatedAt: now}
			switch n := s*100 + i; {
			case n%100 == 1:
				st = store.CertStatus{Hostname: h, Status: store.CertIssuing, UpdatedAt: now}
			case n%200 == 2:
				st = store.CertStatus{Hostname: h, Status: store.CertFailed, Error: "the CA refused the order: rate limited", UpdatedAt: now}
			case n%200 == 3:
				st.NotAfter = now.Add(3 * 24 * time.Hour)
			}
			if err := db.PutCertStatus(ctx, st); err != nil {
				b.Fatal(err)
			}
		}
	}
	if db.Kind() == "postgres" {
		// What autovacuum does within a minute of a bulk load: without
		// statistics, PostgreSQL plans the 10,000-row joins as if they
		// had a few rows (nested loops, 2-4 times slower).
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		_, err = conn.Exec(ctx, "ANALYZE services, service_hostnames, cert_status, uploaded_certs, domains")
		conn.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
	}
	local := api.NewLocal(api.Config{Platform: p})
	d, err = dashboard.New(dashboard.Config{API: local, StoreKind: db.Kind(),
		UpstreamHealth: func() map[string]bool { return map[string]bool{"http://127.0.0.1:20007": false} }})
	if err != nil {
		b.Fatal(err)
	}
	return d, token, strings.TrimSpace(string(adminToken))
}
