package certs

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// pacer is the ACME client's transport: it spaces repeated POST-as-GET
// requests to one URL (the polls of an authorization or an order) with
// exponential backoff, first after 2×first, then doubling up to max.
// acmez polls at a fixed interval; with that interval set to first, the
// pacer turns it into 10, 20, 40 ... 1000 ms: a CA that validates in
// milliseconds is seen at once, and a slow one gets a few polls a second at
// most. A CA's Retry-After still applies (acmez honours it on top).
// Requests with a payload (new orders, challenge responses, finalization)
// are never delayed. It also records a refusal's Retry-After for the order
// (retryAfterRecorder below), which acmez does not pass on.
type pacer struct {
	next       http.RoundTripper
	first, max time.Duration

	mu   sync.Mutex
	seen map[string]pace // by URL
}

type pace struct {
	n    int       // POST-as-GET requests sent so far
	last time.Time // when the latest was (or will be) sent
}

// maxPaced bounds the URLs remembered; each is an authorization or an order
// in progress, forgotten paceFor after its last poll.
const (
	maxPaced = 10_000
	paceFor  = 10 * time.Minute
)

func newPacer(next http.RoundTripper, first, max time.Duration) *pacer {
	return &pacer{next: next, first: first, max: max, seen: map[string]pace{}}
}

func (p *pacer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && isPostAsGet(req) {
		if wait := p.reserve(req.URL.String(), time.Now()); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-req.Context().Done():
				t.Stop()
				return nil, req.Context().Err()
			}
		}
	}
	resp, err := p.next.RoundTrip(req)
	if err == nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if rec, ok := req.Context().Value(retryAfterKey{}).(*retryAfterRecorder); ok {
			if t, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				rec.set(t)
			}
		}
	}
	return resp, err
}

// retryAfterRecorder keeps the latest Retry-After a CA sent with a refusal
// during one order (acmez returns the problem, not the header). It travels
// in the requests' context.
type retryAfterRecorder struct {
	mu    sync.Mutex
	until time.Time
}

type retryAfterKey struct{}

func (r *retryAfterRecorder) set(t time.Time) {
	r.mu.Lock()
	if t.After(r.until) {
		r.until = t
	}
	r.mu.Unlock()
}

func (r *retryAfterRecorder) get() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.until
}

// maxRetryAfter bounds what a CA's Retry-After can hold back.
const maxRetryAfter = 7 * 24 * time.Hour

// parseRetryAfter reads a Retry-After header: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	var t time.Time
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return time.Time{}, false
		}
		t = now.Add(time.Duration(min(secs, int(maxRetryAfter/time.Second))) * time.Second)
	} else if d, err := http.ParseTime(v); err == nil {
		t = d
	} else {
		return time.Time{}, false
	}
	if t.After(now.Add(maxRetryAfter)) {
		t = now.Add(maxRetryAfter)
	}
	return t, true
}

// retryAfterError is an order's error with the time the CA asked us to
// wait until (its Retry-After header).
type retryAfterError struct {
	err   error
	until time.Time
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// reserve returns how long a poll of url must wait, and books its slot.
func (p *pacer) reserve(url string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.seen) >= maxPaced {
		for u, s := range p.seen {
			if now.Sub(s.last) > paceFor {
				delete(p.seen, u)
			}
		}
		if len(p.seen) >= maxPaced {
			clear(p.seen)
		}
	}
	s := p.seen[url]
	at := now
	if s.n > 0 {
		gap := p.max
		if s.n < 20 && p.first<<s.n < p.max {
			gap = p.first << s.n
		}
		if next := s.last.Add(gap); next.After(now) {
			at = next
		}
	}
	p.seen[url] = pace{n: s.n + 1, last: at}
	return at.Sub(now)
}

// isPostAsGet reports a JWS-signed request with an empty payload (RFC 8555
// §6.3), which is how ACME clients read and poll resources.
func isPostAsGet(req *http.Request) bool {
	if req.GetBody == nil {
		return false
	}
	body, err := req.GetBody()
	if err != nil {
		return false
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, 64<<10))
	if err != nil || !bytes.Contains(data, []byte(`"payload"`)) {
		return false
	}
	var jws struct {
		Payload *string `json:"payload"`
	}
	return json.Unmarshal(data, &jws) == nil && jws.Payload != nil && *jws.Payload == ""
}
