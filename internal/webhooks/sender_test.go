package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/webhooks"
)

// receiver is an endpoint on 127.0.0.1 that verifies each request with the
// Standard Webhooks library and answers what answer says.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	answer func(n int, w http.ResponseWriter)

	mu   sync.Mutex
	got  []received
	errs []string
}

type received struct {
	id, ts string
	body   map[string]any
}

func newReceiver(t *testing.T, secret string, answer func(n int, w http.ResponseWriter)) *receiver {
	r := &receiver{t: t, secret: secret, answer: answer}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		// VerifyIgnoringTimestamp: the tests move the sender's clock.
		if err := wh.VerifyIgnoringTimestamp(body, req.Header); err != nil {
			r.errs = append(r.errs, err.Error())
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			r.errs = append(r.errs, "body: "+err.Error())
		}
		r.got = append(r.got, received{req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), m})
		n := len(r.got)
		r.mu.Unlock()
		if answer == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		answer(n, w)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) > 0 {
		r.t.Errorf("receiver: %v", r.errs)
		r.errs = nil
	}
	return append([]received(nil), r.got...)
}

// clock is the sender's injected time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

type env struct {
	db     *store.DB
	clock  *clock
	secret string
	t0     time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateProject(context.Background(), store.Project{ID: "p1", Name: "p1"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &env{db: db, clock: &clock{now: t0}, secret: platform.NewWebhookSecret(), t0: t0}
}

func (e *env) webhook(t *testing.T, id, url string) {
	t.Helper()
	if err := e.db.CreateWebhook(context.Background(), store.Webhook{ID: id, ProjectID: "p1", URL: url, Secret: e.secret, CreatedAt: e.t0}, 0); err != nil {
		t.Fatal(err)
	}
}

func (e *env) event(t *testing.T, subject string) store.Event {
	t.Helper()
	ev, _, err := e.db.AppendEvent(context.Background(), store.Event{ProjectID: "p1", Type: store.EventServiceCreated, Subject: subject, Time: e.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func (e *env) sender(t *testing.T, owner string, mod func(*webhooks.Config)) *webhooks.Sender {
	t.Helper()
	cfg := webhooks.Config{Store: e.db, Owner: owner, AllowPrivate: true, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	s, err := webhooks.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) runAt(t *testing.T, s *webhooks.Sender, at time.Time) int {
	t.Helper()
	e.clock.set(at)
	n, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) delivery(t *testing.T, webhookID string) store.Delivery {
	t.Helper()
	ds, err := e.db.ListDeliveries(context.Background(), "p1", webhookID, 10)
	if err != nil || len(ds) == 0 {
		t.Fatalf("deliveries of %s: %v %v", webhookID, ds, err)
	}
	return ds[0]
}

func TestDelivers(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, e.secret, nil)
	e.webhook(t, "wh", r.srv.URL+"/hook")
	ev := e.event(t, "api")
	s := e.sender(t, "node-a", nil)
	if n := e.runAt(t, s, e.t0); n != 1 {
		t.Fatalf("attempted %d, want 1", n)
	}
	got := r.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests", len(got))
	}
	d := e.delivery(t, "wh")
	if d.Status != store.DeliveryDelivered || d.Attempts != 1 || d.LastStatus != 204 || got[0].id != d.MsgID {
		t.Errorf("delivery = %+v, webhook-id %q", d, got[0].id)
	}
	if got[0].ts != "1772366400" { // the sender's clock
		t.Errorf("webhook-timestamp = %s", got[0].ts)
	}
	body := got[0].body
	data, _ := body["data"].(map[string]any)
	if body["type"] != "service.created" || body["timestamp"] != "2026-03-01T12:00:00Z" || data["id"] != float64(ev.ID) || data["subject"] != "api" {
		t.Errorf("body = %v", body)
	}
	if n := e.runAt(t, s, e.t0.Add(time.Hour)); n != 0 {
		t.Errorf("a delivered message was attempted again (%d)", n)
	}
	if st := s.Stats(); st.Attempts != 1 || st.Delivered != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// Failures are retried on the Standard Webhooks schedule, then given up.
func TestRetrySchedule(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, e.secret, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) })
	e.webhook(t, "wh", r.srv.URL)
	e.event(t, "api")
	s := e.sender(t, "node-a", nil)
	at := e.t0
	e.runAt(t, s, at)
	msgID := e.delivery(t, "wh").MsgID
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	for i, wait := range want {
		d := e.delivery(t, "wh")
		if d.Status != store.DeliveryPending || !d.NextAttempt.Equal(at.Add(wait)) || d.Attempts != i+1 || d.LastStatus != 500 ||
			!strings.Contains(d.LastError, "500 Internal Server Error") {
			t.Fatalf("after attempt %d: %+v; want the next at +%s", i+1, d, wait)
		}
		if n := e.runAt(t, s, at.Add(wait-time.Millisecond)); n != 0 {
			t.Fatalf("retry %d made %s early", i+1, time.Millisecond)
		}
		at = at.Add(wait)
		if n := e.runAt(t, s, at); n != 1 {
			t.Fatalf("retry %d not made at +%s", i+1, wait)
		}
	}
	d := e.delivery(t, "wh")
	if d.Status != store.DeliveryFailed || d.Attempts != 8 || !d.NextAttempt.IsZero() {
		t.Errorf("after the last retry: %+v", d)
	}
	if n := e.runAt(t, s, at.Add(100*time.Hour)); n != 0 {
		t.Error("a given-up delivery was attempted again")
	}
	got := r.requests()
	for _, g := range got {
		if g.id != msgID {
			t.Errorf("webhook-id changed between attempts: %s, %s", g.id, msgID)
		}
	}
	if len(got) != 8 {
		t.Errorf("receiver got %d attempts, want 8", len(got))
	}
	if st := s.Stats(); st.Retried != 7 || st.Failed != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// Retry-After puts the next attempt later than the schedule would (not
// earlier), within MaxRetryAfter.
func TestRetryAfter(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, e.secret, func(n int, w http.ResponseWriter) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "1") // sooner than the schedule's 5 min: the schedule wins
			w.WriteHeader(http.StatusTooManyRequests)
		case 3:
			w.Header().Set("Retry-After", time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat))
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	e.webhook(t, "wh", r.srv.URL)
	e.event(t, "api")
	s := e.sender(t, "node-a", func(c *webhooks.Config) { c.MaxRetryAfter = 24 * time.Hour })
	e.runAt(t, s, e.t0)
	if d := e.delivery(t, "wh"); !d.NextAttempt.Equal(e.t0.Add(time.Hour)) {
		t.Fatalf("after Retry-After: 3600, next at %v, want +1h", d.NextAttempt)
	}
	at := e.t0.Add(time.Hour)
	e.runAt(t, s, at)
	if d := e.delivery(t, "wh"); !d.NextAttempt.Equal(at.Add(5 * time.Minute)) {
		t.Fatalf("after Retry-After: 1, next at %v, want the schedule's +5m", d.NextAttempt)
	}
	at = at.Add(5 * time.Minute)
	e.runAt(t, s, at)
	if d := e.delivery(t, "wh"); !d.NextAttempt.Equal(at.Add(24 * time.Hour)) {
		t.Fatalf("after a Retry-After date 3 days on, next at %v, want MaxRetryAfter (+24h)", d.NextAttempt)
	}
	e.runAt(t, s, at.Add(24*time.Hour))
	if d := e.delivery(t, "wh"); d.Status != store.DeliveryDelivered {
		t.Fatalf("finally: %+v", d)
	}
}

// 410 Gone stops the delivery and disables the endpoint; an endpoint that
// fails for DisableAfter is disabled too; each says so in the event log.
func TestDisables(t *testing.T) {
	e := newEnv(t)
	gone := newReceiver(t, e.secret, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusGone) })
	down := newReceiver(t, e.secret, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) })
	e.webhook(t, "gone", gone.srv.URL)
	e.webhook(t, "down", down.srv.URL)
	s := e.sender(t, "node-a", func(c *webhooks.Config) { c.DisableAfter = 3 * time.Hour })
	e.event(t, "one")
	e.runAt(t, s, e.t0)
	w, err := e.db.GetWebhook(context.Background(), "p1", "gone")
	if err != nil || w.DisabledAt.IsZero() || w.DisabledReason != "the endpoint answered 410 Gone" {
		t.Fatalf("after 410: %+v %v", w, err)
	}
	if d := e.delivery(t, "gone"); d.Status != store.DeliveryFailed || d.LastStatus != 410 {
		t.Errorf("the 410 delivery: %+v", d)
	}
	// down fails at +0, +5s, +5m5s, +35m5s, +2h35m5s: disabled at the last.
	at := e.t0
	for _, wait := range []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour} {
		at = at.Add(wait)
		e.runAt(t, s, at)
		if w, _ := e.db.GetWebhook(context.Background(), "p1", "down"); !w.DisabledAt.IsZero() && at.Sub(e.t0) < 3*time.Hour {
			t.Fatalf("disabled after failing for %s", at.Sub(e.t0))
		}
	}
	e.event(t, "two") // queued while down is still enabled
	at = at.Add(time.Hour)
	e.runAt(t, s, at) // +3h35m: failing for over 3 h
	w, _ = e.db.GetWebhook(context.Background(), "p1", "down")
	if w.DisabledAt.IsZero() || !strings.Contains(w.DisabledReason, "every attempt since") {
		t.Fatalf("down after failing for %s: %+v", at.Sub(e.t0), w)
	}
	es, err := e.db.ListEvents(context.Background(), "p1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var disabled []string
	for _, ev := range es {
		if ev.Type == store.EventWebhookDisabled {
			disabled = append(disabled, ev.Subject)
		}
	}
	if strings.Join(disabled, ",") != "gone,down" {
		t.Errorf("webhook.disabled events for %v, want gone then down", disabled)
	}
	if st := s.Stats(); st.Disabled != 2 {
		t.Errorf("Stats = %+v", st)
	}
}

