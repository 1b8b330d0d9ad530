package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// BenchmarkServedLookups: what a node serving before its first sync reads
// of one hostname (syncer's warm-up lookup: its service, the domains above
// it, its project, its uploaded certificate) and what a change notice
// reads of one changed service (ChangesSince), in SQLite and PostgreSQL,
// with 10,000 one-hostname services stored. On PostgreSQL each is a
// round trip per statement.
func BenchmarkServedLookups(b *testing.B) {
	benchStores(b, func(b *testing.B, ctx context.Context, db *store.DB, now time.Time, must func(error)) {
		const n = 10000
		svcs := make([]store.Service, n)
		for i := range svcs {
			svcs[i] = store.Service{ID: fmt.Sprintf("svc_%05d", i), ProjectID: "p", Name: fmt.Sprintf("s%05d", i), Domain: "example.test",
				Hostnames: []string{fmt.Sprintf("s%05d.example.test", i)}, Upstreams: []string{"http://127.0.0.1:1"}}
		}
		for len(svcs) > 0 {
			k := min(len(svcs), 1000)
			must(db.CreateServices(ctx, svcs[:k]))
			svcs = svcs[k:]
		}
		b.Run("service by hostname", func(b *testing.B) {
			i := 0
			for b.Loop() {
				_, err := db.ServiceByHostname(ctx, fmt.Sprintf("s%05d.example.test", i%n))
				must(err)
				i += 7919
			}
		})
		b.Run("warm-up lookup", func(b *testing.B) {
			i := 0
			for b.Loop() {
				h := fmt.Sprintf("s%05d.example.test", i%n)
				s, err := db.ServiceByHostname(ctx, h)
				must(err)
				_, err = db.DomainsNamed(ctx, []string{h, "example.test", "test"})
				must(err)
				_, err = db.GetProject(ctx, s.ProjectID)
				must(err)
				if _, err := db.UploadedCertFor(ctx, h); err == nil {
					b.Fatal("an uploaded certificate")
				}
				i += 7919
			}
		})
		b.Run("changes since", func(b *testing.B) {
			rev, err := db.Revision(ctx)
			must(err)
			for b.Loop() {
				b.StopTimer()
				_, err := db.UpdateService(ctx, "p", "s00042", func(s *store.Service) error {
					s.HSTSMaxAge++
					return nil
				})
				must(err)
				b.StartTimer()
				c, err := db.ChangesSince(ctx, rev)
				must(err)
				if len(c.Services) != 1 {
					b.Fatalf("ChangesSince = %+v", c)
				}
				rev = c.Revision
			}
		})
	})
}
