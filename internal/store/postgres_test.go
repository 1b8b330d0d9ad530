package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

func openPostgres(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPostgres(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.DB {
		return openPostgres(t, storetest.PostgresDSN(t))
	})
}

// Nodes that start at once serialise their migrations; all of them open.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			db, err := store.Open(context.Background(), dsn)
			if err != nil {
				t.Error(err)
				return
			}
			db.Close()
		})
	}
	wg.Wait()
	db := openPostgres(t, dsn)
	if r, err := db.Revision(context.Background()); err != nil || r != 0 {
		t.Errorf("Revision = %d, %v; want 0", r, err)
	}
}

// Two nodes on one database see each other's changes through LISTEN/NOTIFY,
// and a watcher whose connection breaks reconnects and signals.
func TestPostgresWatchAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := storetest.PostgresDSN(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	ch := a.Watch(ctx)

	// The first signal comes once a is listening.
	wait(t, ch, "listener connected")
	pid := store.ListenPID(a)
	if pid == 0 {
		t.Fatal("no LISTEN connection")
	}

	for i := range 3 {
		drainCh(ch)
		if err := b.CreateProject(ctx, store.Project{ID: fmt.Sprint("p", i), Name: fmt.Sprint("p", i)}); err != nil {
			t.Fatal(err)
		}
		wait(t, ch, "after another node's write")
	}

	// The database drops the listener's connection: a reconnects and signals,
	// because it may have missed notices.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	drainCh(ch)
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	wait(t, ch, "after reconnect")
	poll.Until(t, "the listener reconnected", time.Minute, func() error {
		if p := store.ListenPID(a); p == 0 || p == pid {
			return fmt.Errorf("listening from backend %d", p)
		}
		return nil
	})
	drainCh(ch)
	if err := b.CreateProject(ctx, store.Project{ID: "after", Name: "after"}); err != nil {
		t.Fatal(err)
	}
	wait(t, ch, "after another node's write, reconnected")
}

// An event appended on one node signals WatchEvents on another, and only
// WatchEvents: a node's routing snapshot is not reread for every event.
func TestPostgresEventsAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := storetest.PostgresDSN(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	evs, changes := a.WatchEvents(ctx), a.Watch(ctx)
	wait(t, evs, "listener connected")
	if err := b.CreateProject(ctx, store.Project{ID: "p1", Name: "p1"}); err != nil {
		t.Fatal(err)
	}
	wait(t, changes, "after another node's project")
	drainCh(evs)
	drainCh(changes)
	// The project's own notice may still be on its way: one change signal
	// at most, whenever it comes.
	changed := 0
	for i := range 3 {
		if _, _, err := b.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenCreated, Subject: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
		wait(t, evs, "after another node's event")
		es, err := a.ListEvents(ctx, "p1", int64(i), 10)
		if err != nil || len(es) != 1 || es[0].Subject != fmt.Sprint(i) {
			t.Fatalf("node a reads %v, %v after the signal", es, err)
		}
		select {
		case <-changes:
			changed++
		default:
		}
	}
	if changed > 1 {
		t.Errorf("events signalled Watch (the routing snapshot's notice) %d times", changed)
	}
}

