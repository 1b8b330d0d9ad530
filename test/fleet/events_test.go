package fleet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
)

// An event recorded through one node's API reaches an event stream open on
// another node (PostgreSQL's notices), once, in order.
func TestEventStreamAcrossNodes(t *testing.T) {
	dsn := freshSchema(t, basePostgres())
	f := newFleet(t, dsn, 2)
	a, b := f.nodes[0].client(), f.nodes[1].client()
	ctx, cancel := context.WithTimeout(ctxT(t), 2*time.Minute)
	defer cancel()
	got := make(chan client.Event, 10)
	streamErr := make(chan error, 1)
	go func() {
		streamErr <- b.StreamEvents(ctx, -1, func(e client.Event) error {
			got <- e
			return nil
		})
	}()
	// The stream is open once its first keep-alive or event could come;
	// an event recorded before it opened would not be sent (it starts
	// after the latest): create until one arrives, then check the order.
	var first client.Event
	names := []string{"one", "two", "three"}
	deadline := time.After(time.Minute)
	for i := 0; first.ID == 0; i++ {
		if i == len(names) {
			t.Fatal("no event reached node2's stream")
		}
		if _, err := a.CreateService(ctx, client.ServiceCreate{Name: names[i], Upstreams: []string{upstream(t, names[i])}}); err != nil {
			t.Fatal(err)
		}
		select {
		case first = <-got:
		case <-time.After(5 * time.Second):
		case <-deadline:
			t.Fatal("no event reached node2's stream")
		}
	}
	// From there on every event of the project comes, in order, each
	// once: IDs count up by one.
	if _, err := a.CreateService(ctx, client.ServiceCreate{Name: "marker", Upstreams: []string{upstream(t, "marker")}}); err != nil {
		t.Fatal(err)
	}
	last := first.ID
	for {
		select {
		case e := <-got:
			if e.ID != last+1 {
				t.Fatalf("event %d after %d: a gap, out of order or twice", e.ID, last)
			}
			last = e.ID
			if e.Type == "service.created" && e.Subject == "marker" {
				cancel()
				if err := <-streamErr; err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("stream ended with %v", err)
				}
				return
			}
		case <-time.After(time.Minute):
			t.Fatal("service.created of marker did not reach node2's stream")
		}
	}
}
