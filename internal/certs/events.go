package certs

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// EventRecorder records an event about a certificate's name in the log of
// the project that holds the name's domain. It must be safe for
// concurrent use; *store.DB implements it.
type EventRecorder interface {
	AppendHostnameEvent(ctx context.Context, hostname string, e store.Event) (store.Event, bool, error)
}

// maxQueuedEvents bounds the certificate events waiting to be written
// (while the store is away, say); past it the oldest is dropped, and
// logged.
const maxQueuedEvents = 1024

// eventQueue writes the manager's certificate events from one goroutine,
// in order, retrying while the store is away. Only the node that issued
// or failed sees those certmagic events; the event's key (the
// certificate's serial) keeps a fleet from recording an issuance twice
// even so.
type eventQueue struct {
	out EventRecorder // nil: events are not recorded
	log *slog.Logger

	mu      sync.Mutex
	q       []queuedEvent
	seq     uint64 // numbers the events added
	dropped uint64
	written uint64
	wake    chan struct{}
	done    chan struct{}
}

type queuedEvent struct {
	seq      uint64
	hostname string
	e        store.Event
}

func newEventQueue(out EventRecorder, log *slog.Logger) *eventQueue {
	return &eventQueue{out: out, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (q *eventQueue) add(hostname string, e store.Event) {
	if q.out == nil {
		return
	}
	q.mu.Lock()
	if len(q.q) >= maxQueuedEvents {
		q.log.Warn("certificate event queue full; dropping the oldest event", "hostname", q.q[0].hostname, "type", q.q[0].e.Type)
		q.q = q.q[1:]
		q.dropped++
	}
	q.seq++
	q.q = append(q.q, queuedEvent{q.seq, hostname, e})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run writes queued events until ctx ends, then tries once more to write
// what is left, and returns.
func (q *eventQueue) run(ctx context.Context) {
	defer close(q.done)
	for {
		select {
		case <-q.wake:
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			q.flush(fctx)
			cancel()
			return
		}
		if !q.flush(ctx) {
			t := time.NewTimer(statusRetryDelay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
	}
}

// flush writes the queue in order; it reports false if a write failed
// (the rest wait for the next try).
func (q *eventQueue) flush(ctx context.Context) bool {
	for {
		q.mu.Lock()
		if len(q.q) == 0 {
			q.mu.Unlock()
			return true
		}
		next := q.q[0]
		q.mu.Unlock()
		wctx, cancel := context.WithTimeout(ctx, statusWriteTimeout)
		_, _, err := q.out.AppendHostnameEvent(wctx, next.hostname, next.e)
		cancel()
		if err != nil && !errors.Is(err, store.ErrNotFound) { // ErrNotFound: no project holds the name now
			q.log.Warn("recording certificate event", "hostname", next.hostname, "type", next.e.Type, "err", err)
			return false
		}
		q.mu.Lock()
		if len(q.q) > 0 && q.q[0].seq == next.seq { // else dropped meanwhile
			q.q = q.q[1:]
		}
		q.written++
		q.mu.Unlock()
	}
}

func (q *eventQueue) wait() { <-q.done }

// issuedEvent is certificate.issued (a first certificate) or
// certificate.renewed for leaf, obtained for subject.
func issuedEvent(subject string, leaf *x509.Certificate, renewal bool) store.Event {
	typ := store.EventCertificateIssued
	if renewal {
		typ = store.EventCertificateRenewed
	}
	data, _ := json.Marshal(map[string]any{
		"hostname":   subject,
		"names":      leaf.DNSNames,
		"issuer":     leaf.Issuer.CommonName,
		"serial":     fmt.Sprintf("%x", leaf.SerialNumber),
		"not_before": leaf.NotBefore.UTC().Format(time.RFC3339),
		"not_after":  leaf.NotAfter.UTC().Format(time.RFC3339),
	})
	return store.Event{Type: typ, Subject: subject, Data: data, Time: time.Now().UTC(),
		Key: fmt.Sprintf("cert:%s:%x", subject, leaf.SerialNumber)}
}

// failedEvent is certificate.failed for subject.
func failedEvent(subject string, err error, renewal bool) store.Event {
	data, _ := json.Marshal(map[string]any{
		"hostname": subject,
		"error":    plainError(err),
		"renewal":  renewal,
	})
	return store.Event{Type: store.EventCertificateFailed, Subject: subject, Data: data, Time: time.Now().UTC()}
}

// EventStats are the manager's counters of certificate events, for metrics.
type EventStats struct {
	Queued  int    // waiting to be written
	Written uint64 // written to the store
	Dropped uint64 // dropped from a full queue
}

// EventStats returns the counters of certificate events.
func (m *Manager) EventStats() EventStats {
	m.events.mu.Lock()
	defer m.events.mu.Unlock()
	return EventStats{Queued: len(m.events.q), Written: m.events.written, Dropped: m.events.dropped}
}
