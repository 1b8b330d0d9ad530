package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// Store is the outbox the sender works from. *store.DB implements it.
type Store interface {
	ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]store.ClaimedDelivery, error)
	FinishAttempt(ctx context.Context, owner, id string, a store.Attempt) (bool, error)
	ReleaseDelivery(ctx context.Context, owner, id string) error
	NextDeliveryDue(ctx context.Context) (time.Time, error)
	AddDelivery(ctx context.Context, d store.Delivery) error
	WatchEvents(ctx context.Context) <-chan struct{}
}

// Schedule is the Standard Webhooks retry schedule: the wait before each
// retry after the first attempt. A delivery is given up after its last.
var schedule = [...]time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Schedule returns the waits before each retry (a copy).
func Schedule() []time.Duration { return schedule[:] }

// Config configures a Sender. It is not changed once handed to New.
type Config struct {
	// Store holds the outbox. Required.
	Store Store
	// Owner names this sender in delivery leases (the node's ID). Required.
	Owner string
	// AllowPrivate lets attempts reach loopback, private and link-local
	// addresses (spine up, for local development). Default: refused.
	AllowPrivate bool
	// AttemptTimeout bounds each attempt, connection to last byte of the
	// answer's head. Default 15 s.
	AttemptTimeout time.Duration
	// Lease is how long a claimed delivery is this sender's; it must
	// outlast an attempt and the record of its outcome. Default twice
	// AttemptTimeout, at least 10 s. A sender that dies mid-attempt holds
	// the delivery this long before another sends it again.
	Lease time.Duration
	// Workers is how many attempts run at once. Default 8.
	Workers int
	// DisableAfter disables an endpoint whose attempts have all failed
	// for this long. Default 5 days.
	DisableAfter time.Duration
	// MaxRetryAfter bounds how far an endpoint's Retry-After may put the
	// next attempt. Default 24 h.
	MaxRetryAfter time.Duration
	// PollInterval is the longest the sender sleeps without looking at
	// the outbox, in case a notice was lost. Default 30 s.
	PollInterval time.Duration
	// Transport, if set, replaces the sender's own HTTP transport (tests
	// that reach a test server's certificate); it must keep the dialer's
	// rules (see Dialer). Default: a transport over Dialer(AllowPrivate).
	Transport http.RoundTripper
	// Now is the clock of attempts and retries. Default time.Now.
	Now func() time.Time
	// Logger receives the sender's lines. Default slog.Default().
	Logger *slog.Logger
}

// Sender delivers the outbox. It is safe for concurrent use.
type Sender struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger

	attempts, delivered, retried, failed, disabled atomic.Uint64
}

// New returns a Sender; Run makes it work.
func New(cfg Config) (*Sender, error) {
	if cfg.Store == nil || cfg.Owner == "" {
		return nil, errors.New("webhooks: Config.Store and Config.Owner are required")
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 15 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = max(2*cfg.AttemptTimeout, 10*time.Second)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.DisableAfter <= 0 {
		cfg.DisableAfter = 5 * 24 * time.Hour
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = 24 * time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 nil, // never through a proxy the environment names: the dialer's checks would see the proxy
			DialContext:           Dialer(cfg.AllowPrivate, cfg.AttemptTimeout).DialContext,
			TLSHandshakeTimeout:   cfg.AttemptTimeout,
			ResponseHeaderTimeout: cfg.AttemptTimeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       time.Minute,
			ForceAttemptHTTP2:     true,
		}
	}
	return &Sender{
		cfg: cfg,
		client: &http.Client{
			Transport: tr,
			Timeout:   cfg.AttemptTimeout,
			// A redirect is an answer: the endpoint must be the URL given.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log: cfg.Logger.With("component", "webhooks"),
	}, nil
}

// Run sends due deliveries until ctx ends: at once when the store
// announces new ones (from any node), when the earliest pending one falls
// due, and at least every PollInterval. While the store is away it keeps
// trying; deliveries wait in the outbox.
func (s *Sender) Run(ctx context.Context) {
	notices := s.cfg.Store.WatchEvents(ctx)
	backoff := time.Second
	for ctx.Err() == nil {
		n, err := s.RunOnce(ctx)
		wait := s.cfg.PollInterval
		switch {
		case err != nil:
			s.log.Warn("sending webhooks", "err", err)
			wait = min(backoff, s.cfg.PollInterval)
			backoff = min(2*backoff, s.cfg.PollInterval)
		case n > 0:
			continue // there may be more due
		default:
			backoff = time.Second
			if next, err := s.cfg.Store.NextDeliveryDue(ctx); err == nil && !next.IsZero() {
				wait = min(max(next.Sub(s.cfg.Now()), 0), s.cfg.PollInterval)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-notices:
			t.Stop()
		case <-t.C:
		}
	}
}

// RunOnce claims the deliveries due now (up to a batch) and makes one
// attempt at each, Workers at a time. It returns how many it attempted.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	batch, err := s.cfg.Store.ClaimDeliveries(cctx, s.cfg.Owner, s.cfg.Now(), s.cfg.Lease, 4*s.cfg.Workers)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("claiming deliveries: %w", err)
	}
	work := make(chan store.ClaimedDelivery)
	var wg sync.WaitGroup
	for range min(s.cfg.Workers, len(batch)) {
		wg.Go(func() {
			for d := range work {
				s.deliver(ctx, d)
			}
		})
	}
	for _, d := range batch {
		work <- d
	}
	close(work)
	wg.Wait()
	return len(batch), nil
}

