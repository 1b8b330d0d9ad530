package store

import (
	"context"
	"strings"
)

// ListenPID returns the backend PID of db's LISTEN connection, 0 if none.
func ListenPID(db *DB) uint32 { return db.listenPID.Load() }

// Notices returns how many notices of its own schema db's LISTEN
// connection has taken.
func Notices(db *DB) int64 { return db.notices.Load() }

// SetMaxPendingDeliveries lowers db's bound of pending deliveries per
// webhook, so that a test can fill the outbox.
func SetMaxPendingDeliveries(db *DB, n int) { db.pendingBound = n }

// SetPruneBatch lowers how many events one transaction of PruneEvents
// deletes, so that a test prunes in several.
func SetPruneBatch(db *DB, n int) { db.pruneBatch = n }

// OpenAt opens dsn with the schema migrated up to version only, as an
// older release left it; Migrate then brings it up to date.
func OpenAt(ctx context.Context, dsn string, version int) (*DB, error) {
	var (
		db  *DB
		err error
	)
	if strings.HasPrefix(dsn, "sqlite:") {
		db, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	} else {
		db, err = openPostgres(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrateTo(ctx, version); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Migrate brings db's schema up to date.
func Migrate(ctx context.Context, db *DB) error { return db.migrate(ctx) }

// Exec runs a statement, for tests that write as an older release did.
func Exec(ctx context.Context, db *DB, query string, args ...any) error {
	_, err := db.w.ExecContext(ctx, query, args...)
	return err
}

// Prepared returns how many statements db keeps prepared, and the bound.
func Prepared(db *DB) (n, max int) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return len(db.stmts), maxStmts
}

// QueryRead runs q as the reads that keep their statement prepared do.
func QueryRead(ctx context.Context, db *DB, q string, args ...any) (int64, error) {
	var v int64
	err := db.queryRowRead(ctx, q, args...).Scan(&v)
	return v, err
}
