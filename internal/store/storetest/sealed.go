package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

func keyring(t *testing.T, raw ...[]byte) *secrets.Keyring {
	t.Helper()
	k, err := secrets.New(raw...)
	must(t, err)
	return k
}

func newRawKey() []byte { return []byte(rand.Text() + rand.Text())[:secrets.KeySize] }

// testSealed: secrets are sealed at the store's boundary, plaintext stored
// before sealing began is read and migrated in place, a rotation reseals
// under the new key while both open, and a ring without the key is refused.
func testSealed(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	keyPEM := []byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI...\n-----END EC PRIVATE KEY-----\n")
	certKey := "certificates/ca/a.example/a.example.key"

	// Before sealing began: stored as it is.
	must(t, db.PutKey(ctx, certKey, keyPEM))
	must(t, db.PutKey(ctx, "certificates/ca/a.example/a.example.crt", []byte("cert")))
	webhook(t, db, "p1", "wh_old")
	must(t, db.CreateDomain(ctx, store.Domain{Name: "a.example", ProjectID: "p1", Status: store.DomainVerified, CreatedAt: t0}))
	must(t, db.PutUploadedCert(ctx, "a.example", store.UploadedCert{Hostname: "www.a.example", ProjectID: "p1",
		Chain: []byte("chain"), Key: keyPEM, SHA256: "ab12", NotBefore: t0, NotAfter: t0.Add(time.Hour)}))

	oldRaw, newRaw := newRawKey(), newRawKey()
	old := keyring(t, oldRaw)
	db.SetKeyring(old)
	if has, err := db.HasSealed(ctx); err != nil || has {
		t.Fatalf("HasSealed before any = %v, %v", has, err)
	}
	must(t, db.CheckKeyring(ctx))
	if has, err := db.HasSealed(ctx); err != nil || !has {
		t.Fatalf("HasSealed after CheckKeyring = %v, %v", has, err)
	}
	// Plaintext still read during the migration.
	if v, err := db.GetKey(ctx, certKey); err != nil || !bytes.Equal(v, keyPEM) {
		t.Fatalf("GetKey(plaintext row) = %q, %v", v, err)
	}
	counts, err := db.SealedKeys(ctx)
	must(t, err)
	if counts[""] != 3 || counts[secrets.KeyID(oldRaw)] != 1 { // the key, the webhook, the uploaded key; the canary
		t.Errorf("SealedKeys before Reseal = %v", counts)
	}
	res, err := db.Reseal(ctx, store.ResealPlaintext)
	must(t, err)
	if res.Plain != 3 || res.Resealed != 0 || res.Current != 1 {
		t.Errorf("Reseal = %+v, want 3 plain, 1 current", res)
	}
	counts, err = db.SealedKeys(ctx)
	must(t, err)
	if len(counts) != 1 || counts[secrets.KeyID(oldRaw)] != 4 {
		t.Errorf("SealedKeys after Reseal = %v", counts)
	}

	// New writes are sealed; reads open them, one at a time and by prefix.
	acct := "acme/ca/spine-accounts/default.key"
	must(t, db.PutKey(ctx, acct, []byte("account key")))
	webhook(t, db, "p1", "wh_new")
	check := func(k *secrets.Keyring) {
		t.Helper()
		db.SetKeyring(k)
		if v, err := db.GetKey(ctx, certKey); err != nil || !bytes.Equal(v, keyPEM) {
			t.Errorf("GetKey(%s) = %q, %v", certKey, v, err)
		}
		kvs, err := db.GetKeysWithPrefix(ctx, 10, "certificates/ca/a.example/")
		must(t, err)
		if len(kvs) != 2 || !bytes.Equal(kvs[1].Value, keyPEM) || string(kvs[0].Value) != "cert" {
			t.Errorf("GetKeysWithPrefix = %q", kvs)
		}
		for _, id := range []string{"wh_old", "wh_new"} {
			w, err := db.GetWebhook(ctx, "p1", id)
			if err != nil || w.Secret != "whsec_c2VjcmV0LW9mLQ=="+id {
				t.Errorf("GetWebhook(%s).Secret = %q, %v", id, w.Secret, err)
			}
		}
		ups, err := db.ListUploadedCerts(ctx, "p1", true)
		if err != nil || len(ups) != 1 || !bytes.Equal(ups[0].Key, keyPEM) {
			t.Errorf("ListUploadedCerts with keys = %+v, %v", ups, err)
		}
		must(t, db.CheckKeyring(ctx))
	}
	check(old)

	// Without the keyring a sealed value does not read: it is not stored as it was.
	db.SetKeyring(nil)
	if _, err := db.GetKey(ctx, certKey); !errors.Is(err, store.ErrSealed) {
		t.Errorf("GetKey without a keyring: %v, want ErrSealed", err)
	}
	if _, err := db.GetWebhook(ctx, "p1", "wh_new"); !errors.Is(err, store.ErrSealed) {
		t.Errorf("GetWebhook without a keyring: %v, want ErrSealed", err)
	}
	if _, err := db.ListUploadedCerts(ctx, "p1", true); !errors.Is(err, store.ErrSealed) {
		t.Errorf("ListUploadedCerts without a keyring: %v, want ErrSealed", err)
	}
	if v, err := db.GetKey(ctx, "certificates/ca/a.example/a.example.crt"); err != nil || string(v) != "cert" {
		t.Errorf("GetKey of a certificate (not a secret) = %q, %v", v, err)
	}

	db.SetKeyring(old)
	// Rotation: the new key first, the old one still opens.
	both := keyring(t, newRaw, oldRaw)
	must(t, db.Opens(ctx, both))
	if err := db.Opens(ctx, keyring(t, newRaw)); !errors.Is(err, store.ErrSealed) {
		t.Errorf("Opens(the new key alone) before the rotation: %v, want ErrSealed", err)
	}
	check(both)
	// A node's start-up reseal leaves the old key's values to the rotation;
	// of the sealed ones it reads only those kept in columns (two webhook
	// secrets, the uploaded key) and the canary, not the key-value space's.
	res, err = db.Reseal(ctx, store.ResealPlaintext)
	must(t, err)
	if res.Resealed != 0 || res.Plain != 0 || res.Current != 4 {
		t.Errorf("ResealPlaintext during a rotation = %+v, want 4 left", res)
	}
	res, err = db.Reseal(ctx, store.ResealAll)
	must(t, err)
	if res.Resealed != 6 || res.Plain != 0 {
		t.Errorf("Reseal under the new key = %+v, want 6 resealed", res)
	}
	counts, err = db.SealedKeys(ctx)
	must(t, err)
	if len(counts) != 1 || counts[secrets.KeyID(newRaw)] != 6 {
		t.Errorf("SealedKeys after the rotation = %v", counts)
	}
	check(keyring(t, newRaw))

	// The old key alone opens nothing now, and the start-up check says so.
	db.SetKeyring(old)
	var unknown *secrets.UnknownKeyError
	if err := db.CheckKeyring(ctx); !errors.As(err, &unknown) || unknown.ID != secrets.KeyID(newRaw) {
		t.Errorf("CheckKeyring with the old key = %v, want UnknownKeyError for %s", err, secrets.KeyID(newRaw))
	}
	if _, err := db.GetKey(ctx, acct); !errors.Is(err, store.ErrSealed) {
		t.Errorf("GetKey with the old key: %v", err)
	}
}

