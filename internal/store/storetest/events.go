package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

func eventsOf(t *testing.T, db *store.DB, projectID string) []store.Event {
	t.Helper()
	es, err := db.ListEvents(ctxT(t), projectID, 0, 1000)
	must(t, err)
	return es
}

func types(es []store.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Type+" "+e.Subject)
	}
	return out
}

func dataOf(t *testing.T, e store.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("event %d data %q: %v", e.ID, e.Data, err)
	}
	return m
}

// testEvents: every domain and service change records its event, in its
// own project only, with IDs counting up per project.
func testEvents(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	must(t, db.CreateDomain(ctx, store.Domain{Name: "example.com", ProjectID: "p1", Status: store.DomainPending, VerifyToken: "tok"}))
	domain(t, db, "p2", "other.example")
	if es := eventsOf(t, db, "p1"); len(es) != 0 {
		t.Fatalf("events after adding a domain: %v (adding is not an event)", types(es))
	}

	// A failed check is recorded once per new finding, then the verification.
	d, err := db.GetDomain(ctx, "example.com")
	must(t, err)
	d.CheckError, d.CheckedAt = "no TXT record", t0
	must(t, db.UpdateDomain(ctx, d))
	d.CheckedAt = t0.Add(time.Minute)
	must(t, db.UpdateDomain(ctx, d)) // same finding: no second event
	d.Status, d.CheckError, d.VerifiedAt, d.CheckedAt = store.DomainVerified, "", t0.Add(2*time.Minute), t0.Add(2*time.Minute)
	must(t, db.UpdateDomain(ctx, d))
	d.CheckedAt = t0.Add(3 * time.Minute)
	must(t, db.UpdateDomain(ctx, d)) // verified again: nothing new

	must(t, db.CreateService(ctx, service("p1", "web", "example.com", "web.example.com", "www.example.com")))
	upd := service("p1", "web", "example.com", "web.example.com")
	upd.UpdatedAt = t0.Add(time.Hour)
	must(t, replaceService(ctx, db, upd))
	must(t, db.DeleteService(ctx, "p1", "web"))
	// Refused writes record nothing.
	wantErr(t, db.DeleteService(ctx, "p1", "web"), store.ErrNotFound, "web")
	wantErr(t, db.CreateService(ctx, service("p1", "x", "other.example", "x.other.example")), store.ErrNotFound, "other.example")

	es := eventsOf(t, db, "p1")
	want := []string{
		"domain.verification_failed example.com", "domain.verified example.com",
		"service.created web", "service.updated web", "service.deleted web",
	}
	if !slices.Equal(types(es), want) {
		t.Fatalf("p1 events = %q, want %q", types(es), want)
	}
	for i, e := range es {
		if e.ID != int64(i+1) || e.ProjectID != "p1" || e.Time.IsZero() {
			t.Errorf("event %d = %+v, want ID %d of p1 with a time", i, e, i+1)
		}
	}
	if got := dataOf(t, es[0])["detail"]; got != "no TXT record" {
		t.Errorf("verification_failed detail = %v", got)
	}
	if !es[0].Time.Equal(t0) {
		t.Errorf("verification_failed time = %v, want the check's time %v", es[0].Time, t0)
	}
	if hs := dataOf(t, es[2])["hostnames"]; fmt.Sprint(hs) != "[web.example.com www.example.com]" {
		t.Errorf("service.created hostnames = %v", hs)
	}
	if !es[3].Time.Equal(t0.Add(time.Hour)) {
		t.Errorf("service.updated time = %v, want the update's", es[3].Time)
	}
	if es := eventsOf(t, db, "p2"); len(es) != 0 {
		t.Errorf("p2 sees events of p1: %v", types(es))
	}

	// A move is recorded in both projects, and neither learns the other's ID.
	d, err = db.GetDomain(ctx, "example.com")
	must(t, err)
	d.ProjectID, d.CheckedAt = "p2", t0.Add(4*time.Minute)
	must(t, db.UpdateDomain(ctx, d))
	p1, p2 := eventsOf(t, db, "p1"), eventsOf(t, db, "p2")
	if last := p1[len(p1)-1]; last.Type != store.EventDomainMoved || dataOf(t, last)["direction"] != "out" || last.ID != 6 {
		t.Errorf("p1's last event = %+v %s, want domain.moved out with ID 6", last, last.Data)
	}
	if len(p2) != 1 || p2[0].Type != store.EventDomainMoved || dataOf(t, p2[0])["direction"] != "in" || p2[0].ID != 1 {
		t.Errorf("p2's events = %v, want one domain.moved in with ID 1", types(p2))
	}
	for _, e := range append(p1, p2...) {
		if s := string(e.Data); strings.Contains(s, `"p1"`) || strings.Contains(s, `"p2"`) {
			t.Errorf("event data names a project: %s", s)
		}
	}

	last, err := db.LastEventID(ctx, "p1")
	must(t, err)
	if last != 6 {
		t.Errorf("LastEventID(p1) = %d, want 6", last)
	}
	last, err = db.LastEventID(ctx, "nobody")
	must(t, err)
	if last != 0 {
		t.Errorf("LastEventID of a project without events = %d, want 0", last)
	}

	// Pages.
	page, err := db.ListEvents(ctx, "p1", 2, 2)
	must(t, err)
	if len(page) != 2 || page[0].ID != 3 || page[1].ID != 4 {
		t.Errorf("ListEvents(after 2, limit 2) = %v", types(page))
	}
	page, err = db.ListEvents(ctx, "p1", 6, 10)
	must(t, err)
	if len(page) != 0 {
		t.Errorf("ListEvents after the last = %v", types(page))
	}
}