// Every attempt has a timeout; a redirect is an answer, not followed; a
// private target is refused unless allowed, without a connection.
func TestAttemptBounds(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	slow := newReceiver(t, e.secret, func(_ int, w http.ResponseWriter) { <-release })
	defer close(release)
	moved := newReceiver(t, e.secret, func(_ int, w http.ResponseWriter) {
		w.Header().Set("Location", "http://169.254.169.254/latest/meta-data/")
		w.WriteHeader(http.StatusFound)
	})
	e.webhook(t, "slow", slow.srv.URL)
	e.webhook(t, "moved", moved.srv.URL)
	e.event(t, "api")
	s := e.sender(t, "node-a", func(c *webhooks.Config) { c.AttemptTimeout = 300 * time.Millisecond })
	e.runAt(t, s, e.t0)
	if d := e.delivery(t, "slow"); d.Status != store.DeliveryPending || d.LastError != "no answer within 300ms" {
		t.Errorf("a hanging endpoint: %+v", d)
	}
	if d := e.delivery(t, "moved"); d.LastStatus != 302 || !strings.Contains(d.LastError, "302") || len(moved.requests()) != 1 {
		t.Errorf("a redirect: %+v", d)
	}

	// Without leave for private targets, 127.0.0.1 is refused.
	e2 := newEnv(t)
	local := newReceiver(t, e2.secret, nil)
	e2.webhook(t, "local", local.srv.URL)
	e2.event(t, "api")
	strict := e2.sender(t, "node-a", func(c *webhooks.Config) { c.AllowPrivate = false })
	e2.runAt(t, strict, e2.t0)
	d := e2.delivery(t, "local")
	if d.Status != store.DeliveryPending || !strings.Contains(d.LastError, "refused to connect to 127.0.0.1, a loopback address") {
		t.Errorf("a loopback target without leave: %+v", d)
	}
	if n := len(local.requests()); n != 0 {
		t.Errorf("the loopback receiver got %d requests", n)
	}
	if strings.Contains(d.LastError, local.srv.URL) {
		t.Errorf("the error shows the URL: %s", d.LastError)
	}
}

