package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// The outbox is bounded per webhook: past the bound, a new event's delivery
// is recorded as failed at once, and a redelivery is refused, on both back ends.
func TestOutboxBound(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var db *store.DB
			if kind == "sqlite" {
				db = openSQLite(t, filepath.Join(t.TempDir(), "spine.db"))
			} else {
				db = openPostgres(t, storetest.PostgresDSN(t))
			}
			store.SetMaxPendingDeliveries(db, 3)
			ctx := context.Background()
			if err := db.CreateProject(ctx, store.Project{ID: "p1", Name: "p1"}); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateWebhook(ctx, store.Webhook{ID: "wh", ProjectID: "p1", URL: "https://x.example/"}, 0); err != nil {
				t.Fatal(err)
			}
			for range 5 {
				if _, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenCreated}); err != nil {
					t.Fatal(err)
				}
			}
			ds, err := db.ListDeliveries(ctx, "p1", "wh", 10)
			if err != nil {
				t.Fatal(err)
			}
			var pending, full int
			for _, d := range ds {
				switch {
				case d.Status == store.DeliveryPending:
					pending++
				case d.Status == store.DeliveryFailed && strings.Contains(d.LastError, "outbox's bound"):
					full++
				}
			}
			if pending != 3 || full != 2 {
				t.Errorf("%d pending and %d refused for the bound; want 3 and 2", pending, full)
			}
			_, err = db.Redeliver(ctx, "p1", ds[0].ID, ds[0].CreatedAt)
			if err == nil || !strings.Contains(err.Error(), "outbox's bound") {
				t.Errorf("redelivery past the bound: %v", err)
			}
		})
	}
}
