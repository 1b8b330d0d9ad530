package events

import "context"

// Poll is one round of the hub's work, for tests that must know it is done.
func (h *Hub) Poll(ctx context.Context) { h.poll(ctx) }
