package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

func openSQLite(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.DB {
		return openSQLite(t, filepath.Join(t.TempDir(), "spine.db"))
	})
}

func TestSQLiteReopenAndPermissions(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data", "spine")
	path := filepath.Join(dir, "spine.db")
	db, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if db.Kind() != "sqlite" {
		t.Errorf("Kind() = %q", db.Kind())
	}
	if err := db.CreateProject(ctx, store.Project{ID: "p1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDomain(ctx, store.Domain{Name: "example.com", ProjectID: "p1"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateService(ctx, store.Service{ID: "s1", ProjectID: "p1", Name: "web", Domain: "example.com",
		Hostnames: []string{"web.example.com"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutKey(ctx, "ca/root.key", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	rev, err := db.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err != nil {
			t.Error(err)
		} else if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s mode = %o, want 600", filepath.Base(p), m)
		}
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if fi, err := os.Stat(d); err != nil {
			t.Error(err)
		} else if m := fi.Mode().Perm(); m != 0o700 {
			t.Errorf("%s mode = %o, want 700", d, m)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	db = openSQLite(t, path) // migrations run again and find nothing to do
	s, err := db.GetService(ctx, "p1", "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Hostnames) != 1 || s.Hostnames[0] != "web.example.com" {
		t.Errorf("service after reopen = %+v", s)
	}
	v, err := db.GetKey(ctx, "ca/root.key")
	if err != nil || string(v) != "secret" {
		t.Errorf("key after reopen = %q, %v", v, err)
	}
	if r, err := db.Revision(ctx); err != nil || r != rev {
		t.Errorf("revision after reopen = %d, %v; want %d", r, err, rev)
	}
}

// Two DBs on one file stand for two processes: their writers must wait for each
// other, not fail with SQLITE_BUSY.
func TestSQLiteTwoProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "spine.db")
	var (
		dbs [2]*store.DB
		wg  sync.WaitGroup
	)
	for i := range dbs { // both open (and migrate) at once
		wg.Go(func() {
			db, err := store.Open(ctx, "sqlite:"+path)
			if err != nil {
				t.Error(err)
				return
			}
			dbs[i] = db
		})
	}
	wg.Wait()
	for _, db := range dbs {
		if db == nil {
			t.FailNow()
		}
		t.Cleanup(func() { db.Close() })
	}
	if err := dbs[0].CreateProject(ctx, store.Project{ID: "p", Name: "p"}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		wg.Go(func() {
			db := dbs[i%2]
			if err := db.CreateDomain(ctx, store.Domain{Name: fmt.Sprintf("d%d.example", i), ProjectID: "p"}); err != nil {
				t.Error(err)
			}
			if _, err := db.TryLock(ctx, "l", fmt.Sprint(i), time.Minute); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ds, err := dbs[1].ListDomains(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != n {
		t.Errorf("%d domains, want %d", len(ds), n)
	}
}

func TestOpenBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "mysql://x", "sqlite:", "sqlite:/tmp/a?b.db"} {
		if db, err := store.Open(context.Background(), dsn); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}
