package events_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spine-platform/spine/internal/events"
	"github.com/spine-platform/spine/internal/store"
)

// certificate.expiring: once a certificate is an hour past its renewal
// point (a third of its lifetime left) and not renewed, once per
// certificate, however many nodes run the check; a renewed one is not.
func TestExpiring(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	projects(t, db, "p1")
	must(t, db.CreateDomain(ctx, store.Domain{Name: "example.com", ProjectID: "p1", Status: store.DomainVerified}))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, h := range []string{"stuck.example.com", "renewed.example.com"} {
		must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: h, Status: store.CertActive, Issuer: "Test CA",
			NotBefore: start, NotAfter: start.Add(90 * time.Hour)}))
	}
	// A name no project holds: skipped, not an error.
	must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: "orphan.example.net", Status: store.CertActive,
		NotBefore: start, NotAfter: start.Add(90 * time.Hour)}))

	now := start
	cfg := events.MaintainConfig{Store: db, Now: func() time.Time { return now }}
	expiring := func() []store.Event {
		es, err := db.ListEvents(ctx, "p1", 0, 100)
		must(t, err)
		var out []store.Event
		for _, e := range es {
			if e.Type == store.EventCertificateExpiring {
				out = append(out, e)
			}
		}
		return out
	}
	// Renewal point: 60 h. Before 61 h nothing is reported.
	for _, at := range []time.Duration{0, 60 * time.Hour, 60*time.Hour + 59*time.Minute} {
		now = start.Add(at)
		must(t, events.MaintainOnce(ctx, cfg))
	}
	if es := expiring(); len(es) != 0 {
		t.Fatalf("reported before the grace ran out: %+v", es)
	}
	now = start.Add(61 * time.Hour)
	must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: "renewed.example.com", Status: store.CertActive,
		NotBefore: now, NotAfter: now.Add(90 * time.Hour)}))
	// Two nodes run the check, twice.
	for range 2 {
		must(t, events.MaintainOnce(ctx, cfg))
		must(t, events.MaintainOnce(ctx, cfg))
		now = now.Add(5 * time.Minute)
	}
	es := expiring()
	if len(es) != 1 || es[0].Subject != "stuck.example.com" {
		t.Fatalf("expiring events = %+v, want one for stuck.example.com", es)
	}
	var data map[string]string
	must(t, json.Unmarshal(es[0].Data, &data))
	if data["not_after"] != start.Add(90*time.Hour).Format(time.RFC3339) || data["issuer"] != "Test CA" || data["left"] != "29h0m0s" {
		t.Errorf("expiring data = %v", data)
	}
}

// Retention: events past MaxAge or beyond MaxPerProject go.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	projects(t, db, "p1")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		_, _, err := db.AppendEvent(ctx, store.Event{ProjectID: "p1", Type: store.EventTokenCreated, Time: start.Add(time.Duration(i) * 24 * time.Hour)})
		must(t, err)
	}
	now := start.Add(12 * 24 * time.Hour)
	var logged strings.Builder
	cfg := events.MaintainConfig{Store: db, MaxAge: 7 * 24 * time.Hour, MaxPerProject: 4, Now: func() time.Time { return now },
		Logger: slog.New(slog.NewTextHandler(&logged, nil))}
	must(t, events.MaintainOnce(ctx, cfg))
	es, err := db.ListEvents(ctx, "p1", 0, 100)
	must(t, err)
	// Age keeps days 5..9 (5 events), count keeps the newest 4.
	if len(es) != 4 || es[0].ID != 7 {
		t.Errorf("kept %d events from ID %d, want 4 from 7", len(es), es[0].ID)
	}
	if w := `msg="pruned old events" component=events events=6 max_age=168h0m0s max_per_project=4`; !strings.Contains(logged.String(), w) {
		t.Errorf("logged %q, want %q in it", logged.String(), w)
	}
	// A round that prunes nothing says nothing.
	logged.Reset()
	must(t, events.MaintainOnce(ctx, cfg))
	if logged.Len() != 0 {
		t.Errorf("a round with nothing to prune logged %q", logged.String())
	}
}