// testResealPages: a reseal reads the secrets a page at a time, reusing
// one page's memory for the next; each key keeps its own value.
func testResealPages(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	const n = 600 // more than two pages
	key := func(i int) string { return fmt.Sprintf("certificates/ca/h%04d.example/h%04d.example.key", i, i) }
	for i := range n {
		must(t, db.PutKey(ctx, key(i), fmt.Appendf(nil, "private key %d", i)))
	}
	db.SetKeyring(keyring(t, newRawKey()))
	must(t, db.CheckKeyring(ctx))
	res, err := db.Reseal(ctx, store.ResealPlaintext)
	must(t, err)
	if res.Plain != n {
		t.Errorf("Reseal = %+v, want %d plain", res, n)
	}
	counts, err := db.SealedKeys(ctx)
	must(t, err)
	if counts[""] != 0 {
		t.Errorf("SealedKeys after Reseal = %v: some left in plaintext", counts)
	}
	for i := range n {
		if v, err := db.GetKey(ctx, key(i)); err != nil || string(v) != fmt.Sprintf("private key %d", i) {
			t.Fatalf("GetKey(%s) = %q, %v", key(i), v, err)
		}
	}
}

// testResealPlaintextPages: a node's start (ResealPlaintext) reads only
// the secrets stored in plaintext (the index of them), 256 a query; over
// several such pages, with sealed secrets and other keys between them and
// a key ending in ".KEY" (SQLite's LIKE ignores case: not a secret), it
// seals every plaintext one and reads no sealed one of the key-value
// space (Current counts the canary alone).
func testResealPlaintextPages(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	const n = 1200 // 600 plaintext secrets a round: 3 pages
	key := func(i int) string { return fmt.Sprintf("certificates/ca/h%05d.example/h%05d.example.key", i, i) }
	put := func(from int) {
		var kvs []store.KeyValue
		for i := from; i < n; i += 2 {
			kvs = append(kvs, store.KeyValue{Key: key(i), Value: fmt.Appendf(nil, "private key %d", i)},
				store.KeyValue{Key: fmt.Sprintf("certificates/ca/h%05d.example/h%05d.example.crt", i, i), Value: []byte("cert")})
		}
		must(t, db.PutKeysAndCertStatus(ctx, kvs, nil))
	}
	put(0) // the even ones, in plaintext
	must(t, db.PutKey(ctx, "certificates/ca/z.example/z.example.KEY", []byte("not a secret")))
	db.SetKeyring(keyring(t, newRawKey()))
	must(t, db.CheckKeyring(ctx))
	res, err := db.Reseal(ctx, store.ResealPlaintext)
	must(t, err)
	if res.Plain != n/2 || res.Current != 1 { // the canary
		t.Fatalf("first Reseal = %+v, want %d plain, 1 current", res, n/2)
	}
	k := db.Keyring()
	db.SetKeyring(nil)
	put(1) // the odd ones, in plaintext, between the sealed ones
	db.SetKeyring(k)
	res, err = db.Reseal(ctx, store.ResealPlaintext)
	must(t, err)
	if res.Plain != n/2 || res.Current != 1 || res.Resealed != 0 {
		t.Errorf("second Reseal = %+v, want %d plain, 1 current (the canary)", res, n/2)
	}
	counts, err := db.SealedKeys(ctx)
	must(t, err)
	if counts[""] != 0 {
		t.Errorf("SealedKeys after Reseal = %v: some left in plaintext", counts)
	}
	for _, i := range []int{0, 1, 255, 256, 257, 510, 511, 512, 513, n - 1} {
		if v, err := db.GetKey(ctx, key(i)); err != nil || string(v) != fmt.Sprintf("private key %d", i) {
			t.Fatalf("GetKey(%s) = %q, %v", key(i), v, err)
		}
	}
	if v, err := db.GetKey(ctx, "certificates/ca/z.example/z.example.KEY"); err != nil || string(v) != "not a secret" {
		t.Errorf("GetKey of the .KEY key = %q, %v", v, err)
	}
}
