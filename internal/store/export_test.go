package store

// ListenPID returns the backend PID of db's LISTEN connection, 0 if none.
func ListenPID(db *DB) uint32 { return db.listenPID.Load() }

// SetMaxPendingDeliveries lowers db's bound of pending deliveries per
// webhook, so that a test can fill the outbox.
func SetMaxPendingDeliveries(db *DB, n int) { db.pendingBound = n }
