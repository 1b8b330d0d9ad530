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
	ch := make(chan struct{}, 1)
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		close(ch)
		return ch
	}
	db.watchers[ch] = struct{}{}
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
		if _, ok := db.watchers[ch]; ok {
			delete(db.watchers, ch)
			close(ch)
		}
	}()
	return ch
}

// broadcast signals every watcher without blocking: a watcher that already has a
// signal pending does not need a second one.
func (db *DB) broadcast() {
	db.mu.Lock()
	defer db.mu.Unlock()
	for ch := range db.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
