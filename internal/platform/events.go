package platform

import (
	"context"
	"fmt"

	"github.com/spine-platform/spine/internal/store"
)

// Pages of the event log.
const (
	DefaultEventPage = 100
	MaxEventPage     = 1000
)

// ListEvents returns up to limit of the project's events with an ID above
// after, oldest first. limit 0 means DefaultEventPage.
func (p *Platform) ListEvents(ctx context.Context, projectID string, after int64, limit int) ([]store.Event, error) {
	if after < 0 {
		return nil, invalid("invalid_after", fmt.Sprintf("after=%d: give the ID of the last event you have, 0 or more (0: from the oldest kept)", after))
	}
	if limit == 0 {
		limit = DefaultEventPage
	}
	if limit < 1 || limit > MaxEventPage {
		return nil, invalid("invalid_limit", fmt.Sprintf("limit=%d: give a number of events from 1 to %d", limit, MaxEventPage))
	}
	es, err := p.store.ListEvents(ctx, projectID, after, limit)
	return es, fromStore(err, "events")
}

// LastEventID returns the ID of the project's latest event, 0 if none.
func (p *Platform) LastEventID(ctx context.Context, projectID string) (int64, error) {
	id, err := p.store.LastEventID(ctx, projectID)
	return id, fromStore(err, "events")
}

// RecordEvent appends e to its project's log (the API records token
// events this way). An event whose key was seen before is not recorded
// again, and that is not an error.
func (p *Platform) RecordEvent(ctx context.Context, e store.Event) error {
	if e.Time.IsZero() {
		e.Time = p.now().UTC()
	}
	_, _, err := p.store.AppendEvent(ctx, e)
	return fromStore(err, "event")
}
