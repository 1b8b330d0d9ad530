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
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/secrets"
)

// CanaryKey is a sealed value of no meaning that tells, at start, whether
// the node's key file opens this store's secrets (CheckKeyring).
const CanaryKey = "spine/secrets/canary"

// secretKeys are the keys of the key-value space that hold secrets without
// the ".key" ending of private keys.
var secretKeys = []string{
	"spine/dns01/secret",    // the delegation labels' HMAC key (dnsserver)
	"spine/tls/ticket-keys", // the session-ticket keys (fleet)
	"spine/tls/ech-keys",    // the ECH private keys (fleet)
	"spine/quic/keys",       // the QUIC stateless-reset and token keys (fleet)
	CanaryKey,
}

// secretWhere is the SQL condition of the keys SecretKey may be true of
// (LIKE ignores case on SQLite: callers check SecretKey again), with its
// arguments numbered from $first.
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
	Current  int // values already sealed with the newest key
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
// older key (a rotation); Current counts the values it left. Each value is replaced only if it is still the one read, so a
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
	// The key-value space, a page at a time in key order.
	after := ""
	for {
		where, args := secretWhere(3)
		rows, err := db.r.QueryContext(ctx, `SELECT key, value FROM kv WHERE key > $1 AND `+where+` ORDER BY key LIMIT $2`,
			append([]any{after, resealPage}, args...)...)
		if err != nil {
			return res, db.wrap("reading secrets", err)
		}
		var page []KeyValue
		for rows.Next() {
			var kv KeyValue
			if err := rows.Scan(&kv.Key, &kv.Value); err != nil {
				rows.Close()
				return res, db.wrap("reading secrets", err)
			}
			page = append(page, kv)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, db.wrap("reading secrets", err)
		}
		for _, kv := range page {
			if !SecretKey(kv.Key) || kv.Key == CanaryKey { // SQLite's LIKE ignores case; the canary goes last
				continue
			}
			if err := rewrite(kv.Key, kv.Value, kvUpdate(kv.Key)); err != nil {
				return res, err
			}
		}
		if len(page) < resealPage {
			break
		}
		after = page[len(page)-1].Key
	}
	// The webhooks' signing secrets.
	after = ""
	for {
		type hook struct{ id, secret string }
		rows, err := db.r.QueryContext(ctx, `SELECT id, secret FROM webhooks WHERE id > $1 ORDER BY id LIMIT $2`, after, resealPage)
		if err != nil {
			return res, db.wrap("reading webhook secrets", err)
		}
		var page []hook
		for rows.Next() {
			var h hook
			if err := rows.Scan(&h.id, &h.secret); err != nil {
				rows.Close()
				return res, db.wrap("reading webhook secrets", err)
			}
			page = append(page, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, db.wrap("reading webhook secrets", err)
		}
		for _, h := range page {
			err := rewrite(webhookSecretName(h.id), []byte(h.secret), func(old, sealed []byte) (bool, error) {
				var n int64
				err := db.write(ctx, "resealing a webhook secret", false, func(tx *sql.Tx) error {
					r, err := tx.ExecContext(ctx, `UPDATE webhooks SET secret = $1 WHERE id = $2 AND secret = $3`, string(sealed), h.id, string(old))
					if err != nil {
						return err
					}
					n, err = r.RowsAffected()
					return err
				})
				return n == 1, err
			})
			if err != nil {
				return res, err
			}
		}
		if len(page) < resealPage {
			break
		}
		after = page[len(page)-1].id
	}
	// The canary last.
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
	rows, err = db.r.QueryContext(ctx, `SELECT secret FROM webhooks`)
	if err != nil {
		return nil, db.wrap("reading webhook secrets", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, db.wrap("reading webhook secrets", err)
		}
		note([]byte(s))
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("reading webhook secrets", err)
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
