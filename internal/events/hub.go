package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// HubStore is what the hub reads. *store.DB implements it.
type HubStore interface {
	ListEvents(ctx context.Context, projectID string, after int64, limit int) ([]store.Event, error)
	WatchEvents(ctx context.Context) <-chan struct{}
}

// HubConfig configures a Hub. It is not changed once handed to NewHub.
type HubConfig struct {
	// Store is read after every event notice. Required.
	Store HubStore
	// MaxStreams bounds the subscribers of the hub (of this node). Default 256.
	MaxStreams int
	// MaxStreamsPerProject bounds one project's subscribers. Default 16.
	MaxStreamsPerProject int
	// Buffer is how many events a subscriber may have waiting; one more
	// drops it. Default 256.
	Buffer int
	// PollInterval is how often the store is read without a notice, in
	// case one was lost. Default 30 s.
	PollInterval time.Duration
	// Logger receives the hub's warnings. Default slog.Default().
	Logger *slog.Logger
}

// Errors of Subscribe.
var (
	// ErrTooManyStreams means the node serves MaxStreams streams already.
	ErrTooManyStreams = errors.New("events: this node serves the most event streams it may; retry later")
	// ErrTooManyProjectStreams means the project has MaxStreamsPerProject streams open.
	ErrTooManyProjectStreams = errors.New("events: the project has the most event streams it may have open; close one")
	// ErrStopped means the hub's Run has returned (the node is stopping).
	ErrStopped = errors.New("events: the server is stopping")
)

// readPage is how many events one store read of the hub returns.
const readPage = 200

// Hub fans new events out to subscribers, per project. It is safe for
// concurrent use. Memory is bounded by MaxStreams × Buffer events.
type Hub struct {
	cfg HubConfig
	log *slog.Logger

	mu       sync.Mutex
	projects map[string]*projectSubs
	streams  int
	stopped  bool

	wake chan struct{} // capacity 1: a project got its first subscriber

	delivered atomic.Uint64
	dropped   atomic.Uint64
	reads     atomic.Uint64
}

type projectSubs struct {
	cursor int64 // the hub has fanned out every event of the project up to here
	subs   map[*Subscription]struct{}
}

// NewHub returns a hub; Run makes it work.
func NewHub(cfg HubConfig) *Hub {
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 256
	}
	if cfg.MaxStreamsPerProject <= 0 {
		cfg.MaxStreamsPerProject = 16
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Hub{cfg: cfg, log: cfg.Logger.With("component", "events"), projects: map[string]*projectSubs{}, wake: make(chan struct{}, 1)}
}

// Subscription receives the new events of one project, in ID order, on C.
// C is closed when the subscription is closed or dropped.
type Subscription struct {
	C <-chan store.Event

	c       chan store.Event
	hub     *Hub
	project string
	once    sync.Once
	dropped atomic.Bool
}

// Subscribe starts a subscription to the project's events with an ID above
// from. Events up to the hub's position for the project that are above
// from may not come on C: read those from the store after subscribing
// (events that come both ways have the same ID; skip those already seen).
func (h *Hub) Subscribe(projectID string, from int64) (*Subscription, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, ErrStopped
	}
	if h.streams >= h.cfg.MaxStreams {
		return nil, ErrTooManyStreams
	}
	ps := h.projects[projectID]
	if ps != nil && len(ps.subs) >= h.cfg.MaxStreamsPerProject {
		return nil, ErrTooManyProjectStreams
	}
	if ps == nil {
		ps = &projectSubs{cursor: from, subs: map[*Subscription]struct{}{}}
		h.projects[projectID] = ps
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	c := make(chan store.Event, h.cfg.Buffer)
	s := &Subscription{C: c, c: c, hub: h, project: projectID}
	ps.subs[s] = struct{}{}
	h.streams++
	return s, nil
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() { s.hub.remove(s, false) }

// Dropped reports whether the hub dropped the subscription because its
// buffer was full: the reader fell behind and should resume from the last
// event it handled.
func (s *Subscription) Dropped() bool { return s.dropped.Load() }

func (h *Hub) remove(s *Subscription, dropped bool) {
	s.once.Do(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if dropped {
			s.dropped.Store(true)
			h.dropped.Add(1)
		}
		if ps := h.projects[s.project]; ps != nil {
			delete(ps.subs, s)
			if len(ps.subs) == 0 {
				delete(h.projects, s.project)
			}
		}
		h.streams--
		close(s.c)
	})
}

// Run reads the store after every event notice, and every PollInterval,
// until ctx ends. Then it closes every subscription (Dropped is false for
// them) and refuses new ones.
func (h *Hub) Run(ctx context.Context) {
	defer h.stop()
	notices := h.cfg.Store.WatchEvents(ctx)
	tick := time.NewTicker(h.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-notices:
			if !ok {
				return
			}
		case <-h.wake:
		case <-tick.C:
		}
		h.poll(ctx)
	}
}

func (h *Hub) stop() {
	h.mu.Lock()
	h.stopped = true
	var all []*Subscription
	for _, ps := range h.projects {
		for s := range ps.subs {
			all = append(all, s)
		}
	}
	h.mu.Unlock()
	for _, s := range all {
		h.remove(s, false)
	}
}

// poll reads the new events of every project with subscribers and fans
// them out.
func (h *Hub) poll(ctx context.Context) {
	h.mu.Lock()
	cursors := make(map[string]int64, len(h.projects))
	for p, ps := range h.projects {
		cursors[p] = ps.cursor
	}
	h.mu.Unlock()
	for p, cursor := range cursors {
		for ctx.Err() == nil {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			es, err := h.cfg.Store.ListEvents(rctx, p, cursor, readPage)
			cancel()
			h.reads.Add(1)
			if err != nil {
				if ctx.Err() == nil {
					h.log.Warn("reading new events", "project", p, "err", err)
				}
				break
			}
			if len(es) == 0 {
				break
			}
			cursor = es[len(es)-1].ID
			h.fanOut(p, es)
			if len(es) < readPage {
				break
			}
		}
	}
}

// fanOut hands es to the project's subscribers; one whose buffer is full
// is dropped.
func (h *Hub) fanOut(project string, es []store.Event) {
	h.mu.Lock()
	ps := h.projects[project]
	if ps == nil {
		h.mu.Unlock()
		return
	}
	// A subscriber that missed an event gets no later one: its stream
	// must end where its events stop, so that it resumes from there.
	full := map[*Subscription]bool{}
	for _, e := range es {
		if e.ID <= ps.cursor {
			continue
		}
		for s := range ps.subs {
			if full[s] {
				continue
			}
			select {
			case s.c <- e:
				h.delivered.Add(1)
			default:
				full[s] = true
			}
		}
		ps.cursor = e.ID
	}
	h.mu.Unlock()
	for s := range full {
		h.remove(s, true)
	}
}

// HubStats are the hub's counters, for metrics.
type HubStats struct {
	Streams   int    // open subscriptions
	Delivered uint64 // events handed to subscribers
	Dropped   uint64 // subscriptions dropped for a full buffer
	Reads     uint64 // store reads
}

// Stats returns the hub's counters.
func (h *Hub) Stats() HubStats {
	h.mu.Lock()
	n := h.streams
	h.mu.Unlock()
	return HubStats{Streams: n, Delivered: h.delivered.Load(), Dropped: h.dropped.Load(), Reads: h.reads.Load()}
}
