package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	if SecretKey(key) {
		var err error
		if value, err = db.seal(key, value); err != nil {
			return err
		}
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
	return db.open(key, v)
}

// KeyValue is a key of the key-value space and its value.
type KeyValue struct {
	Key   string
	Value []byte
}

// GetKeysWithPrefix returns, sorted, the keys that begin with one of
// prefixes, with their values: all of them in one query, so one round trip
// and one snapshot of the database. A prefix is a plain string, not a
// directory: "certificates/ca/a.example/" finds the keys of that directory,
// "ocsp/a.example-" the keys that begin so. Each prefix must be non-empty
// and end with an ASCII character other than DEL. At most limit keys are
// returned, the first in key order; a caller that must know it has them all
// asks for one more than it needs. None is not an error.
func (db *DB) GetKeysWithPrefix(ctx context.Context, limit int, prefixes ...string) ([]KeyValue, error) {
	args, err := prefixArgs(limit, prefixes)
	if err != nil {
		return nil, err
	}
	// Prepared on PostgreSQL too (maxPrefixes statements at most): the
	// statement is the same for every load of a certificate.
	stmt, kept, err := db.prepared(ctx, prefixQueries[len(prefixes)])
	if err != nil {
		return nil, db.wrap("reading keys", err)
	}
	if !kept {
		defer stmt.Close()
	}
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, db.wrap("reading keys", err)
	}
	defer rows.Close()
	return db.scanPrefixed(rows, limit)
}

// prefixArgs checks GetKeysWithPrefix's arguments and returns those of its
// query (prefixQueries[len(prefixes)]).
func prefixArgs(limit int, prefixes []string) ([]any, error) {
	if limit < 1 || len(prefixes) == 0 || len(prefixes) > maxPrefixes {
		return nil, fmt.Errorf("store: GetKeysWithPrefix needs a positive limit and 1 to %d prefixes", maxPrefixes)
	}
	args := make([]any, 0, 2*len(prefixes)+1)
	for _, p := range prefixes {
		if p == "" || p[len(p)-1] >= 0x7f {
			return nil, fmt.Errorf("store: invalid key prefix %q: must be non-empty and end with an ASCII character", p)
		}
		// The keys that begin with p sort from p up to, not including, p
		// with its last byte raised by one (keys sort bytewise).
		args = append(args, p, p[:len(p)-1]+string(p[len(p)-1]+1))
	}
	return append(args, limit), nil
}

// scanPrefixed reads the rows of a prefix query (database/sql's or pgx's):
// the first limit keys, sorted, each once, their values opened.
func (db *DB) scanPrefixed(rows rowScanner, limit int) ([]KeyValue, error) {
	var out []KeyValue
	for rows.Next() {
		var kv KeyValue
		if err := rows.Scan(&kv.Key, &kv.Value); err != nil {
			return nil, db.wrap("reading keys", err)
		}
		if kv.Value == nil {
			kv.Value = []byte{}
		}
		var err error
		if kv.Value, err = db.open(kv.Key, kv.Value); err != nil {
			return nil, err
		}
		out = append(out, kv)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("reading keys", err)
	}
	// Each scan gave its first limit keys, so the first limit of them all are here.
	slices.SortFunc(out, func(a, b KeyValue) int { return strings.Compare(a.Key, b.Key) })
	out = slices.CompactFunc(out, func(a, b KeyValue) bool { return a.Key == b.Key }) // overlapping prefixes
	return out[:min(len(out), limit)], nil
}

// maxPrefixes bounds the prefixes of one GetKeysWithPrefix, and so the
// statements kept prepared for it.
const maxPrefixes = 16

// prefixQueries are GetKeysWithPrefix's queries by number of prefixes.
var prefixQueries = func() (qs [maxPrefixes + 1]string) {
	for n := 1; n <= maxPrefixes; n++ {
		qs[n] = prefixQuery(n)
	}
	return qs
}()

// prefixQuery returns the query of GetKeysWithPrefix for n prefixes.
func prefixQuery(n int) string {
	// One ordered range scan per prefix, each an index range with its own
	// LIMIT, whatever the planner knows of the parameters: an OR of the
	// ranges under one ORDER BY ... LIMIT lets PostgreSQL walk the whole
	// index in order and filter.
	var q strings.Builder
	for i := range n {
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, "SELECT key, value FROM (SELECT key, value FROM kv WHERE key >= $%d AND key < $%d ORDER BY key LIMIT $%d) AS p%d",
			2*i+1, 2*i+2, 2*n+1, i)
	}
	return q.String()
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
