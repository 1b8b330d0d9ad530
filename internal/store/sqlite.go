package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var sqliteDialect = dialect{
	name:             "sqlite",
	now:              `CAST(unixepoch('subsec') * 1000000000 AS INTEGER)`,
	plaintextSecrets: plaintextSecretsWhere(`CAST('%s' AS BLOB)`),
	classify:         classifySQLite,
}

// Every connection: wait up to 10s for another process's write lock instead of
// failing with SQLITE_BUSY, enforce foreign keys (off by default in SQLite),
// and zero what a write frees (secure_delete): a value replaced or deleted,
// such as a private key stored in the clear by an older release and sealed
// on upgrade, would otherwise stay readable in the file's free space.
const sqliteCommon = "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=secure_delete(1)"

// openSQLite opens the file at path with one writer connection and a pool of
// readers. WAL lets the readers run beside the writer; synchronous=FULL makes a
// committed transaction survive a power loss, not only a crash of the process.
func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("store: sqlite: empty path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: sqlite: path %q must not contain '?' or '#'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: sqlite: creating data folder: %w", err)
	}
	// Create the file ourselves so that it is private from the start; SQLite gives
	// its -wal and -shm files the database file's permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	f.Close()

	w, err := sql.Open("sqlite", path+"?"+sqliteCommon+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// The writer switches the file to WAL before any reader opens it.
	if err := pingSQLite(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: sqlite: opening %s: %w", path, err)
	}

	r, err := sql.Open("sqlite", path+"?"+sqliteCommon+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: sqlite: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return newDB(sqliteDialect, w, r), nil
}

// pingSQLite opens w's connection, trying again for up to the busy
// timeout when it fails with SQLITE_BUSY: two processes opening a new file
// at once both switch it to WAL, and SQLite answers one of them
// SQLITE_BUSY at once, without waiting for the other's lock through
// busy_timeout (TestSQLiteTwoProcesses failed about one run in eight).
func pingSQLite(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(10 * time.Second) // busy_timeout(10000)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := w.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func classifySQLite(err error) errClass {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return classOther
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return classUnique
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return classForeignKey
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL:
		return classUnavailable
	}
	return classOther
}