// Two senders (two nodes) on one outbox send each delivery once.
func TestOneSenderPerDelivery(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, e.secret, nil)
	e.webhook(t, "wh", r.srv.URL)
	for i := range 40 {
		e.event(t, string(rune('a'+i%26)))
	}
	a, b := e.sender(t, "node-a", nil), e.sender(t, "node-b", nil)
	var wg sync.WaitGroup
	for _, s := range []*webhooks.Sender{a, b} {
		wg.Go(func() {
			for {
				n, err := s.RunOnce(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	got := r.requests()
	ids := map[string]int{}
	for _, g := range got {
		ids[g.id]++
	}
	if len(got) != 40 || len(ids) != 40 {
		t.Errorf("receiver got %d requests for %d messages, want 40 and 40", len(got), len(ids))
	}
	if a.Stats().Attempts+b.Stats().Attempts != 40 {
		t.Errorf("attempts: %d + %d", a.Stats().Attempts, b.Stats().Attempts)
	}
}

// A test message is sent at once and recorded.
func TestTestMessage(t *testing.T) {
	e := newEnv(t)
	r := newReceiver(t, e.secret, nil)
	e.webhook(t, "wh", r.srv.URL)
	w, err := e.db.GetWebhook(context.Background(), "p1", "wh")
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.sender(t, "node-a", nil).Test(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	got := r.requests()
	if d.Status != store.DeliveryDelivered || len(got) != 1 || got[0].body["type"] != "webhook.test" || got[0].id != d.MsgID {
		t.Errorf("test delivery %+v; receiver got %+v", d, got)
	}
	if stored := e.delivery(t, "wh"); stored.ID != d.ID {
		t.Errorf("test delivery not recorded: %+v", stored)
	}
}
