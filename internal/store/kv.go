package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"
)

// The key-value space follows certmagic's storage model: keys are paths like
// "certificates/acme/example.com/example.com.crt", and a prefix that other keys
// live under ("certificates/acme") acts as a directory.
//
// A directory's keys are found with a range scan, key >= "dir/" AND key < "dir0"
// ('0' follows '/' in byte order), rather than LIKE: no wildcards to escape, no
// case folding (SQLite's LIKE ignores ASCII case), and the primary key index
// serves it. Both schemas order keys bytewise for this.

// PutKey stores value under key, replacing what was there.
func (db *DB) PutKey(ctx context.Context, key string, value []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if value == nil {
		value = []byte{} // nil would be stored as NULL
	}
	return db.write(ctx, "storing key", false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kv (key, value, modified) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`,
			key, value, time.Now().UnixNano())
		return err
	})
}

// GetKey returns the value stored under key, or ErrNotFound.
func (db *DB) GetKey(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := db.r.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("key %q not found", key)
	}
	if err != nil {
		return nil, db.wrap("reading key", err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// DeleteKey deletes key and every key under key+"/". It returns ErrNotFound if
// there was none.
func (db *DB) DeleteKey(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	lo, hi := dirRange(key)
	return db.write(ctx, "deleting key", false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM kv WHERE key = $1 OR (key >= $2 AND key < $3)`, key, lo, hi)
		return mustAffect(res, err, func() error { return notFound("key %q not found", key) })
	})
}

// ListKeys returns, sorted, the keys under prefix ("" for the root). Not
// recursive, it returns the immediate children: keys and directories, as
// prefix+"/"+name. Recursive, it returns every key (not directories) at any depth.
// It returns ErrNotFound if there are none.
func (db *DB) ListKeys(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	prefix = strings.Trim(prefix, "/")
	var (
		rows *sql.Rows
		err  error
		base string
	)
	if prefix == "" {
		rows, err = db.r.QueryContext(ctx, `SELECT key FROM kv ORDER BY key`)
	} else {
		var hi string
		base, hi = dirRange(prefix)
		rows, err = db.r.QueryContext(ctx, `SELECT key FROM kv WHERE key >= $1 AND key < $2 ORDER BY key`, base, hi)
	}
	if err != nil {
		return nil, db.wrap("listing keys", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, db.wrap("listing keys", err)
		}
		if !recursive {
			if i := strings.IndexByte(k[len(base):], '/'); i >= 0 {
				k = k[:len(base)+i] // a directory
			}
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing keys", err)
	}
	if len(keys) == 0 {
		return nil, notFound("no keys under %q", prefix)
	}
	// A directory appears once per key under it, and "a/b" can sort after "a/b.crt".
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// StatKey describes key: a stored key (IsTerminal), or a directory that keys
// live under, whose Modified is that of its newest key. It returns ErrNotFound
// if neither.
func (db *DB) StatKey(ctx context.Context, key string) (KeyInfo, error) {
	var (
		size, modified int64
		info           = KeyInfo{Key: key}
	)
	err := db.r.QueryRowContext(ctx, `SELECT length(value), modified FROM kv WHERE key = $1`, key).Scan(&size, &modified)
	if err == nil {
		info.Size, info.Modified, info.IsTerminal = size, fromNanos(modified), true
		return info, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return KeyInfo{}, db.wrap("reading key", err)
	}
	var n int64
	lo, hi := dirRange(strings.TrimSuffix(key, "/"))
	err = db.r.QueryRowContext(ctx, `SELECT count(*), COALESCE(max(modified), 0) FROM kv WHERE key >= $1 AND key < $2`,
		lo, hi).Scan(&n, &modified)
	if err != nil {
		return KeyInfo{}, db.wrap("reading key", err)
	}
	if n == 0 {
		return KeyInfo{}, notFound("key %q not found", key)
	}
	info.Modified = fromNanos(modified)
	return info, nil
}

// dirRange returns the bounds of the keys under dir: lo <= key < hi.
func dirRange(dir string) (lo, hi string) {
	return dir + "/", dir + "0"
}

func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return errors.New("store: invalid key: must be non-empty and not start or end with '/'")
	}
	return nil
}
