package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

func webhook(t *testing.T, db *store.DB, projectID, id string, events ...string) {
	t.Helper()
	must(t, db.CreateWebhook(ctxT(t), store.Webhook{ID: id, ProjectID: projectID, URL: "https://hooks.example/" + id,
		Events: events, Secret: "whsec_c2VjcmV0LW9mLQ==" + id, CreatedAt: t0}, 0))
}

func appendEv(t *testing.T, db *store.DB, projectID, typ string, at time.Time) store.Event {
	t.Helper()
	e, _, err := db.AppendEvent(ctxT(t), store.Event{ProjectID: projectID, Type: typ, Subject: "s", Time: at})
	must(t, err)
	return e
}

func deliveries(t *testing.T, db *store.DB, projectID, webhookID string) []store.Delivery {
	t.Helper()
	ds, err := db.ListDeliveries(ctxT(t), projectID, webhookID, 100)
	must(t, err)
	return ds
}

// testWebhooks: endpoints per project, and the outbox that events fill.
func testWebhooks(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	webhook(t, db, "p1", "wh_all")
	webhook(t, db, "p1", "wh_certs", store.EventCertificateIssued, store.EventCertificateFailed)
	webhook(t, db, "p2", "wh_other")

	w, err := db.GetWebhook(ctx, "p1", "wh_certs")
	must(t, err)
	if w.URL != "https://hooks.example/wh_certs" || len(w.Events) != 2 || !w.CreatedAt.Equal(t0) || !w.DisabledAt.IsZero() ||
		w.Secret != "whsec_c2VjcmV0LW9mLQ==wh_certs" {
		t.Errorf("GetWebhook = %+v", w)
	}
	_, err = db.GetWebhook(ctx, "p2", "wh_certs")
	wantErr(t, err, store.ErrNotFound, "wh_certs")
	ws, err := db.ListWebhooks(ctx, "p1")
	must(t, err)
	if len(ws) != 2 || ws[0].ID != "wh_all" || ws[0].Events != nil {
		t.Errorf("ListWebhooks(p1) = %+v", ws)
	}
	err = db.CreateWebhook(ctx, store.Webhook{ID: "wh_3", ProjectID: "p1", URL: "https://x.example/"}, 2)
	wantErr(t, err, store.ErrConflict, "2 webhooks")
	err = db.CreateWebhook(ctx, store.Webhook{ID: "wh_4", ProjectID: "nobody", URL: "https://x.example/"}, 0)
	wantErr(t, err, store.ErrNotFound, "nobody")
	wantErr(t, db.DeleteWebhook(ctx, "p2", "wh_all"), store.ErrNotFound, "wh_all")

	e1 := appendEv(t, db, "p1", store.EventServiceCreated, t0)
	e2 := appendEv(t, db, "p1", store.EventCertificateIssued, t0.Add(time.Second))
	all, certs, other := deliveries(t, db, "p1", "wh_all"), deliveries(t, db, "p1", "wh_certs"), deliveries(t, db, "p2", "wh_other")
	if len(all) != 2 || len(certs) != 1 || len(other) != 0 {
		t.Fatalf("deliveries: all %d, certs %d, other project %d; want 2, 1, 0", len(all), len(certs), len(other))
	}
	d := certs[0]
	if d.EventID != e2.ID || d.Type != store.EventCertificateIssued || d.Status != store.DeliveryPending || d.Attempts != 0 ||
		!d.NextAttempt.Equal(e2.Time) || d.MsgID == "" || d.MsgID == all[0].MsgID {
		t.Errorf("queued delivery = %+v", d)
	}
	var body struct {
		Type      string
		Timestamp time.Time
		Data      struct {
			ID      int64
			Type    string
			Project string
			Subject string
		}
	}
	must(t, json.Unmarshal(d.Payload, &body))
	if body.Type != e2.Type || !body.Timestamp.Equal(e2.Time) || body.Data.ID != e2.ID || body.Data.Project != "p1" {
		t.Errorf("payload = %s", d.Payload)
	}
	if all[1].EventID != e1.ID { // newest first
		t.Errorf("deliveries of wh_all not newest first: %+v", all)
	}
	_, err = db.ListDeliveries(ctx, "p2", "wh_all", 10)
	wantErr(t, err, store.ErrNotFound, "wh_all")
	_, err = db.GetDelivery(ctx, "p2", d.ID)
	wantErr(t, err, store.ErrNotFound, d.ID)
	got, err := db.GetDelivery(ctx, "p1", d.ID)
	must(t, err)
	if got.ID != d.ID || string(got.Payload) != string(d.Payload) {
		t.Errorf("GetDelivery = %+v", got)
	}
	next, err := db.NextDeliveryDue(ctx)
	must(t, err)
	if !next.Equal(t0) {
		t.Errorf("NextDeliveryDue = %v, want %v", next, t0)
	}

	// Deleting a webhook deletes its deliveries.
	must(t, db.DeleteWebhook(ctx, "p1", "wh_certs"))
	_, err = db.GetDelivery(ctx, "p1", d.ID)
	wantErr(t, err, store.ErrNotFound, d.ID)
}

