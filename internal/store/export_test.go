package store

// ListenPID returns the backend PID of db's LISTEN connection, 0 if none.
func ListenPID(db *DB) uint32 { return db.listenPID.Load() }
