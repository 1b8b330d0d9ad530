package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// BenchmarkHostnameReads: the dashboard's reads of a project with 10,000
// hostnames (100 services of 100), in SQLite and PostgreSQL.
func BenchmarkHostnameReads(b *testing.B) {
	benchStores(b, func(b *testing.B, ctx context.Context, db *store.DB, now time.Time, must func(error)) {
		for s := range 100 {
			svc := store.Service{ID: fmt.Sprintf("svc_%d", s), ProjectID: "p", Name: fmt.Sprintf("svc-%d", s), Domain: "example.test", Upstreams: []string{"http://127.0.0.1:1"}}
			for h := range 100 {
				svc.Hostnames = append(svc.Hostnames, fmt.Sprintf("h-%05d.example.test", s*100+h))
			}
			must(db.CreateService(ctx, svc))
			for _, h := range svc.Hostnames {
				must(db.PutCertStatus(ctx, store.CertStatus{Hostname: h, Status: store.CertActive, NotBefore: now, NotAfter: now.Add(time.Hour * 1000)}))
			}
		}
		b.Run("zones", func(b *testing.B) {
			for b.Loop() {
				_, err := db.HostnameZones(ctx, "p")
				must(err)
			}
		})
		b.Run("count", func(b *testing.B) {
			for b.Loop() {
				_, err := db.CountHostnames(ctx, "p", now, nil)
				must(err)
			}
		})
		for name, q := range map[string]store.HostnameQuery{
			"page1": {Limit: 50}, "active page 150": {Status: "active", Offset: 7450, Limit: 50}, "one": {Hostname: "h-04242.example.test"},
			"search": {Search: "h-0042", Limit: 50}, "service": {Service: "svc-42"},
			"problems": {Problems: &store.Problems{Now: now, EndsBefore: now.Add(7 * 24 * time.Hour), RenewalRatio: 1.0 / 3}, Limit: 50},
		} {
			q.ProjectID = "p"
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					_, _, err := db.ListHostnames(ctx, q)
					must(err)
				}
			})
		}
		b.Run("services counts", func(b *testing.B) {
			for b.Loop() {
				_, _, err := db.ListServiceSummaries(ctx, store.ServiceQuery{ProjectID: "p", Counts: true, Hostnames: 3, Limit: 50})
				must(err)
			}
		})
	})
}

// benchStores runs f once per store, SQLite in a temporary folder and the
// test PostgreSQL, each fresh and holding project "p" with the verified
// domain example.test. must fails the benchmark on an error.
func benchStores(b *testing.B, f func(b *testing.B, ctx context.Context, db *store.DB, now time.Time, must func(error))) {
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run(kind, func(b *testing.B) {
			dsn := "sqlite:" + filepath.Join(b.TempDir(), "spine.db")
			if kind == "postgres" {
				dsn = storetest.PostgresDSN(b)
			}
			ctx := context.Background()
			db, err := store.Open(ctx, dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			now := time.Now()
			must := func(err error) {
				b.Helper()
				if err != nil {
					b.Fatal(err)
				}
			}
			must(db.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: now}))
			must(db.CreateDomain(ctx, store.Domain{Name: "example.test", ProjectID: "p", Status: store.DomainVerified, CreatedAt: now}))
			f(b, ctx, db, now, must)
		})
	}
}
