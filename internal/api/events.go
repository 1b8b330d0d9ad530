package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/events"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// EventHub hands a stream the new events of its project; *events.Hub
// implements it.
type EventHub interface {
	Subscribe(projectID string, from int64) (*events.Subscription, error)
}

// Bounds of an event stream's writes.
const (
	defaultHeartbeat = 15 * time.Second
	streamWriteLimit = 30 * time.Second // a client that takes longer to read one event is dropped
)

func eventOut(e store.Event) client.Event {
	return client.Event{ID: e.ID, Type: e.Type, Time: e.Time, Project: e.ProjectID, Subject: e.Subject, Data: e.Data}
}

func (s *server) listEvents(w http.ResponseWriter, r *http.Request, p store.Project) error {
	after, err := queryInt(r, "after", 0)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 0)
	if err != nil {
		return err
	}
	page, err := s.events(r.Context(), p.ID, after, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *server) events(ctx context.Context, projectID string, after, limit int64) (client.EventPage, error) {
	es, err := s.cfg.Platform.ListEvents(ctx, projectID, after, int(limit))
	if err != nil {
		return client.EventPage{}, err
	}
	page := client.EventPage{Events: make([]client.Event, 0, len(es)), Next: after}
	for _, e := range es {
		page.Events = append(page.Events, eventOut(e))
		page.Next = e.ID
	}
	if limit == 0 {
		limit = platform.DefaultEventPage
	}
	page.More = len(es) == int(limit)
	return page, nil
}

// queryInt reads the integer query parameter name, def if absent.
func queryInt(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > 1<<53 {
		return 0, &apiError{status: http.StatusBadRequest, code: "invalid_" + name,
			msg: fmt.Sprintf("%s=%.40q is not a whole number; give e.g. %s=0", name, v, name)}
	}
	return n, nil
}

// streamEvents serves GET /v1/events/stream: server-sent events, from the
// one after Last-Event-ID (or ?after=), else from the next one recorded.
// It catches up from the store, then follows the hub; a stream that falls
// behind the hub's buffer ends, and its client resumes with Last-Event-ID.
func (s *server) streamEvents(w http.ResponseWriter, r *http.Request, p store.Project) error {
	if s.cfg.Events == nil {
		return &apiError{status: http.StatusServiceUnavailable, code: "events_unavailable", msg: "this server does not stream events; poll GET /v1/events?after=ID"}
	}
	from := int64(-1)
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return &apiError{status: http.StatusBadRequest, code: "invalid_last_event_id", msg: fmt.Sprintf("Last-Event-ID %.40q is not an event ID; send the id: of the last event received", v)}
		}
		from = n
	} else if r.URL.Query().Has("after") {
		n, err := queryInt(r, "after", 0)
		if err != nil {
			return err
		}
		if n < 0 {
			return &apiError{status: http.StatusBadRequest, code: "invalid_after", msg: "after must be 0 or more"}
		}
		from = n
	}
	ctx := r.Context()
	if from < 0 {
		last, err := s.cfg.Platform.LastEventID(ctx, p.ID)
		if err != nil {
			return err
		}
		from = last
	}
	sub, err := s.cfg.Events.Subscribe(p.ID, from)
	switch {
	case errors.Is(err, events.ErrTooManyProjectStreams):
		return &apiError{status: http.StatusTooManyRequests, code: "too_many_streams", msg: "this project has the most event streams open that it may; close one, or poll GET /v1/events"}
	case errors.Is(err, events.ErrTooManyStreams), errors.Is(err, events.ErrStopped):
		return &apiError{status: http.StatusServiceUnavailable, code: "too_many_streams", msg: "this server has the most event streams open that it may; retry later, or poll GET /v1/events"}
	case err != nil:
		return err
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(chunk string) error {
		if err := rc.SetWriteDeadline(time.Now().Add(streamWriteLimit)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		if _, err := fmt.Fprint(w, chunk); err != nil {
			return err
		}
		return rc.Flush()
	}
	sendEvent := func(e store.Event) error {
		b, err := json.Marshal(eventOut(e))
		if err != nil {
			return err
		}
		return send(fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", e.ID, e.Type, b))
	}
	// The id without data tells the client (and a browser's EventSource)
	// where this stream starts, so a reconnect resumes there even before
	// the first event.
	if err := send(fmt.Sprintf("retry: 2000\nid: %d\n\n", from)); err != nil {
		return nil
	}
	last := from
	for {
		es, err := s.cfg.Platform.ListEvents(ctx, p.ID, last, platform.MaxEventPage)
		if err != nil {
			s.log.Warn("event stream: reading events", "project", p.ID, "err", err)
			return nil // the client reconnects with Last-Event-ID
		}
		for _, e := range es {
			if err := sendEvent(e); err != nil {
				return nil
			}
			last = e.ID
		}
		if len(es) < platform.MaxEventPage {
			break
		}
	}
	every := s.cfg.StreamHeartbeat
	if every <= 0 {
		every = defaultHeartbeat
	}
	beat := time.NewTicker(every)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-sub.C:
			if !ok {
				if sub.Dropped() { // it fell behind: say so; the client resumes
					_ = send(": this stream fell behind and ends here; reconnect with Last-Event-ID to resume\n\n")
				}
				return nil
			}
			if e.ID <= last {
				continue
			}
			if err := sendEvent(e); err != nil {
				return nil
			}
			last = e.ID
		case <-beat.C:
			if err := send(": keep-alive\n\n"); err != nil {
				return nil
			}
		}
	}
}
