package fleet

import (
	"log/slog"
	"sync/atomic"
)

// StoreHealth records whether the last store operation succeeded, and logs
// the moments the store goes away and comes back (once each, not once per
// failed operation). It is safe for concurrent use.
type StoreHealth struct {
	log *slog.Logger
	ok  atomic.Bool
}

// NewStoreHealth returns a StoreHealth that starts as reachable or not.
func NewStoreHealth(log *slog.Logger, reachable bool) *StoreHealth {
	h := &StoreHealth{log: log}
	h.ok.Store(reachable)
	return h
}

// Note records the outcome of a store operation.
func (h *StoreHealth) Note(err error) {
	ok := err == nil
	if h.ok.Swap(ok) != ok {
		if ok {
			h.log.Info("the store is reachable again")
		} else {
			h.log.Warn("the store is unreachable; serving the last known routes and certificates", "err", err)
		}
	}
}

// Reachable reports whether the store answered the last time it was used
// (spine_store_up).
func (h *StoreHealth) Reachable() bool { return h.ok.Load() }
