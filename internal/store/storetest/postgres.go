package storetest

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresDSN returns the DSN of a new, empty schema that is dropped when t ends.
// The test fails if PostgreSQL cannot be reached, unless SPINE_TEST_POSTGRES=skip.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SPINE_TEST_POSTGRES")
	if dsn == "skip" {
		t.Skip("SPINE_TEST_POSTGRES=skip")
	}
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("PostgreSQL unreachable (set SPINE_TEST_POSTGRES=skip to skip): %v", err)
	}
	defer admin.Close(context.Background())
	schema := "spine_test_" + rand.Text()[:12]
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
