package store

import (
	"context"
	"database/sql"
	"errors"
)

// maxStmts bounds the statements a DB keeps prepared. The queries given
// to prepared are the program's own (a read's constant text, an IN list
// of at most maxPreparedNames, GetKeysWithPrefix's by prefix count), under
// thirty in all; past the bound a query is prepared for its call alone.
const maxStmts = 64

// prepared returns the reader's statement for q, prepared once and kept
// until Close (database/sql prepares it again on each pooled connection
// that runs it, once). SQLite parses and plans the text of every query it
// is given: for the reads of a handshake during the warm-up (the service
// of a hostname, its domains, its upload, its certificate's keys) that
// was half of their time (BENCHMARKS.md, "... SQLite's statements
// prepared once"). When the cache is full the statement is not kept
// (kept false), and the caller closes it once done with it (a Rows keeps
// what it needs of a statement closed under it).
func (db *DB) prepared(ctx context.Context, q string) (st *sql.Stmt, kept bool, err error) {
	db.mu.Lock()
	st, closed := db.stmts[q], db.closed
	db.mu.Unlock()
	if st != nil {
		return st, true, nil
	}
	if closed {
		return nil, false, errors.New("store: closed")
	}
	if st, err = db.r.PrepareContext(ctx, q); err != nil {
		return nil, false, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	switch {
	case db.closed:
		st.Close()
		return nil, false, errors.New("store: closed")
	case db.stmts[q] != nil: // another call prepared it meanwhile
		st.Close()
		return db.stmts[q], true, nil
	case len(db.stmts) >= maxStmts:
		return st, false, nil
	}
	if db.stmts == nil {
		db.stmts = make(map[string]*sql.Stmt)
	}
	db.stmts[q] = st
	return st, true, nil
}

// queryRead runs q on the readers: on SQLite with its statement prepared
// once (prepared), on PostgreSQL as it is (pgx keeps the statements it
// has prepared on each connection itself).
func (db *DB) queryRead(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if db.pgcfg != nil {
		return db.r.QueryContext(ctx, q, args...)
	}
	st, kept, err := db.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	if !kept {
		defer st.Close()
	}
	return st.QueryContext(ctx, args...)
}

// queryRowRead is queryRead for one row.
func (db *DB) queryRowRead(ctx context.Context, q string, args ...any) *sql.Row {
	if db.pgcfg != nil {
		return db.r.QueryRowContext(ctx, q, args...)
	}
	st, kept, err := db.prepared(ctx, q)
	if err != nil {
		return db.r.QueryRowContext(ctx, q, args...) // the same error, as a Row
	}
	if !kept {
		defer st.Close()
	}
	return st.QueryRowContext(ctx, args...)
}