// testAppendEvent: once-only keys, hostname events, refusals.
func testAppendEvent(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "example.com")
	domain(t, db, "p2", "shop.example.net")

	e, ok, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenCreated, Subject: "ci", Key: "k1"})
	must(t, err)
	if !ok || e.ID != 1 || string(e.Data) != "{}" || e.Time.IsZero() {
		t.Fatalf("first append = %+v, %v", e, ok)
	}
	_, ok, err = db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenCreated, Subject: "ci", Key: "k1"})
	must(t, err)
	if ok {
		t.Fatal("a second append with the same key was recorded")
	}
	// Keys are per project.
	_, ok, err = db.AppendEvent(ctx, store.Event{ProjectID: "p2", Type: store.EventTokenCreated, Subject: "ci", Key: "k1"})
	must(t, err)
	if !ok {
		t.Fatal("another project's key kept an event out")
	}
	e, ok, err = db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenRevoked, Subject: "ci"})
	must(t, err)
	if !ok || e.ID != 2 {
		t.Fatalf("append after a skipped key: ID %d, want 2 (no ID spent on the skipped one)", e.ID)
	}

	for _, c := range []struct{ host, project string }{
		{"web.example.com", "p1"}, {"example.com", "p1"}, {"*.example.com", "p1"}, {"a.b.shop.example.net", "p2"},
	} {
		e, ok, err := db.AppendHostnameEvent(ctx, c.host, store.Event{Type: store.EventCertificateIssued, Subject: c.host,
			Data: json.RawMessage(`{"hostname":"` + c.host + `"}`), Key: "cert:" + c.host})
		must(t, err)
		if !ok || e.ProjectID != c.project {
			t.Errorf("AppendHostnameEvent(%s) went to %q (recorded %v), want %s", c.host, e.ProjectID, ok, c.project)
		}
	}
	_, _, err = db.AppendHostnameEvent(ctx, "example.net", store.Event{Type: store.EventCertificateIssued})
	wantErr(t, err, store.ErrNotFound, "example.net")

	_, _, err = db.AppendEvent(ctx, store.Event{ProjectID: "nobody", Type: store.EventTokenCreated})
	wantErr(t, err, store.ErrNotFound, "nobody")
	for _, bad := range []string{`[1]`, `"x"`, `{`, `{"a":` + `"` + string(make([]byte, store.MaxEventData)) + `"}`} {
		if _, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: "x", Data: json.RawMessage(bad)}); err == nil {
			t.Errorf("data %.20q accepted", bad)
		}
	}
	if _, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1"}); err == nil {
		t.Error("an event without a type was accepted")
	}
	if last, _ := db.LastEventID(ctx, "p1"); last != 5 {
		t.Errorf("LastEventID(p1) = %d after refusals, want 5", last)
	}
}