// Notices are database-wide in PostgreSQL: a write in another schema of the
// same database (another Spine installation, or another test) does not
// wake this one's watchers.
func TestPostgresNoticesOfOtherSchemasIgnored(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, otherDSN := storetest.PostgresDSN(t), storetest.PostgresDSN(t)
	a, ours, other := openPostgres(t, dsn), openPostgres(t, dsn), openPostgres(t, otherDSN)
	changes, evs := a.Watch(ctx), a.WatchEvents(ctx)
	wait(t, changes, "listener connected")
	wait(t, evs, "listener connected")
	if got := store.Notices(a); got != 0 {
		t.Fatalf("%d notices taken before any write", got)
	}
	// PostgreSQL delivers notices in commit order: once ours has arrived,
	// the other schema's, committed before it, has been read and dropped.
	if err := other.CreateProject(ctx, store.Project{ID: "theirs", Name: "theirs"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.AppendEvent(ctx, store.Event{ProjectID: "theirs", Type: store.EventTokenCreated, Subject: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := ours.CreateProject(ctx, store.Project{ID: "ours", Name: "ours"}); err != nil {
		t.Fatal(err)
	}
	wait(t, changes, "after a write in our schema")
	if got := store.Notices(a); got != 1 {
		t.Errorf("took %d notices, want 1 (ours only)", got)
	}
	if _, _, err := ours.AppendEvent(ctx, store.Event{ProjectID: "ours", Type: store.EventTokenCreated, Subject: "y"}); err != nil {
		t.Fatal(err)
	}
	wait(t, evs, "after an event in our schema")
	if got := store.Notices(a); got != 2 {
		t.Errorf("took %d notices, want 2 (ours only)", got)
	}
}

// A broken connection pool reports ErrUnavailable.
func TestPostgresUnavailable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := store.Open(ctx, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open on a closed port: %v, want ErrUnavailable", err)
	}
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: Watch channel closed", what)
		}
	case <-time.After(time.Minute): // a guard against a hang
		t.Fatalf("%s: no Watch signal", what)
	}
}

func drainCh(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// The reads of every row through pgx's own connection (ListServices of
// every project, ListCertValid) take a connection from the pool: when the
// server has ended every backend of the pool meanwhile (a restart, an
// administrator), they read on a new one, as database/sql's reads do.
func TestPostgresFullReadsAfterBackendsEnded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	app := "spine_ended_" + fmt.Sprint(time.Now().UnixNano())
	db := openPostgres(t, storetest.PostgresDSN(t)+"&application_name="+app)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	must(db.CreateProject(ctx, store.Project{ID: "p", Name: "p", CreatedAt: now}))
	must(db.CreateDomain(ctx, store.Domain{Name: "example.test", ProjectID: "p", Status: store.DomainVerified, VerifyToken: "tok", CreatedAt: now}))
	must(db.CreateService(ctx, store.Service{ID: "s", ProjectID: "p", Name: "web", Domain: "example.test",
		Hostnames: []string{"www.example.test"}, Upstreams: []string{"http://127.0.0.1:9000"}, CreatedAt: now, UpdatedAt: now}))
	must(db.PutCertStatus(ctx, store.CertStatus{Hostname: "www.example.test", Status: store.CertActive,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour)}))

	admin, err := pgx.Connect(ctx, storetest.PostgresDSN(t))
	must(err)
	defer admin.Close(context.Background())
	for round := range 3 {
		ss, err := db.ListServices(ctx, "")
		if err != nil || len(ss) != 1 || ss[0].Hostnames[0] != "www.example.test" {
			t.Fatalf("round %d: ListServices = %v, %v", round, ss, err)
		}
		valid, err := db.ListCertValid(ctx, 1.0/3, now)
		if err != nil || len(valid) != 1 || len(valid[0]) != 1 {
			t.Fatalf("round %d: ListCertValid = %v, %v", round, valid, err)
		}
		var ended int
		must(admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&ended))
		if ended == 0 {
			t.Fatalf("round %d: no backend of the pool to end", round)
		}
	}
}

// A claim that waited for another transaction's lock on a delivery checks
// the row that transaction left: a delivery whose attempt another node
// recorded meanwhile (its next attempt later, its lease given back) is
// not claimed again at once. Before, only the lease and the status were
// checked again, and two nodes attempted one delivery 5 ms apart
// (TestWebhookSurvivesStoreOutage in test/fleet, once in CI).
func TestPostgresClaimRechecksTheDueTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := storetest.PostgresDSN(t)
	db := openPostgres(t, dsn)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := db.CreateProject(ctx, store.Project{ID: "p1", Name: "one", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateWebhook(ctx, store.Webhook{ID: "wh", ProjectID: "p1", URL: "https://hooks.example/wh",
		Secret: "whsec_c2VjcmV0LW9mLQ==", CreatedAt: t0}, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventServiceCreated, Subject: "s", Time: t0}); err != nil {
		t.Fatal(err)
	}
	ds, err := db.ListDeliveries(ctx, "p1", "wh", 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries %v, %v; want one", ds, err)
	}

	// Another node's attempt, recorded in a transaction still open.
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET attempts = 1, next_attempt = $1 WHERE id = $2`,
		t0.Add(time.Hour).UnixNano(), ds[0].ID); err != nil {
		t.Fatal(err)
	}
	type claim struct {
		got []store.ClaimedDelivery
		err error
	}
	done := make(chan claim, 1)
	go func() {
		got, err := db.ClaimDeliveries(ctx, "b", t0.Add(time.Second), time.Minute, 10)
		done <- claim{got, err}
	}()
	// Watched from a connection of its own: inside other's transaction,
	// pg_stat_activity is read once and kept until the transaction ends,
	// so a first look taken before the claim waited would never see it
	// wait (CI, under load, once).
	watch, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(context.Background())
	poll.Until(t, "the claim to wait for the other transaction's lock", 30*time.Second, func() error {
		var n int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE webhook_deliveries SET lease_owner%'`).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errors.New("not waiting")
		}
		return nil
	})
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	c := <-done
	if c.err != nil || len(c.got) != 0 {
		t.Errorf("claim after another node's attempt = %+v, %v; want nothing (next attempt in an hour)", c.got, c.err)
	}
}