// testDeliveryLeases: one sender at a time per delivery, and the outcome
// of an attempt.
func testDeliveryLeases(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	webhook(t, db, "p1", "wh")
	e := appendEv(t, db, "p1", store.EventServiceCreated, t0)

	none, err := db.ClaimDeliveries(ctx, "a", t0.Add(-time.Second), time.Minute, 10)
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("claimed %d deliveries before they were due", len(none))
	}
	got, err := db.ClaimDeliveries(ctx, "a", t0, time.Minute, 10)
	must(t, err)
	if len(got) != 1 || got[0].EventID != e.ID || got[0].URL != "https://hooks.example/wh" || got[0].Secret == "" {
		t.Fatalf("claim = %+v", got)
	}
	id := got[0].ID
	again, err := db.ClaimDeliveries(ctx, "b", t0.Add(time.Hour), time.Minute, 10)
	must(t, err)
	if len(again) != 0 {
		t.Fatal("a leased delivery was claimed by another sender")
	}
	_, err = db.FinishAttempt(ctx, "b", id, store.Attempt{At: t0, Delivered: true})
	if !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("FinishAttempt by a non-owner: %v, want ErrLeaseLost", err)
	}

	// A failed attempt is retried at Next, by whoever claims it then.
	_, err = db.FinishAttempt(ctx, "a", id, store.Attempt{At: t0, Status: 500, Error: "the endpoint answered 500", Next: t0.Add(5 * time.Second)})
	must(t, err)
	d, err := db.GetDelivery(ctx, "p1", id)
	must(t, err)
	if d.Status != store.DeliveryPending || d.Attempts != 1 || d.LastStatus != 500 || !d.NextAttempt.Equal(t0.Add(5*time.Second)) {
		t.Errorf("after a failed attempt: %+v", d)
	}
	w, err := db.GetWebhook(ctx, "p1", "wh")
	must(t, err)
	if !w.FailingSince.Equal(t0) {
		t.Errorf("FailingSince = %v, want %v", w.FailingSince, t0)
	}
	if got, _ := db.ClaimDeliveries(ctx, "b", t0.Add(4*time.Second), time.Minute, 10); len(got) != 0 {
		t.Error("claimed before its next attempt")
	}
	got, err = db.ClaimDeliveries(ctx, "b", t0.Add(5*time.Second), time.Minute, 10)
	must(t, err)
	if len(got) != 1 {
		t.Fatal("not claimable at its next attempt")
	}
	_, err = db.FinishAttempt(ctx, "b", id, store.Attempt{At: t0.Add(5 * time.Second), Delivered: true, Status: 204})
	must(t, err)
	d, err = db.GetDelivery(ctx, "p1", id)
	must(t, err)
	if d.Status != store.DeliveryDelivered || d.Attempts != 2 || d.LastStatus != 204 {
		t.Errorf("after delivery: %+v", d)
	}
	if w, _ := db.GetWebhook(ctx, "p1", "wh"); !w.FailingSince.IsZero() {
		t.Errorf("FailingSince after a success = %v", w.FailingSince)
	}
	if next, _ := db.NextDeliveryDue(ctx); !next.IsZero() {
		t.Errorf("NextDeliveryDue with nothing pending = %v", next)
	}

	// A lease that runs out (a sender that died) frees the delivery.
	appendEv(t, db, "p1", store.EventServiceDeleted, t0)
	got, err = db.ClaimDeliveries(ctx, "dead", t0, 50*time.Millisecond, 10)
	must(t, err)
	if len(got) != 1 {
		t.Fatalf("claimed %d, want 1", len(got))
	}
	poll.Until(t, "the delivery claimable once its lease ran out", time.Minute, func() error {
		got2, err := db.ClaimDeliveries(ctx, "alive", t0, time.Minute, 10)
		if err != nil {
			return poll.Stop(err)
		}
		if len(got2) != 1 || got2[0].ID != got[0].ID {
			return fmt.Errorf("claimed %d deliveries", len(got2))
		}
		return nil
	})
	_, err = db.FinishAttempt(ctx, "dead", got[0].ID, store.Attempt{At: t0, Delivered: true})
	if !errors.Is(err, store.ErrLeaseLost) {
		t.Errorf("the dead sender's late result: %v, want ErrLeaseLost", err)
	}
	must(t, db.ReleaseDelivery(ctx, "alive", got[0].ID))
	if got3, _ := db.ClaimDeliveries(ctx, "other", t0, time.Minute, 10); len(got3) != 1 {
		t.Error("a released delivery was not claimable at once")
	}
}

