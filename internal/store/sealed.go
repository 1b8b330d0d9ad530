package store

// Secrets at rest. Every secret the store keeps goes through the keyring
// set with SetKeyring, here at the store's boundary, so that no caller can
// forget it: the key-value space's secret keys (SecretKey) and the webhooks'
// signing secrets are sealed as they are written and opened as they are
// read. A value stored before sealing began is read as it is until Reseal
// rewrites it, which the node runs at start (an upgrade's migration in
// place) and `spine secrets rotate` runs under a new key.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/secrets"
)

// CanaryKey is a sealed value of no meaning that tells, at start, whether
// the node's key file opens this store's secrets (CheckKeyring).
const CanaryKey = "spine/secrets/canary"

// secretKeys are the keys of the key-value space that hold secrets without
// the ".key" ending of private keys. A new entry needs a migration that
// makes the index kv_plaintext_secrets again with it (plaintextSecretsWhere;
// TestPlaintextSecretsIndexed fails until then).
var secretKeys = []string{
	"spine/dns01/secret",    // the delegation labels' HMAC key (dnsserver)
	"spine/tls/ticket-keys", // the session-ticket keys (fleet)
	"spine/tls/ech-keys",    // the ECH private keys (fleet)
	"spine/quic/keys",       // the QUIC stateless-reset and token keys (fleet)
	CanaryKey,
}

// secretWhere is the SQL condition of the keys SecretKey may be true of
// (LIKE can use an index, but ignores case on SQLite: callers check
// SecretKey again), with its arguments numbered from $first.
func secretWhere(first int) (string, []any) {
	var b strings.Builder
	args := make([]any, len(secretKeys))
	b.WriteString("(key LIKE '%.key' OR key IN (")
	for i, k := range secretKeys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", first+i)
		args[i] = k
	}
	b.WriteString("))")
	return b.String(), args
}

// SecretKey reports whether the value of key is a secret that the store
// seals: every key ending in ".key" (certmagic's certificate keys, the
// internal CA's keys, ACME account keys, and any private key stored the
// same way) and the few secrets listed in secretKeys. A new secret in the
// key-value space gets a name ending in ".key" or an entry in that list.
func SecretKey(key string) bool {
	if strings.HasSuffix(key, ".key") {
		return true
	}
	for _, k := range secretKeys {
		if key == k {
			return true
		}
	}
	return false
}

// webhookSecretName is the name a webhook's signing secret is sealed under.
func webhookSecretName(id string) string { return "webhooks/" + id + "/secret" }

// uploadedKeyName is the name an uploaded certificate's key is sealed
// under: its hostname and the SHA-256 of its leaf, so that the key of one
// row, or of one upload, does not open as another's.
func uploadedKeyName(hostname, sha string) string { return "uploaded_certs/" + hostname + "/" + sha }

// secretColumn is a column of a table that holds a secret, one a row.
type secretColumn struct {
	table, id, col string
	extra          string                        // a column the name takes besides id, or ""
	name           func(id, extra string) string // the name the value is sealed under
	text           bool                          // a TEXT column (else BLOB / bytea)
}

// secretColumns are every column that holds a secret: Reseal and
// SealedKeys go through them, writers seal with the same name.
var secretColumns = []secretColumn{
	{table: "webhooks", id: "id", col: "secret", name: func(id, _ string) string { return webhookSecretName(id) }, text: true},
	{table: "uploaded_certs", id: "hostname", col: "key_pem", extra: "sha256", name: uploadedKeyName},
}

// eachSecret calls f with the id, the sealing name and the stored value of each
// row of c whose id is above after, in id order, at most limit rows
// (-1: all).
func (db *DB) eachSecret(ctx context.Context, c secretColumn, after string, limit int, f func(id, name string, v []byte) error) error {
	extra := "''"
	if c.extra != "" {
		extra = c.extra
	}
	q := fmt.Sprintf(`SELECT %s, %s, %s FROM %s WHERE %s > $1 ORDER BY %s`, c.id, extra, c.col, c.table, c.id, c.id)
	args := []any{after}
	if limit > 0 {
		q += ` LIMIT $2`
		args = append(args, limit)
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return db.wrap("reading "+c.table+" secrets", err)
	}
	type row struct {
		id, name string
		v        []byte
	}
	var all []row
	for rows.Next() {
		var (
			r     row
			extra string
		)
		if err := rows.Scan(&r.id, &extra, &r.v); err != nil {
			rows.Close()
			return db.wrap("reading "+c.table+" secrets", err)
		}
		r.name = c.name(r.id, extra)
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return db.wrap("reading "+c.table+" secrets", err)
	}
	for _, r := range all {
		if err := f(r.id, r.name, r.v); err != nil {
			return err
		}
	}
	return nil
}