// certificate.expiring for an uploaded certificate: at 30, 7 and 1 days
// before its end, once each however often and on however many nodes the
// check runs; the managed certificate it replaces is not reported.
func TestUploadedExpiring(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	projects(t, db, "p1")
	must(t, db.CreateDomain(ctx, store.Domain{Name: "example.com", ProjectID: "p1", Status: store.DomainVerified}))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(40 * 24 * time.Hour)
	must(t, db.PutUploadedCert(ctx, "example.com", store.UploadedCert{Hostname: "shop.example.com", ProjectID: "p1",
		Chain: []byte("c"), Key: []byte("k"), Issuer: "Bought CA", NotBefore: start, NotAfter: end, SHA256: "ab"}))
	// The managed certificate from before the upload, long due: not reported.
	must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: "shop.example.com", Status: store.CertActive, Issuer: "Spine Internal CA",
		NotBefore: start.Add(-80 * time.Hour), NotAfter: start.Add(10 * time.Hour)}))
	now := start
	cfg := events.MaintainConfig{Store: db, Now: func() time.Time { return now }}
	type mark struct{ mark, left string }
	var got []mark
	var seen int64 // the last event read (events age out of the log as the clock jumps)
	check := func() {
		es, err := db.ListEvents(ctx, "p1", seen, 100)
		must(t, err)
		for _, e := range es {
			seen = e.ID
			if e.Type != store.EventCertificateExpiring {
				continue
			}
			var data map[string]any
			must(t, json.Unmarshal(e.Data, &data))
			if e.Subject != "shop.example.com" || data["issuer"] != "Bought CA" || data["uploaded"] != true {
				t.Errorf("event %+v %v", e, data)
			}
			got = append(got, mark{data["mark"].(string), data["left"].(string)})
		}
	}
	for _, at := range []time.Duration{0, 9*24*time.Hour + 23*time.Hour, 10 * 24 * time.Hour, 10*24*time.Hour + time.Hour,
		33 * 24 * time.Hour, 34 * 24 * time.Hour, 39*24*time.Hour + 12*time.Hour, 40*24*time.Hour + time.Hour} {
		now = start.Add(at)
		for range 2 { // two nodes
			must(t, events.MaintainOnce(ctx, cfg))
		}
		check()
	}
	want := []mark{{"30d", "720h0m0s"}, {"7d", "168h0m0s"}, {"1d", "12h0m0s"}}
	if len(got) != len(want) {
		t.Fatalf("expiring events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: %v, want %v", i, got[i], want[i])
		}
	}
}

// prunes is a MaintainStore that counts its rounds (one PruneEvents each)
// and holds nothing.
type prunes struct{ n atomic.Int32 }

func (*prunes) ListCertStatusDue(context.Context, float64, time.Time, int) ([]store.CertStatus, error) {
	return nil, nil
}
func (*prunes) AppendHostnameEvent(context.Context, string, store.Event) (store.Event, bool, error) {
	return store.Event{}, false, nil
}
func (*prunes) AppendEvent(context.Context, store.Event) (store.Event, bool, error) {
	return store.Event{}, false, nil
}
func (*prunes) ListUploadedCerts(context.Context, string, bool) ([]store.UploadedCert, error) {
	return nil, nil
}
func (p *prunes) PruneEvents(context.Context, time.Time, int) (int64, error) {
	p.n.Add(1)
	return 0, nil
}
func (*prunes) PruneDeliveries(context.Context, time.Time, int) (int64, error) {
	return 0, nil
}

// Maintain's first round waits for After (a node's first sync), however
// long that takes, then the rounds come every Interval; without After the
// first is at once. A context that ends while it waits ends it.
func TestMaintainWaitsForAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		after := make(chan struct{})
		st, stop := runMaintain(t, after)
		time.Sleep(10 * time.Minute) // the bubble's clock: no wall-clock wait
		synctest.Wait()
		if n := st.n.Load(); n != 0 {
			t.Fatalf("%d rounds before After closed; want none", n)
		}
		close(after)
		synctest.Wait()
		if n := st.n.Load(); n != 1 {
			t.Fatalf("%d rounds once After closed; want 1 at once", n)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := st.n.Load(); n != 2 {
			t.Fatalf("%d rounds an Interval later; want 2", n)
		}
		stop()

		st, stop = runMaintain(t, nil)
		synctest.Wait()
		if n := st.n.Load(); n != 1 {
			t.Fatalf("%d rounds without After; want 1 at once", n)
		}
		stop()

		st, stop = runMaintain(t, make(chan struct{}))
		synctest.Wait()
		stop() // returns: Maintain ended while it waited
		if n := st.n.Load(); n != 0 {
			t.Fatalf("%d rounds with After never closed; want none", n)
		}
	})
}

// runMaintain runs Maintain over a prunes store, rounds every minute,
// the first after after; stop ends it and waits for it to return.
func runMaintain(t *testing.T, after <-chan struct{}) (st *prunes, stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	st, done := &prunes{}, make(chan struct{})
	go func() {
		events.Maintain(ctx, events.MaintainConfig{Store: st, Interval: time.Minute, After: after})
		close(done)
	}()
	return st, func() { cancel(); <-done }
}