// testWebhookDisable: 410 and a long failure streak disable the endpoint,
// fail what waits for it, and say so in the event log.
func testWebhookDisable(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	webhook(t, db, "p1", "gone")
	webhook(t, db, "p1", "flaky", store.EventServiceCreated)
	appendEv(t, db, "p1", store.EventServiceCreated, t0)
	appendEv(t, db, "p1", store.EventServiceCreated, t0)

	claim := func(at time.Time) map[string]store.ClaimedDelivery {
		t.Helper()
		got, err := db.ClaimDeliveries(ctx, "s", at, time.Minute, 100)
		must(t, err)
		out := map[string]store.ClaimedDelivery{}
		for _, c := range got {
			if _, ok := out[c.WebhookID]; !ok {
				out[c.WebhookID] = c
			} else {
				must(t, db.ReleaseDelivery(ctx, "s", c.ID))
			}
		}
		return out
	}
	c := claim(t0)
	disabled, err := db.FinishAttempt(ctx, "s", c["gone"].ID, store.Attempt{At: t0, Status: 410, Error: "410 Gone",
		Disable: "the endpoint answered 410 Gone", Next: t0.Add(time.Minute)})
	must(t, err)
	if !disabled {
		t.Error("410 did not disable the webhook")
	}
	w, err := db.GetWebhook(ctx, "p1", "gone")
	must(t, err)
	if w.DisabledAt.IsZero() || w.DisabledReason != "the endpoint answered 410 Gone" {
		t.Errorf("after 410: %+v", w)
	}
	for _, d := range deliveries(t, db, "p1", "gone") {
		if d.Status != store.DeliveryFailed {
			t.Errorf("delivery of a disabled webhook: %s (%s)", d.Status, d.LastError)
		}
	}
	es := eventsOf(t, db, "p1")
	if last := es[len(es)-1]; last.Type != store.EventWebhookDisabled || last.Subject != "gone" || dataOf(t, last)["reason"] != "the endpoint answered 410 Gone" {
		t.Errorf("last event = %v %s", last.Type, last.Data)
	}
	// No new deliveries for it, and none claimable.
	appendEv(t, db, "p1", store.EventServiceCreated, t0.Add(time.Minute))
	if n := len(deliveries(t, db, "p1", "gone")); n != 2 {
		t.Errorf("a disabled webhook got a new delivery: %d", n)
	}
	_, err = db.Redeliver(ctx, "p1", c["gone"].ID, t0)
	wantErr(t, err, store.ErrConflict, "disabled")

	// Failing for DisableAfter disables it too.
	const after = 5 * 24 * time.Hour
	at := t0.Add(time.Minute)
	for i := 0; ; i++ {
		c := claim(at)
		cd, ok := c["flaky"]
		if !ok {
			t.Fatalf("round %d: nothing to claim for flaky at %v", i, at)
		}
		disabled, err := db.FinishAttempt(ctx, "s", cd.ID, store.Attempt{At: at, Status: 503, Error: "503", Next: at.Add(10 * time.Hour), DisableAfter: after})
		must(t, err)
		if at.Sub(t0.Add(time.Minute)) >= after {
			if !disabled {
				t.Fatalf("still enabled after failing for %v", at.Sub(t0))
			}
			break
		}
		if disabled {
			t.Fatalf("disabled after failing for only %v", at.Sub(t0.Add(time.Minute)))
		}
		at = at.Add(10 * time.Hour)
	}
	w, err = db.GetWebhook(ctx, "p1", "flaky")
	must(t, err)
	if w.DisabledAt.IsZero() || !strings.Contains(w.DisabledReason, "every attempt since") {
		t.Errorf("flaky after its streak: %+v", w)
	}

	// Enabled again, it takes new events; a failed delivery can be sent again.
	must(t, db.EnableWebhook(ctx, "p1", "gone"))
	wantErr(t, db.EnableWebhook(ctx, "p2", "gone"), store.ErrNotFound, "gone")
	nd, err := db.Redeliver(ctx, "p1", c["gone"].ID, t0.Add(time.Hour))
	must(t, err)
	if nd.ID == c["gone"].ID || nd.MsgID != c["gone"].MsgID || nd.Status != store.DeliveryPending || string(nd.Payload) != string(c["gone"].Payload) {
		t.Errorf("redelivery = %+v", nd)
	}
	_, err = db.Redeliver(ctx, "p2", c["gone"].ID, t0)
	wantErr(t, err, store.ErrNotFound, c["gone"].ID)
	w, _ = db.GetWebhook(ctx, "p1", "gone")
	if !w.DisabledAt.IsZero() || !w.FailingSince.IsZero() {
		t.Errorf("after EnableWebhook: %+v", w)
	}
}

