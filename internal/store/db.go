package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spine-platform/spine/internal/secrets"
)

// DB is Spine's database. Both back ends share the queries below; what differs
// between them is kept in a dialect. A DB is safe for concurrent use.
type DB struct {
	d dialect
	w *sql.DB // writes; on SQLite a single connection, so writers queue instead of failing with SQLITE_BUSY
	r *sql.DB // reads; on PostgreSQL the same pool as w

	pgcfg *pgx.ConnConfig // PostgreSQL only: for the LISTEN connection

	ctx    context.Context // ends at Close; stops the listener and the watchers
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu            sync.Mutex
	closed        bool
	listening     bool
	watchers      map[chan struct{}]struct{} // Watch: projects, domains, services
	eventWatchers map[chan struct{}]struct{} // WatchEvents: events and webhook deliveries

	listenPID atomic.Uint32 // backend PID of the LISTEN connection, 0 if none (for tests)
	notices   atomic.Int64  // notices of this schema taken by the LISTEN connection (for tests)

	lazyErr error // OpenLazy: the last migration failure that was not unavailability; guarded by mu

	stmts map[string]*sql.Stmt // prepared statements by query (prepared.go), at most maxStmts; guarded by mu

	quota atomic.Pointer[Quota] // SetDefaultQuota; nil: no limits

	keyring atomic.Pointer[secrets.Keyring] // SetKeyring (sealed.go); nil: secrets stored as they are

	pendingBound int // tests only (export_test.go): MaxPendingDeliveries if 0
	pruneBatch   int // tests only (export_test.go): pruneBatch if 0
}

// dialect holds the few things that differ between SQLite and PostgreSQL.
// Placeholders ($1), upserts (ON CONFLICT ... DO UPDATE) and RETURNING are the same in both.
type dialect struct {
	name string
	// now is an SQL expression for the database clock in Unix nanoseconds.
	// Lock leases use it so that the nodes of a fleet agree on expiry.
	now string
	// notify runs in every transaction that changes projects, domains or services; "" for none.
	notify string
	// notifyEvents runs in every transaction that appends an event or queues a
	// webhook delivery; "" for none.
	notifyEvents string
	// plaintextSecrets is the condition of the key-value space's secrets
	// stored in plaintext, that of the index kv_plaintext_secrets
	// (plaintextSecretsWhere).
	plaintextSecrets string
	// classify tells what kind of failure err is.
	classify func(err error) errClass
}

type errClass int

const (
	classOther       errClass = iota
	classUnique               // unique or primary key violation
	classForeignKey           // foreign key violation
	classUnavailable          // the database cannot be reached or is busy; retry later
)

// Open opens the database named by dsn and brings its schema up to date.
//
//	sqlite:PATH        an SQLite file, created 0600 in a folder created 0700 if missing
//	postgres://...     a PostgreSQL database (also postgresql://); any libpq-style
//	                   parameter such as search_path is passed to the server
func Open(ctx context.Context, dsn string) (*DB, error) {
	var (
		db  *DB
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		db, err = openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err = openPostgres(ctx, dsn)
	default:
		return nil, errors.New(`store: unknown database; want "sqlite:PATH" or "postgres://..."`)
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func newDB(d dialect, w, r *sql.DB) *DB {
	ctx, cancel := context.WithCancel(context.Background())
	return &DB{d: d, w: w, r: r, ctx: ctx, cancel: cancel,
		watchers: make(map[chan struct{}]struct{}), eventWatchers: make(map[chan struct{}]struct{})}
}

// Close stops the change listener, closes every Watch channel and the connections.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()

	db.cancel()
	db.wg.Wait()

	db.mu.Lock()
	for _, set := range []map[chan struct{}]struct{}{db.watchers, db.eventWatchers} {
		for ch := range set {
			delete(set, ch)
			close(ch)
		}
	}
	stmts := db.stmts
	db.stmts = nil
	db.mu.Unlock()
	for _, st := range stmts {
		st.Close()
	}

	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return db.wrap("ping", err)
	}
	if db.r != db.w {
		if err := db.r.PingContext(ctx); err != nil {
			return db.wrap("ping", err)
		}
	}
	return nil
}

