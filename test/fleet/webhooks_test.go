package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/poll"
)

// hookReceiver is a webhook endpoint on 127.0.0.1 that verifies every
// request with the Standard Webhooks library and counts requests per
// webhook-id. answer decides each answer: n is the count for that id so
// far, including this one.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	byID   map[string]int
	bad    []string
	answer func(w http.ResponseWriter, r *http.Request, n int)
}

func newHookReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *hookReceiver {
	h := &hookReceiver{byID: map[string]int{}, answer: answer}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		if wh, err := standardwebhooks.NewWebhook(h.secret); err != nil || wh.Verify(body, r.Header) != nil {
			h.bad = append(h.bad, r.Header.Get("webhook-id"))
		}
		id := r.Header.Get("webhook-id")
		h.byID[id]++
		n := h.byID[id]
		h.mu.Unlock()
		h.answer(w, r, n)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) setSecret(s string) {
	h.mu.Lock()
	h.secret = s
	h.mu.Unlock()
}

func (h *hookReceiver) counts() (map[string]int, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for k, v := range h.byID {
		out[k] = v
	}
	return out, append([]string(nil), h.bad...)
}

// onlyDelivery returns the webhook's one delivery.
func onlyDelivery(ctx context.Context, c *client.Client, webhook string) (client.Delivery, error) {
	ds, err := c.Deliveries(ctx, webhook, 10)
	if err != nil {
		return client.Delivery{}, err
	}
	if len(ds) != 1 {
		return client.Delivery{}, fmt.Errorf("%d deliveries, want 1", len(ds))
	}
	return ds[0], nil
}

// The node that sends a webhook is killed mid-attempt: another node sends
// it once the lease ends, with the same webhook-id. The receiver sees the
// message twice (the attempt cut short and the retry the specification
// allows), never more, and it is recorded as delivered.
func TestWebhookSenderKilledMidDelivery(t *testing.T) {
	dsn := freshSchema(t, basePostgres())
	firstSeen := make(chan struct{})
	var once sync.Once
	recv := newHookReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			// Hold the first attempt until its sender is gone.
			once.Do(func() { close(firstSeen) })
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	f := newFleetArgs(t, dsn, 3, []string{"--webhook-allow-private", "--webhook-timeout", "30s"})
	c := f.nodes[0].client()
	ctx := ctxT(t)
	hook, err := c.AddWebhook(ctx, client.WebhookCreate{URL: recv.srv.URL + "/hook", Events: []string{"service.created"}})
	if err != nil {
		t.Fatal(err)
	}
	recv.setSecret(hook.Secret)
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "killed", Upstreams: []string{upstream(t, "killed")}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-firstSeen:
	case <-time.After(60 * time.Second):
		t.Fatal("no webhook attempt reached the receiver")
	}
	d, err := onlyDelivery(ctx, c, hook.ID)
	if err != nil {
		t.Fatal(err)
	}
	sender := f.waitLog(`"msg":"sending webhook","component":"webhooks","delivery":"`+d.ID+`"`, time.Minute)
	sender.kill()
	t.Logf("%s was sending %s; killed", sender.name, d.ID)

	var other *node
	for _, nd := range f.nodes {
		if nd != sender {
			other = nd
		}
	}
	// The lease (twice the 30 s attempt timeout) runs out, then another
	// node sends it.
	poll.Until(t, "delivery by another node", 3*time.Minute, func() error {
		d, err := onlyDelivery(ctx, other.client(), hook.ID)
		if err != nil {
			return err
		}
		if d.Status != "delivered" {
			return fmt.Errorf("delivery %s: %s after %d attempts (%s)", d.ID, d.Status, d.Attempts, d.LastError)
		}
		return nil
	})
	counts, bad := recv.counts()
	if len(bad) > 0 {
		t.Errorf("requests that do not verify: %v", bad)
	}
	if len(counts) != 1 || counts[d.MsgID] != 2 {
		t.Errorf("receiver saw %v, want the message %s twice (the attempt cut short and its retry)", counts, d.MsgID)
	}
	final, _ := onlyDelivery(ctx, other.client(), hook.ID)
	if final.Attempts != 1 || final.LastStatus != 204 {
		t.Errorf("delivery after the retry: %+v (the cut-short attempt recorded nothing)", final)
	}
}

// A delivery waits in the store's outbox while PostgreSQL is down and is
// sent once it is back.
func TestWebhookSurvivesStoreOutage(t *testing.T) {
	pg := newPGCluster(t)
	var mu sync.Mutex
	healthy := false
	recv := newHookReceiver(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		ok := healthy
		mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	f := newFleetArgs(t, pg.DSN(), 2, []string{"--webhook-allow-private"})
	c := f.nodes[0].client()
	ctx := ctxT(t)
	hook, err := c.AddWebhook(ctx, client.WebhookCreate{URL: recv.srv.URL + "/hook", Events: []string{"service.created"}})
	if err != nil {
		t.Fatal(err)
	}
	recv.setSecret(hook.Secret)
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "outage", Upstreams: []string{upstream(t, "outage")}}); err != nil {
		t.Fatal(err)
	}
	var first client.Delivery
	poll.Until(t, "the first attempt", time.Minute, func() error {
		d, err := onlyDelivery(ctx, c, hook.ID)
		if err != nil {
			return err
		}
		if d.Attempts == 0 || d.NextAttempt == nil {
			return errors.New("not attempted yet")
		}
		first = d
		return nil
	})
	if first.Status != "pending" || first.LastStatus != 503 {
		t.Fatalf("after the first attempt: %+v", first)
	}
	pg.Stop()
	// Down past the retry's due time (5 s after the first attempt).
	poll.Until(t, "the retry to fall due while the store is down", time.Minute, func() error {
		if time.Now().Before(first.NextAttempt.Add(2 * time.Second)) {
			return errors.New("not due yet")
		}
		return nil
	})
	counts, _ := recv.counts()
	if counts[first.MsgID] != 1 {
		t.Fatalf("attempts while the store was down: %v", counts)
	}
	mu.Lock()
	healthy = true
	mu.Unlock()
	pg.Start()
	poll.Until(t, "delivery once the store is back", 2*time.Minute, func() error {
		d, err := onlyDelivery(ctx, c, hook.ID)
		if err != nil {
			return err
		}
		if d.Status != "delivered" {
			return fmt.Errorf("%s after %d attempts (%s)", d.Status, d.Attempts, d.LastError)
		}
		return nil
	})
	counts, bad := recv.counts()
	if len(bad) > 0 || counts[first.MsgID] != 2 {
		t.Errorf("receiver saw %v (unverified %v), want the message twice: the 503 and the delivery", counts, bad)
	}
}
