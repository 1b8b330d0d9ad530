package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// TestTokenMigration upgrades a store that a fleet of the previous release
// wrote (each node made its own "admin" token of the default project) on
// both back ends: the admin tokens become the operator's, the names become
// unique within a project, and every token still authenticates.
func TestTokenMigration(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "spine.db")
			if kind == "postgres" {
				dsn = storetest.PostgresDSN(t)
			}
			db, err := store.OpenAt(ctx, dsn, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range []string{
				`INSERT INTO projects (id, name, created_at) VALUES ('default', 'default', 1), ('p1', 'one', 1)`,
				`INSERT INTO tokens (id, project_id, name, hash, created_at) VALUES
					('tok_aaaaaaaa1111', 'default', 'admin', 'h1', 1),
					('tok_bbbbbbbb2222', 'default', 'admin', 'h2', 2),
					('tok_cccccccc3333', 'p1', 'initial', 'h3', 3),
					('tok_dddddddd4444', 'p1', 'admin', 'h4', 4)`,
			} {
				if err := store.Exec(ctx, db, q); err != nil {
					t.Fatal(err)
				}
			}
			if err := store.Migrate(ctx, db); err != nil {
				t.Fatalf("migrating: %v", err)
			}
			want := map[string]struct {
				name   string
				scopes string
			}{
				"h1": {"admin", "[operator]"},
				"h2": {"admin-bbbbbbbb", "[operator]"},
				"h3": {"initial", "[]"},
				"h4": {"admin", "[]"}, // another project's "admin" is no operator
			}
			for hash, w := range want {
				c, err := db.TokenByHash(ctx, hash)
				if err != nil {
					t.Fatalf("token %s after the migration: %v", hash, err)
				}
				if c.Token.Name != w.name || fmtScopes(c.Token.Scopes) != w.scopes {
					t.Errorf("token %s: name %q scopes %v, want %q %s", hash, c.Token.Name, c.Token.Scopes, w.name, w.scopes)
				}
			}
		})
	}
}

func fmtScopes(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}