// deliver makes one attempt at d and records its outcome, retrying the
// record while the lease lasts (a lost record means the attempt is made
// again: at least once).
func (s *Sender) deliver(ctx context.Context, d store.ClaimedDelivery) {
	if ctx.Err() != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.cfg.Store.ReleaseDelivery(rctx, s.cfg.Owner, d.ID) //nolint:errcheck // the lease ends anyway
		cancel()
		return
	}
	s.log.Debug("sending webhook", "delivery", d.ID, "webhook", d.WebhookID, "attempt", d.Attempts+1)
	res := s.attempt(ctx, d.URL, d.Secret, d.MsgID, d.Payload)
	a := s.outcome(d.Attempts, res)
	deadline := time.Now().Add(s.cfg.Lease / 2)
	for {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		disabled, err := s.cfg.Store.FinishAttempt(fctx, s.cfg.Owner, d.ID, a)
		cancel()
		if err == nil {
			s.count(a, disabled)
			if disabled {
				s.log.Warn("webhook disabled", "webhook", d.WebhookID, "reason", a.Disable)
			}
			return
		}
		if errors.Is(err, store.ErrLeaseLost) || time.Now().After(deadline) || ctx.Err() != nil {
			s.log.Warn("recording a webhook attempt; the delivery will be attempted again", "delivery", d.ID, "err", err)
			return
		}
		t := time.NewTimer(time.Second)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

func (s *Sender) count(a store.Attempt, disabled bool) {
	s.attempts.Add(1)
	switch {
	case a.Delivered:
		s.delivered.Add(1)
	case !a.Next.IsZero() && a.Disable == "":
		s.retried.Add(1)
	default:
		s.failed.Add(1)
	}
	if disabled {
		s.disabled.Add(1)
	}
}

// result is what one attempt gave.
type result struct {
	at         time.Time
	status     int
	err        string        // "" if 2xx
	retryAfter time.Duration // the endpoint's Retry-After; 0 if none
}

// attempt POSTs body to url, signed, and reads the answer's status.
func (s *Sender) attempt(ctx context.Context, target, secret, msgID string, body []byte) result {
	now := s.cfg.Now()
	r := result{at: now}
	sig, err := Sign(secret, msgID, now, body)
	if err != nil {
		r.err = err.Error()
		return r
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, target, strings.NewReader(string(body)))
	if err != nil {
		r.err = "the webhook URL cannot be requested"
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Spine-Webhooks/1")
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.client.Do(req)
	if err != nil {
		r.err = attemptError(err, s.cfg.AttemptTimeout)
		return r
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // only to reuse the connection
	r.status = resp.StatusCode
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return r
	}
	r.err = "the endpoint answered " + resp.Status
	r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	return r
}

// attemptError says what went wrong without the URL (it may carry a
// secret of the receiver's, as many webhook URLs do).
func attemptError(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var refused *RefusedError
	switch {
	case errors.As(err, &refused):
		return refused.Error()
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout"):
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return "the endpoint could not be reached: " + err.Error()
}

// parseRetryAfter reads Retry-After (seconds or an HTTP date) as a wait
// from now; 0 if absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(365*24*3600))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// outcome turns an attempt's result into what the store records: the
// next attempt on the schedule (or later, if the endpoint's Retry-After
// asks), given up after the last, or the endpoint disabled on 410 Gone.
// attempts is how many attempts the delivery had before this one.
func (s *Sender) outcome(attempts int, r result) store.Attempt {
	a := store.Attempt{At: r.at, Status: r.status, Error: r.err, DisableAfter: s.cfg.DisableAfter}
	if r.err == "" {
		a.Delivered = true
		return a
	}
	if r.status == http.StatusGone {
		a.Disable = "the endpoint answered 410 Gone"
		return a
	}
	if attempts < len(schedule) {
		wait := schedule[attempts]
		if r.retryAfter > wait {
			wait = min(r.retryAfter, s.cfg.MaxRetryAfter)
		}
		a.Next = r.at.Add(wait)
	}
	return a
}

// Test sends a test message to w now, once, and records it among w's
// deliveries (delivered or failed; it is not retried).
func (s *Sender) Test(ctx context.Context, w store.Webhook) (store.Delivery, error) {
	now := s.cfg.Now().UTC()
	id, msgID := "dlv_"+randomHex(12), "msg_"+randomHex(12)
	body, err := json.Marshal(map[string]any{
		"type":      "webhook.test",
		"timestamp": now.Format(time.RFC3339Nano),
		"data":      map[string]string{"webhook": w.ID, "message": "a test message from Spine: the endpoint and its signature check work"},
	})
	if err != nil {
		return store.Delivery{}, err
	}
	r := s.attempt(ctx, w.URL, w.Secret, msgID, body)
	d := store.Delivery{ID: id, ProjectID: w.ProjectID, WebhookID: w.ID, MsgID: msgID, Type: "webhook.test", Payload: body,
		Status: store.DeliveryDelivered, Attempts: 1, LastStatus: r.status, LastError: r.err, CreatedAt: now, UpdatedAt: now}
	if r.err != "" {
		d.Status = store.DeliveryFailed
	}
	if err := s.cfg.Store.AddDelivery(ctx, d); err != nil {
		return store.Delivery{}, err
	}
	return d, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Stats are the sender's counters, for metrics.
type Stats struct {
	Attempts  uint64 // attempts recorded
	Delivered uint64 // of which delivered (2xx)
	Retried   uint64 // failed, to be retried
	Failed    uint64 // failed and given up (or 410)
	Disabled  uint64 // endpoints this sender disabled
}

// Stats returns the sender's counters.
func (s *Sender) Stats() Stats {
	return Stats{Attempts: s.attempts.Load(), Delivered: s.delivered.Load(), Retried: s.retried.Load(),
		Failed: s.failed.Load(), Disabled: s.disabled.Load()}
}