// Kind returns "sqlite" or "postgres".
func (db *DB) Kind() string { return db.d.name }

// Revision returns a counter that every project, domain and service write bumps
// in its own transaction.
func (db *DB) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := db.r.QueryRowContext(ctx, `SELECT value FROM revision WHERE id = 1`).Scan(&rev); err != nil {
		return 0, db.wrap("reading revision", err)
	}
	return rev, nil
}

// write runs fn in a transaction. A change (a project, domain or service write)
// also bumps the revision and, on PostgreSQL, sends the change notice, both in the
// same transaction; watchers in this process are signalled once it has committed.
//
// The revision is bumped first: on PostgreSQL its row lock then orders concurrent
// changes, so they cannot deadlock on each other's hostname rows.
func (db *DB) write(ctx context.Context, op string, change bool, fn func(tx *sql.Tx) error) error {
	return db.writeNotes(ctx, op, change, func(tx *sql.Tx, _ *txNotes) error { return fn(tx) })
}

// txNotes collects what a write transaction announces once it has committed.
type txNotes struct {
	events bool // an event was appended or a delivery queued: signal WatchEvents
	// services are the IDs of the services a change created, updated or
	// deleted, for the change log (changes.go); a change that names none
	// is logged as one that needs everything read.
	services []string
}

// writeNotes is write for transactions that may append events (events.go):
// their watchers are signalled after the commit.
func (db *DB) writeNotes(ctx context.Context, op string, change bool, fn func(tx *sql.Tx, notes *txNotes) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return db.wrap(op, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var rev int64
	if change {
		if err := tx.QueryRowContext(ctx, `UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value`).Scan(&rev); err != nil {
			return db.wrap(op, err)
		}
		if db.d.notify != "" {
			if _, err := tx.ExecContext(ctx, db.d.notify); err != nil {
				return db.wrap(op, err)
			}
		}
	}
	var notes txNotes
	if err := fn(tx, &notes); err != nil {
		return db.wrap(op, err)
	}
	if change {
		if err := logChange(ctx, tx, rev, notes.services); err != nil {
			return db.wrap(op, err)
		}
	}
	if notes.events && db.d.notifyEvents != "" {
		if _, err := tx.ExecContext(ctx, db.d.notifyEvents); err != nil {
			return db.wrap(op, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return db.wrap(op, err)
	}
	if change {
		db.broadcast()
	}
	if notes.events {
		db.broadcastEvents()
	}
	return nil
}

// kindError is an error that callers tell apart with errors.Is (ErrNotFound,
// ErrConflict, ErrInUse). Its message names the object and is fit to show a user.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func notFound(format string, args ...any) error {
	return &kindError{ErrNotFound, fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &kindError{ErrConflict, fmt.Sprintf(format, args...)}
}

func inUse(format string, args ...any) error {
	return &kindError{ErrInUse, fmt.Sprintf(format, args...)}
}

// wrap adds context to an error from the database. Errors that already say what
// went wrong in the caller's terms (kindError) are returned as they are.
func (db *DB) wrap(op string, err error) error {
	var ke *kindError
	switch {
	case errors.As(err, &ke):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("store: %s: %w", op, err)
	case db.d.classify(err) == classUnavailable:
		return fmt.Errorf("store: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

func (db *DB) isUnique(err error) bool { return err != nil && db.d.classify(err) == classUnique }
func (db *DB) isForeignKey(err error) bool {
	return err != nil && db.d.classify(err) == classForeignKey
}

// Times are stored as Unix nanoseconds; 0 is the zero time.
func toNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// orNow returns t, or the current time if t is zero.
func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
