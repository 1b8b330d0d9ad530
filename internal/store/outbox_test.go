package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// onBothStores runs test on a new SQLite store and on a new PostgreSQL one.
func onBothStores(t *testing.T, test func(t *testing.T, db *store.DB)) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			if kind == "sqlite" {
				test(t, openSQLite(t, filepath.Join(t.TempDir(), "spine.db")))
			} else {
				test(t, openPostgres(t, storetest.PostgresDSN(t)))
			}
		})
	}
}

// The outbox is bounded per webhook: past the bound, a new event's delivery
// is recorded as failed at once, and a redelivery is refused, on both back ends.
func TestOutboxBound(t *testing.T) {
	onBothStores(t, func(t *testing.T, db *store.DB) {
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

// PruneEvents deletes in batches, on both back ends, what one statement
// deleted: the events before the cut-off and beyond the bound per project,
// the other project's kept; it counts every batch.
func TestPruneEventsInBatches(t *testing.T) {
	onBothStores(t, func(t *testing.T, db *store.DB) {
		store.SetPruneBatch(db, 3)
		ctx := context.Background()
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for _, p := range []string{"p1", "p2"} {
			if err := db.CreateProject(ctx, store.Project{ID: p, Name: p}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 20 { // p1: days 0..19
			if _, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenCreated, Time: start.Add(time.Duration(i) * 24 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 4 { // p2: days 15..18, kept
			if _, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p2", Type: store.EventTokenCreated, Time: start.Add(time.Duration(15+i) * 24 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
		// Before day 5 (5 events), and beyond the newest 8 of p1 (7 more).
		n, err := db.PruneEvents(ctx, start.Add(5*24*time.Hour), 8)
		if err != nil || n != 12 {
			t.Fatalf("PruneEvents = %d, %v; want 12 deleted", n, err)
		}
		for p, want := range map[string]int64{"p1": 13, "p2": 1} {
			es, err := db.ListEvents(ctx, p, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) == 0 || es[0].ID != want || len(es) != map[string]int{"p1": 8, "p2": 4}[p] {
				t.Errorf("%s: %d events kept from ID %v, want from %d", p, len(es), es, want)
			}
		}
		if n, err := db.PruneEvents(ctx, start.Add(5*24*time.Hour), 8); err != nil || n != 0 {
			t.Errorf("a second prune = %d, %v; want 0", n, err)
		}
	})
}
