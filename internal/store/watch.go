package store

import "context"

// Watch returns a channel that receives a value after projects, domains or
// services change. Signals are coalesced: the channel holds at most one, so a
// reader that was busy sees one signal for many changes and should then read a
// fresh snapshot. The channel is closed when ctx ends or the DB is closed.
//
// On SQLite the signals come from writes through this DB. On PostgreSQL they also
// come from other processes (LISTEN/NOTIFY), and one is sent each time the
// listening connection is (re)established, since notices may have been missed
// while it was away.
func (db *DB) Watch(ctx context.Context) <-chan struct{} {
	return db.subscribe(ctx, db.watchers)
}

// WatchEvents is Watch for the event log and the webhook outbox: a signal
// follows every append of an event and every delivery queued (events.go,
// webhooks.go), from any node of a fleet on PostgreSQL. Readers then ask the
// store for what is new; the signal carries nothing.
func (db *DB) WatchEvents(ctx context.Context) <-chan struct{} {
	return db.subscribe(ctx, db.eventWatchers)
}

func (db *DB) subscribe(ctx context.Context, set map[chan struct{}]struct{}) <-chan struct{} {
	ch := make(chan struct{}, 1)
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		close(ch)
		return ch
	}
	set[ch] = struct{}{}
	if db.pgcfg != nil && !db.listening {
		db.listening = true
		db.wg.Add(1)
		go db.listen(db.ctx)
	}
	db.mu.Unlock()

	go func() {
		select {
		case <-ctx.Done():
		case <-db.ctx.Done():
		}
		db.mu.Lock()
		defer db.mu.Unlock()
		if _, ok := set[ch]; ok {
			delete(set, ch)
			close(ch)
		}
	}()
	return ch
}

// broadcast signals every Watch channel without blocking: a watcher that
// already has a signal pending does not need a second one.
func (db *DB) broadcast() { db.signal(db.watchers) }

// broadcastEvents signals every WatchEvents channel.
func (db *DB) broadcastEvents() { db.signal(db.eventWatchers) }

func (db *DB) signal(set map[chan struct{}]struct{}) {
	db.mu.Lock()
	defer db.mu.Unlock()
	for ch := range set {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