// resealColumn is Reseal's pass over one secret column, a page at a time.
func (db *DB) resealColumn(ctx context.Context, c secretColumn, rewrite rewriteFunc) error {
	after := ""
	for {
		n := 0
		err := db.eachSecret(ctx, c, after, resealPage, func(id, name string, v []byte) error {
			n++
			after = id
			return rewrite(name, v, func(old, sealed []byte) (bool, error) {
				var newV, oldV any = sealed, old
				if c.text {
					newV, oldV = string(sealed), string(old)
				}
				var affected int64
				err := db.write(ctx, "resealing a "+c.table+" secret", false, func(tx *sql.Tx) error {
					r, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE %s = $2 AND %s = $3`, c.table, c.col, c.id, c.col),
						newV, id, oldV)
					if err != nil {
						return err
					}
					affected, err = r.RowsAffected()
					return err
				})
				return affected == 1, err
			})
		})
		if err != nil || n < resealPage {
			return err
		}
	}
}

// SetKeyring sets the keys that seal and open secrets. Without one (nil),
// secrets are written as they are and a sealed value cannot be read: tests
// of other parts run so; a node always has one. It may be replaced while
// the DB is in use (a key file read again during a rotation).
func (db *DB) SetKeyring(k *secrets.Keyring) { db.keyring.Store(k) }

// Keyring returns the keyring set with SetKeyring, or nil.
func (db *DB) Keyring() *secrets.Keyring { return db.keyring.Load() }

// ErrSealed is returned when a sealed value cannot be opened: no keyring,
// or none of its keys sealed it.
var ErrSealed = errors.New("store: sealed value cannot be opened")

// seal returns the value to store for the secret name.
func (db *DB) seal(name string, v []byte) ([]byte, error) {
	k := db.keyring.Load()
	if k.Empty() {
		return v, nil
	}
	out, err := k.Seal(name, v)
	if err != nil {
		return nil, fmt.Errorf("store: sealing %s: %w", name, err)
	}
	return out, nil
}

// open returns the plaintext of a stored value: a sealed one opened, any
// other as it is (stored before sealing began).
func (db *DB) open(name string, v []byte) ([]byte, error) {
	if !secrets.IsSealed(v) {
		return v, nil
	}
	k := db.keyring.Load()
	if k.Empty() {
		return nil, fmt.Errorf("%w: %s is sealed and no secret key file is loaded", ErrSealed, name)
	}
	out, err := k.Open(name, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSealed, name, err)
	}
	return out, nil
}

// CheckKeyring tells whether the keyring opens this store's secrets: it
// opens the canary, sealed by the first node with a key file and resealed
// with the rest. It returns an *secrets.UnknownKeyError (wrapped) if the
// ring lacks the canary's key. A store without a canary gets one, sealed
// with the ring's newest key; of two nodes doing so at once, one wins and
// the other's check then fails if their keys differ.
func (db *DB) CheckKeyring(ctx context.Context) error {
	k := db.keyring.Load()
	if k.Empty() {
		return errors.New("store: no secret key file loaded")
	}
	_, err := db.GetKey(ctx, CanaryKey)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	c, err := k.Seal(CanaryKey, []byte("spine"))
	if err != nil {
		return err
	}
	if err := db.write(ctx, "storing the secrets canary", false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kv (key, value, modified) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING`,
			CanaryKey, c, time.Now().UnixNano())
		return err
	}); err != nil {
		return err
	}
	_, err = db.GetKey(ctx, CanaryKey) // another node's, if it won
	return err
}

// Opens tells whether k opens this store's canary (as CheckKeyring, for
// a keyring not set yet): a changed key file is taken up only if it does.
// A store without a canary is opened by any keyring.
func (db *DB) Opens(ctx context.Context, k *secrets.Keyring) error {
	v, err := db.rawKey(ctx, CanaryKey)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := k.Open(CanaryKey, v); err != nil {
		return fmt.Errorf("%w: %w", ErrSealed, err)
	}
	return nil
}

// HasSealed reports whether the store holds a sealed value (its canary):
// a store without one can start with a new key file.
func (db *DB) HasSealed(ctx context.Context) (bool, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM kv WHERE key = $1`, CanaryKey).Scan(&n)
	if err != nil {
		return false, db.wrap("reading the secrets canary", err)
	}
	return n > 0, nil
}

// ResealResult counts what a Reseal did.
type ResealResult struct {
	Plain    int // values stored before sealing began, now sealed
	Resealed int // values sealed with an older key, now with the newest
	Current  int // values read and left as they were (ResealPlaintext reads no sealed secret of the key-value space)
}

// ResealMode says which values Reseal rewrites.
type ResealMode int

const (
	// ResealPlaintext seals the values stored before sealing began, and
	// leaves those sealed with an older key as they are: what a node does
	// at start, when other nodes may not hold its newest key yet.
	ResealPlaintext ResealMode = iota
	// ResealAll also reseals the values of older keys with the newest:
	// a rotation, once every node holds the new key.
	ResealAll
)

// resealPage is how many rows Reseal reads at a time.
const resealPage = 256

// Reseal rewrites every secret the store holds that is not sealed with the
// keyring's newest key: plaintext values stored before sealing began (an
// upgrade's migration in place) and, with ResealAll, values sealed with an
// older key (a rotation); Current counts the values it read and left. Each value is replaced only if it is still the one read, so a
// concurrent write is never lost; its writer sealed it with its own newest
// key, which the next Reseal checks again. Readers are served throughout:
// every key of the ring opens what it sealed. The canary goes last, so
// that a node started during a rotation is checked against the key the
// rest was sealed with. Reseal returns the first error; what it rewrote
// before stays rewritten.
func (db *DB) Reseal(ctx context.Context, mode ResealMode) (ResealResult, error) {
	var res ResealResult
	k := db.keyring.Load()
	if k.Empty() {
		return res, errors.New("store: no secret key file loaded")
	}
	rewrite := func(name string, v []byte, update func(old, sealed []byte) (bool, error)) error {
		if k.Current(v) || mode == ResealPlaintext && secrets.IsSealed(v) {
			res.Current++
			return nil
		}
		plain, err := db.open(name, v)
		if err != nil {
			return err
		}
		sealed, err := k.Seal(name, plain)
		if err != nil {
			return err
		}
		ok, err := update(v, sealed)
		if err != nil {
			return err
		}
		if ok {
			if secrets.IsSealed(v) {
				res.Resealed++
			} else {
				res.Plain++
			}
		}
		return nil
	}
	kvUpdate := func(key string) func(old, sealed []byte) (bool, error) {
		return func(old, sealed []byte) (bool, error) {
			var n int64
			err := db.write(ctx, "resealing "+key, false, func(tx *sql.Tx) error {
				r, err := tx.ExecContext(ctx, `UPDATE kv SET value = $1 WHERE key = $2 AND value = $3`, sealed, key, old)
				if err != nil {
					return err
				}
				n, err = r.RowsAffected()
				return err
			})
			return n == 1, err
		}
	}
	// The key-value space, a page at a time in key order; then the
	// secrets kept in columns; the canary last.
	if err := db.resealKV(ctx, mode, rewrite, kvUpdate); err != nil {
		return res, err
	}
	for _, c := range secretColumns {
		if err := db.resealColumn(ctx, c, rewrite); err != nil {
			return res, err
		}
	}
	v, err := db.rawKey(ctx, CanaryKey)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return res, err
	default:
		if err := rewrite(CanaryKey, v, kvUpdate(CanaryKey)); err != nil {
			return res, err
		}
	}
	return res, nil
}

// rewriteFunc is Reseal's rewrite of one value; updateFunc makes the
// update that replaces key's value if it is still the one read.
type (
	rewriteFunc func(name string, v []byte, update func(old, sealed []byte) (bool, error)) error
	updateFunc  func(key string) func(old, sealed []byte) (bool, error)
)

// resealKV is Reseal's pass over the key-value space, a page of
// resealPage secrets at a time in key order, handshakes running between
// pages; rewrite gets each secret but the canary, which goes last.
//
// For a rotation (ResealAll) it reads every secret. At a node's start
// (ResealPlaintext) it reads only those stored in plaintext, which the
// database keeps in an index of their own (kv_plaintext_secrets,
// migration 36, whose condition is the dialect's plaintextSecrets), empty
// once sealing has migrated them: the check of a store of a million
// private keys, all sealed, is one probe of an empty index, and holds off
// while handshakes load certificates (a Background yielder) when it has
// more to do. Before the index, every start read every private key: at 1M
// about 15,600 queries, 2.2 GB of PostgreSQL's table (8-10 s of a
// backend's processor, more when its pages had left the page cache) or
// 8.3 s of the node's own processor on SQLite, held off behind cold
// handshakes for minutes (BENCHMARKS.md, "The start's check of every
// private key in one index probe"). The sealed secrets are not read then,
// so Current does not count them.
func (db *DB) resealKV(ctx context.Context, mode ResealMode, rewrite rewriteFunc, update updateFunc) error {
	var (
		q    string
		args []any // args[0] is where the page starts, args[1] its size
		y    sched.Yielder
		page = make([]KeyValue, 0, resealPage)
		kv   KeyValue // the one scan target of every row: what Scan is given escapes (a KeyValue a row was 130 MB of garbage at 1M keys)
	)
	if mode == ResealPlaintext {
		q, args = db.plaintextSecretsQuery(), []any{"", resealPage}
		y.Background = true
	} else {
		where, wargs := secretWhere(3)
		q = `SELECT key, value FROM kv WHERE key > $1 AND ` + where + ` ORDER BY key LIMIT $2`
		args = append([]any{"", resealPage}, wargs...)
	}
	for {
		y.Maybe()
		rows, err := db.queryRead(ctx, q, args...)
		if err != nil {
			return db.wrap("reading secrets", err)
		}
		page = page[:0]
		for rows.Next() {
			kv = KeyValue{}
			if err := rows.Scan(&kv.Key, &kv.Value); err != nil {
				rows.Close()
				return db.wrap("reading secrets", err)
			}
			page = append(page, kv)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return db.wrap("reading secrets", err)
		}
		for _, kv := range page {
			if !SecretKey(kv.Key) || kv.Key == CanaryKey { // SQLite's LIKE ignores case; the canary goes last
				continue
			}
			if err := rewrite(kv.Key, kv.Value, update(kv.Key)); err != nil {
				return err
			}
		}
		if len(page) < resealPage {
			return nil
		}
		args[0] = page[len(page)-1].Key
	}
}

// plaintextSecretsQuery is resealKV's query at a node's start: a page of the
// plaintext secrets after the key $1, at most $2 of them.
func (db *DB) plaintextSecretsQuery() string {
	return `SELECT key, value FROM kv WHERE key > $1 AND ` + db.d.plaintextSecrets + ` ORDER BY key LIMIT $2`
}

// plaintextSecretsWhere is the SQL condition of the key-value space's
// secrets stored in plaintext: a key SecretKey accepts (ending in ".key"
// by its characters, which LIKE is not in SQLite, or one of secretKeys)
// and a value that does not start with secrets.Prefix, written as blob
// (a format with one %s) makes a blob of it in the dialect. It is the
// condition of the index kv_plaintext_secrets word for word, which is
// what lets both databases use the index for it (a test holds the two
// equal): a new entry of secretKeys needs a migration that makes the
// index again.
func plaintextSecretsWhere(blob string) string {
	var b strings.Builder
	b.WriteString("(substr(key, length(key) - 3) = '.key' OR key IN (")
	for i, k := range secretKeys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("'" + k + "'")
	}
	b.WriteString(")) AND substr(value, 1, " + strconv.Itoa(len(secrets.Prefix)) + ") <> " + fmt.Sprintf(blob, secrets.Prefix))
	return b.String()
}

// SealedKeys counts the store's secrets by the ID of the key that sealed
// them; "" counts those stored before sealing began. A rotation is done
// when only the new key's ID is left.
func (db *DB) SealedKeys(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	note := func(v []byte) {
		id, _ := secrets.SealedWith(v)
		out[id]++
	}
	where, args := secretWhere(1)
	rows, err := db.r.QueryContext(ctx, `SELECT key, value FROM kv WHERE `+where, args...)
	if err != nil {
		return nil, db.wrap("reading secrets", err)
	}
	for rows.Next() {
		var kv KeyValue
		if err := rows.Scan(&kv.Key, &kv.Value); err != nil {
			rows.Close()
			return nil, db.wrap("reading secrets", err)
		}
		if SecretKey(kv.Key) {
			note(kv.Value)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, db.wrap("reading secrets", err)
	}
	for _, c := range secretColumns {
		err := db.eachSecret(ctx, c, "", -1, func(_, _ string, v []byte) error {
			note(v)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// rawKey returns the value stored under key as it is stored.
func (db *DB) rawKey(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := db.r.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("key %q not found", key)
	}
	if err != nil {
		return nil, db.wrap("reading key", err)
	}
	return v, nil
}
