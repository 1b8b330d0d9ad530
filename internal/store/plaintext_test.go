package store_test

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// A node's start checks for plaintext secrets with the index of them
// (kv_plaintext_secrets), on both databases: the condition its query says
// is the index's word for word (a planner uses a partial index only for a
// query that says what the index does; a new entry of the secret keys
// needs a migration that makes the index again), and with a store of sealed
// private keys the planner answers the query from that index, not by
// reading every key.
func TestPlaintextSecretsIndexed(t *testing.T) {
	for _, st := range []struct {
		name string
		open func(t *testing.T) *store.DB
	}{
		{"sqlite", func(t *testing.T) *store.DB { return openSQLite(t, filepath.Join(t.TempDir(), "spine.db")) }},
		{"postgres", func(t *testing.T) *store.DB { return openPostgres(t, storetest.PostgresDSN(t)) }},
	} {
		t.Run(st.name, func(t *testing.T) {
			ctx := t.Context()
			db := st.open(t)
			m, v, err := store.LastMigrationWith(db, "kv_plaintext_secrets")
			if err != nil {
				t.Fatal(err)
			}
			cond := store.PlaintextSecretsWhere(db)
			if want := "CREATE INDEX kv_plaintext_secrets ON kv (key) WHERE " + cond + ";"; !strings.Contains(m, want) {
				t.Fatalf("the newest migration that makes kv_plaintext_secrets (%d) does not say the code's condition word for word:\n%s\nwant a line\n%s", v, m, want)
			}
			k, err := secrets.New([]byte(rand.Text() + rand.Text())[:secrets.KeySize])
			if err != nil {
				t.Fatal(err)
			}
			db.SetKeyring(k)
			if err := db.CheckKeyring(ctx); err != nil {
				t.Fatal(err)
			}
			var kvs []store.KeyValue
			for i := range 2000 {
				dir := fmt.Sprintf("certificates/ca/h%05d.example/h%05d.example", i, i)
				kvs = append(kvs, store.KeyValue{Key: dir + ".key", Value: []byte("private key")},
					store.KeyValue{Key: dir + ".crt", Value: []byte("certificate")})
			}
			if err := db.PutKeysAndCertStatus(ctx, kvs, nil); err != nil {
				t.Fatal(err)
			}
			plan, err := store.PlaintextSecretsPlan(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(plan, "kv_plaintext_secrets") {
				t.Errorf("the check's plan does not use the index kv_plaintext_secrets:\n%s", plan)
			}
		})
	}
}
