package events_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/events"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

func openSQLite(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func projects(t *testing.T, db *store.DB, ids ...string) {
	t.Helper()
	for _, id := range ids {
		must(t, db.CreateProject(context.Background(), store.Project{ID: id, Name: id}))
	}
}

func emit(t *testing.T, db *store.DB, project, subject string) store.Event {
	t.Helper()
	e, _, err := db.AppendEvent(context.Background(), store.Event{ProjectID: project, Type: store.EventTokenCreated, Subject: subject})
	must(t, err)
	return e
}

func startHub(t *testing.T, cfg events.HubConfig) *events.Hub {
	t.Helper()
	h := events.NewHub(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// next returns the subscription's next event, failing after a generous bound.
func next(t *testing.T, s *events.Subscription) (store.Event, bool) {
	t.Helper()
	select {
	case e, ok := <-s.C:
		return e, ok
	case <-time.After(20 * time.Second):
		t.Fatal("no event on the subscription")
		return store.Event{}, false
	}
}

func TestHubFansOutPerProject(t *testing.T) {
	db := openSQLite(t)
	projects(t, db, "p1", "p2")
	h := startHub(t, events.HubConfig{Store: db})
	a, err := h.Subscribe("p1", 0)
	must(t, err)
	b, err := h.Subscribe("p1", 0)
	must(t, err)
	c, err := h.Subscribe("p2", 0)
	must(t, err)

	for i := range 3 {
		emit(t, db, "p1", fmt.Sprint("one-", i))
	}
	emit(t, db, "p2", "two")
	for _, s := range []*events.Subscription{a, b} {
		for i := range 3 {
			e, ok := next(t, s)
			if !ok || e.ProjectID != "p1" || e.ID != int64(i+1) || e.Subject != fmt.Sprint("one-", i) {
				t.Fatalf("p1 subscriber got %+v (open %v), want event %d of p1", e, ok, i+1)
			}
		}
	}
	if e, _ := next(t, c); e.ProjectID != "p2" || e.Subject != "two" {
		t.Fatalf("p2 subscriber got %+v", e)
	}
	select {
	case e := <-c.C:
		t.Fatalf("p2 subscriber got another event: %+v", e)
	default:
	}
	if st := h.Stats(); st.Streams != 3 || st.Delivered != 7 {
		t.Errorf("Stats = %+v, want 3 streams and 7 delivered", st)
	}
	a.Close()
	a.Close()
	if _, ok := <-a.C; ok {
		t.Error("a closed subscription's channel is open")
	}
	if h.Stats().Streams != 2 {
		t.Errorf("streams after Close = %d", h.Stats().Streams)
	}
}

func TestHubDropsASlowSubscriber(t *testing.T) {
	db := openSQLite(t)
	projects(t, db, "p1")
	h := events.NewHub(events.HubConfig{Store: db, Buffer: 2})
	slow, err := h.Subscribe("p1", 0)
	must(t, err)
	// One read finds 5 events, 2 fit.
	for i := range 5 {
		emit(t, db, "p1", fmt.Sprint(i))
	}
	h.Poll(context.Background())
	var got []int64
	for {
		e, ok := next(t, slow)
		if !ok {
			break
		}
		got = append(got, e.ID)
	}
	if !slow.Dropped() {
		t.Fatal("a subscriber that fell behind was not dropped")
	}
	// What it got is a prefix without gaps: it resumes after the last.
	for i, id := range got {
		if id != int64(i+1) {
			t.Fatalf("dropped subscriber got %v: not a gapless prefix", got)
		}
	}
	if len(got) != 2 {
		t.Fatalf("dropped subscriber got %v", got)
	}
	if h.Stats().Dropped != 1 || h.Stats().Streams != 0 {
		t.Errorf("Stats = %+v", h.Stats())
	}
}

func TestHubBounds(t *testing.T) {
	db := openSQLite(t)
	h := events.NewHub(events.HubConfig{Store: db, MaxStreams: 3, MaxStreamsPerProject: 2})
	var subs []*events.Subscription
	for _, p := range []string{"p1", "p1", "p2"} {
		s, err := h.Subscribe(p, 0)
		must(t, err)
		subs = append(subs, s)
	}
	if _, err := h.Subscribe("p3", 0); !errors.Is(err, events.ErrTooManyStreams) {
		t.Errorf("past MaxStreams: %v", err)
	}
	subs[2].Close()
	if _, err := h.Subscribe("p1", 0); !errors.Is(err, events.ErrTooManyProjectStreams) {
		t.Errorf("past MaxStreamsPerProject: %v", err)
	}
	if _, err := h.Subscribe("p3", 0); err != nil {
		t.Errorf("a freed slot: %v", err)
	}
}

// An event recorded through one node reaches a subscriber of another node's
// hub, through PostgreSQL's notices.
func TestHubAcrossNodes(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	projects(t, a, "p1")
	h := startHub(t, events.HubConfig{Store: b, PollInterval: time.Hour}) // no help from polling
	s, err := h.Subscribe("p1", 0)
	must(t, err)
	for i := range 3 {
		want := emit(t, a, "p1", fmt.Sprint(i))
		e, ok := next(t, s)
		if !ok || e.ID != want.ID || e.Subject != want.Subject {
			t.Fatalf("node b's subscriber got %+v, want %+v", e, want)
		}
	}
}
