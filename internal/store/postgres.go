package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// changeChannel is the PostgreSQL notification channel of change notices;
// eventChannel that of appended events and queued webhook deliveries.
// Channels are shared by the whole database, so a notice carries the schema
// it was written in (current_schema()), and a listener drops notices from
// other schemas: Spine installations (or tests) that share one database in
// schemas of their own do not wake each other. A notice without a payload
// (from a node of a version before this) is taken as ours.
const (
	changeChannel = "spine_changes"
	eventChannel  = "spine_events"
)

var postgresDialect = dialect{
	name:             "postgres",
	now:              `CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000000 AS BIGINT)`,
	notify:           `SELECT pg_notify('` + changeChannel + `', coalesce(current_schema(), ''))`,
	notifyEvents:     `SELECT pg_notify('` + eventChannel + `', coalesce(current_schema(), ''))`,
	plaintextSecrets: plaintextSecretsWhere(`'%s'::bytea`),
	classify:         classifyPostgres,
}

// Timeouts of the LISTEN connection.
const (
	listenConnectTimeout = 10 * time.Second
	listenIdleCheck      = 30 * time.Second // ping after this long without a notice, to notice a dead peer
	listenPingTimeout    = 5 * time.Second
	listenMinBackoff     = 100 * time.Millisecond
	listenMaxBackoff     = 5 * time.Second
)

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	db, err := newPostgres(dsn)
	if err != nil {
		return nil, err
	}
	if err := db.w.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: postgres: connecting: %w: %w", ErrUnavailable, err)
	}
	return db, nil
}

// withPgx runs f on one of the pool's connections as pgx's own connection,
// for a read of every row of a large table: pgx's rows give each column
// as the bytes received, where its database/sql driver makes a string and
// an interface of each (readAllPostgres, ListCertValid). f must leave the
// connection as it found it (a transaction it begins, it ends), and may
// run more than once: a connection that fails f and is closed by then (its
// backend ended while it sat in the pool: a server restart, an
// administrator, an idle timeout) is dropped from the pool and f runs
// again on another, as database/sql retries its own reads on a bad
// connection: at most once per connection the pool holds, and once more,
// so that the last try is on a new one.
func (db *DB) withPgx(ctx context.Context, f func(c *pgx.Conn) error) error {
	for try := 1; ; try++ {
		err := db.withPgxOnce(ctx, f)
		if try == pgxTries || !errors.Is(err, driver.ErrBadConn) || ctx.Err() != nil {
			return err
		}
	}
}

const pgxTries = pgMaxConns + 1

func (db *DB) withPgxOnce(ctx context.Context, f func(c *pgx.Conn) error) error {
	conn, err := db.r.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: a PostgreSQL connection of type %T", dc)
		}
		err := f(c.Conn())
		if err != nil && (pgconn.SafeToRetry(err) || c.Conn().IsClosed()) {
			// database/sql closes a connection whose Raw returns this.
			return fmt.Errorf("%w: %w", driver.ErrBadConn, err)
		}
		return err
	})
}

// textResults asks pgx for every column of a query's rows in text.
var textResults = pgx.QueryResultFormats{pgx.TextFormatCode}

// pgMaxConns bounds a node's connections to PostgreSQL (the LISTEN
// connection apart).
const pgMaxConns = 16

// newPostgres returns a DB over a pool that connects on first use.
func newPostgres(dsn string) (*DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", err) // pgx redacts the password
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	pool := stdlib.OpenDB(*cfg.Copy())
	// As many idle as open: a burst (a warm-up reads four queries a name,
	// eight names at a time) that found only 4 idle connections opened
	// new ones and closed them after, a connection (and its prepared
	// statements) made again for nearly every look-up. An idle one is
	// closed after 5 minutes unused.
	pool.SetMaxOpenConns(pgMaxConns)
	pool.SetMaxIdleConns(pgMaxConns)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	db := newDB(postgresDialect, pool, pool)
	db.pgcfg = cfg
	return db, nil
}

func classifyPostgres(err error) errClass {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return classUnique
		case pe.Code == "23503":
			return classForeignKey
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // shutting down, cannot connect now
			pe.Code == "53300": // too many connections
			return classUnavailable
		}
		return classOther
	}
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		pgconn.Timeout(err) {
		return classUnavailable
	}
	return classOther
}

// listen holds a LISTEN connection on changeChannel and eventChannel until ctx ends, and
// reconnects with backoff when it breaks. Watchers are signalled on every notice
// and after every (re)connect, since notices sent while it was away are lost.
func (db *DB) listen(ctx context.Context) {
	defer db.wg.Done()
	backoff := listenMinBackoff
	for {
		connected, _ := db.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = listenMinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listenOnce runs one LISTEN connection until it fails. It reports whether it got
// as far as listening.
func (db *DB) listenOnce(ctx context.Context) (connected bool, err error) {
	cctx, cancel := context.WithTimeout(ctx, listenConnectTimeout)
	conn, err := pgx.ConnectConfig(cctx, db.pgcfg.Copy())
	cancel()
	if err != nil {
		return false, err
	}
	defer func() {
		db.listenPID.Store(0)
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	for _, ch := range []string{changeChannel, eventChannel} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return false, err
		}
	}
	var schema string
	if err := conn.QueryRow(ctx, "SELECT coalesce(current_schema(), '')").Scan(&schema); err != nil {
		return false, err
	}
	db.listenPID.Store(conn.PgConn().PID())
	db.broadcast()
	db.broadcastEvents()

	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdleCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil && n.Payload != "" && n.Payload != schema:
			// another schema's notice
		case err == nil && n.Channel == eventChannel:
			db.notices.Add(1)
			db.broadcastEvents()
		case err == nil:
			db.notices.Add(1)
			db.broadcast()
		case ctx.Err() != nil:
			return true, ctx.Err()
		case pgconn.Timeout(err) && !conn.IsClosed():
			pctx, cancel := context.WithTimeout(ctx, listenPingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, err
			}
		default:
			return true, err
		}
	}
}