// testEventOrder: appends from many writers get IDs 1..n without gaps, and
// a reader that polls "after the last ID I saw" while they write misses
// none: IDs are given in commit order.
func testEventOrder(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	const writers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Every other append carries a key, and some keys repeat.
				e := store.Event{ProjectID: "p1", Type: store.EventTokenCreated, Subject: fmt.Sprint(w, "-", i)}
				if i%2 == 0 {
					e.Key = fmt.Sprint("k-", w, "-", i)
				}
				if _, _, err := db.AppendEvent(ctx, e); err != nil {
					errs <- err
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var seen []int64
	after := int64(0)
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		page, err := db.ListEvents(ctx, "p1", after, 50)
		must(t, err)
		for _, e := range page {
			seen = append(seen, e.ID)
			after = e.ID
		}
		if finished && len(page) == 0 {
			break
		}
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != writers*each {
		t.Fatalf("reader saw %d events, want %d", len(seen), writers*each)
	}
	for i, id := range seen {
		if id != int64(i+1) {
			t.Fatalf("reader saw IDs %v...: a gap or a late commit at position %d", seen[:i+1], i)
		}
	}
}

// testWatchEvents: appends signal WatchEvents; other writes do not.
func testWatchEvents(t *testing.T, db *store.DB) {
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	project(t, db, "p1")
	ch := db.WatchEvents(ctx)
	if db.Kind() == "postgres" {
		// PostgreSQL signals once its LISTEN connection is up.
		waitSignal(t, ch, "the listener connected")
	}
	drain(ch)
	must(t, db.PutKey(ctx, "some/key", []byte("v")))
	// A write signals this process's watchers before it returns, so a
	// signal from the key-value write would be there now.
	select {
	case <-ch:
		t.Fatal("a key-value write signalled WatchEvents")
	default:
	}
	for i := range 3 {
		_, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenCreated, Subject: fmt.Sprint(i)})
		must(t, err)
		waitSignal(t, ch, "after AppendEvent")
		drain(ch)
	}
}

// testPruneEvents: retention by count per project and by age.
func testPruneEvents(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	for i := range 10 {
		_, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenCreated, Time: t0.Add(time.Duration(i) * time.Hour)})
		must(t, err)
	}
	for i := range 3 {
		_, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p2", Type: store.EventTokenCreated, Time: t0.Add(time.Duration(i) * time.Hour)})
		must(t, err)
	}
	n, err := db.PruneEvents(ctx, t0.Add(-time.Hour), 4) // keep 4 per project
	must(t, err)
	if n != 6 {
		t.Errorf("PruneEvents by count deleted %d, want 6", n)
	}
	if es := eventsOf(t, db, "p1"); len(es) != 4 || es[0].ID != 7 {
		t.Errorf("p1 after pruning to 4: %d events from ID %d", len(es), es[0].ID)
	}
	if es := eventsOf(t, db, "p2"); len(es) != 3 {
		t.Errorf("p2 lost events: %d left, want 3", len(es))
	}
	n, err = db.PruneEvents(ctx, t0.Add(90*time.Minute), 100) // older than 1h30
	must(t, err)
	if n != 2 {
		t.Errorf("PruneEvents by age deleted %d, want 2 (p2's first two)", n)
	}
	// IDs are never reused after pruning.
	e, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenCreated})
	must(t, err)
	if e.ID != 11 {
		t.Errorf("ID after pruning = %d, want 11", e.ID)
	}
}

func isQuota(err error, limit string, max, used int) bool {
	var qe *store.QuotaError
	return errors.As(err, &qe) && errors.Is(err, store.ErrQuota) && qe.Limit == limit && qe.Max == max && qe.Used == used
}
