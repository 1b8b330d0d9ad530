package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"
)

// OpenLazy is Open for a node that must start while its PostgreSQL database
// is down (fail static): it returns at once, without reaching the database.
// Until the database answers, every call fails with an error wrapping
// ErrUnavailable; the schema is brought up to date in the background as soon
// as it answers. An SQLite DSN, or any error other
// than an unreachable database, is handled as by Open.
func OpenLazy(ctx context.Context, dsn string) (*DB, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return Open(ctx, dsn)
	}
	db, err := newPostgres(dsn)
	if err != nil {
		return nil, err
	}
	db.wg.Add(1)
	go db.migrateInBackground(db.ctx)
	return db, nil
}

// migrateInBackground retries migrate with backoff until it succeeds or ctx ends.
func (db *DB) migrateInBackground(ctx context.Context) {
	defer db.wg.Done()
	backoff := listenMinBackoff
	for {
		mctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := db.migrate(mctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		if !errors.Is(err, ErrUnavailable) {
			// A schema this program cannot apply will not fix itself; the
			// node keeps serving its snapshot and says why in /readyz.
			db.setLazyErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff/2 + rand.N(backoff/2+1)):
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

func (db *DB) setLazyErr(err error) {
	db.mu.Lock()
	db.lazyErr = err
	db.mu.Unlock()
}

// SchemaError returns the error of the last failed background migration of a
// DB from OpenLazy that the database did answer, or nil.
func (db *DB) SchemaError() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.lazyErr
}
