package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/api"
	"github.com/spine-platform/spine/internal/dashboard"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// BenchmarkPages answers every page of the dashboard for a project with
// 10,000 hostnames (100 services of 100 names; 9,800 certificates active,
// 100 issuing, 50 failed, 50 expiring in 3 days), in SQLite, through the
// same parts as a node (store behind api.StaleReads, platform, api.Local).
// The figure per page is its server time: ns/op. BENCHMARKS.md has them.
func BenchmarkPages(b *testing.B) {
	d, local, token, admin := tenThousand(b)
	// What a page costs when its project's view is read anew (the first
	// page, the first after a change made through the dashboard); later
	// pages are answered from the view while it is read again in the
	// background (views.go).
	b.Run("view read", func(b *testing.B) {
		for b.Loop() {
			if _, err := local.Services(context.Background(), token); err != nil {
				b.Fatal(err)
			}
			if _, err := local.Certificates(context.Background(), token); err != nil {
				b.Fatal(err)
			}
		}
	})
	pages := []string{
		"/ui/", "/ui/services", "/ui/services?q=h-0042", "/ui/services?page=2", "/ui/services/svc-42",
		"/ui/hostnames", "/ui/hostnames?q=h-00420", "/ui/hostnames?status=active&page=150",
		"/ui/hostnames/h-04242.example.test", "/ui/domains", "/ui/events", "/ui/tokens", "/ui/webhooks", "/ui/operator",
	}
	for _, p := range pages {
		b.Run(p, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", p, nil)
				if p == "/ui/operator" {
					req.Header.Set("Authorization", "Bearer "+admin) // the operator's token
				} else {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				rec := httptest.NewRecorder()
				d.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body.String())
				}
			}
		})
	}
}

func tenThousand(b *testing.B) (d *dashboard.Dashboard, local *api.Local, token, admin string) {
	b.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "spine.db"))
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
	local = api.NewLocal(api.Config{Platform: p})
	d, err = dashboard.New(dashboard.Config{API: local, StoreKind: db.Kind(),
		UpstreamHealth: func() map[string]bool { return map[string]bool{"http://127.0.0.1:20007": false} }})
	if err != nil {
		b.Fatal(err)
	}
	return d, local, token, strings.TrimSpace(string(adminToken))
}