// testPruneDeliveries: finished deliveries are bounded by age and count;
// pending ones stay.
func testPruneDeliveries(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	webhook(t, db, "p1", "wh")
	for i := range 6 {
		appendEv(t, db, "p1", store.EventServiceCreated, t0.Add(time.Duration(i)*time.Minute))
	}
	got, err := db.ClaimDeliveries(ctx, "s", t0.Add(time.Hour), time.Minute, 4)
	must(t, err)
	for i, c := range got {
		_, err := db.FinishAttempt(ctx, "s", c.ID, store.Attempt{At: t0.Add(time.Duration(i) * time.Minute), Delivered: true})
		must(t, err)
	}
	n, err := db.PruneDeliveries(ctx, t0.Add(-time.Hour), 3)
	must(t, err)
	if n != 1 {
		t.Errorf("pruned %d by count, want 1", n)
	}
	n, err = db.PruneDeliveries(ctx, t0.Add(2*time.Minute), 100)
	must(t, err)
	if n != 1 {
		t.Errorf("pruned %d by age, want 1", n)
	}
	ds := deliveries(t, db, "p1", "wh")
	pending := 0
	for _, d := range ds {
		if d.Status == store.DeliveryPending {
			pending++
		}
	}
	if len(ds) != 4 || pending != 2 {
		t.Errorf("left %d deliveries, %d pending; want 4 and 2", len(ds), pending)
	}
}

// testAddDelivery: a delivery recorded outside the outbox (a test message).
func testAddDelivery(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	webhook(t, db, "p1", "wh")
	d := store.Delivery{ID: "dlv_test", ProjectID: "p1", WebhookID: "wh", MsgID: "msg_t", Type: "webhook.test",
		Payload: json.RawMessage(`{"type":"webhook.test"}`), Status: store.DeliveryDelivered, Attempts: 1, LastStatus: 200, CreatedAt: t0, UpdatedAt: t0}
	must(t, db.AddDelivery(ctx, d))
	got, err := db.GetDelivery(ctx, "p1", "dlv_test")
	must(t, err)
	if got.Status != store.DeliveryDelivered || got.LastStatus != 200 || got.EventID != 0 {
		t.Errorf("GetDelivery = %+v", got)
	}
	d.ID, d.ProjectID = "dlv_x", "p2"
	wantErr(t, db.AddDelivery(ctx, d), store.ErrNotFound, "wh")
	if _, err := db.GetDelivery(ctx, "p2", "dlv_x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused delivery was stored: %v", err)
	}
}
