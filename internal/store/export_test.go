package store

import (
	"context"
	"fmt"
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

// PlaintextSecretsWhere is the condition of db's dialect for the
// plaintext secrets (that of the index kv_plaintext_secrets).
func PlaintextSecretsWhere(db *DB) string { return db.d.plaintextSecrets }

// LastMigrationWith returns the SQL of the newest of db's dialect's
// migrations that contains s, and its version; "" and 0 if none does.
func LastMigrationWith(db *DB, s string) (string, int, error) {
	ms, err := loadMigrations(db.d.name)
	if err != nil {
		return "", 0, err
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if strings.Contains(ms[i].sql, s) {
			return ms[i].sql, ms[i].version, nil
		}
	}
	return "", 0, nil
}

// PlaintextSecretsPlan is the database's plan of the start's check of the
// plaintext secrets (resealKV's query in ResealPlaintext), after the database has
// gathered kv's statistics (ANALYZE kv: not every schema's tables).
func PlaintextSecretsPlan(ctx context.Context, db *DB) (string, error) {
	if _, err := db.w.ExecContext(ctx, `ANALYZE kv`); err != nil {
		return "", err
	}
	explain := "EXPLAIN "
	if db.d.name == "sqlite" {
		explain = "EXPLAIN QUERY PLAN "
	}
	rows, err := db.r.QueryContext(ctx, explain+db.plaintextSecretsQuery(), "", 256)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return "", err
	}
	var plan strings.Builder
	for rows.Next() {
		v := make([]any, len(cols))
		for i := range v {
			v[i] = new(any)
		}
		if err := rows.Scan(v...); err != nil {
			return "", err
		}
		fmt.Fprintln(&plan, *v[len(v)-1].(*any)) // PostgreSQL's one column, SQLite's detail
	}
	return plan.String(), rows.Err()
}
