package store_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spine-platform/spine/internal/store"
)

// On SQLite the reads of a warm-up look-up keep their statements
// prepared: one each, however often they run, and none for a read whose
// text varies (a longer IN list, the changed services). Past the bound a
// statement is prepared for its call alone and the read still answers;
// after Close a read fails with the store closed.
func TestPreparedStatements(t *testing.T) {
	ctx := t.Context()
	db := openSQLite(t, filepath.Join(t.TempDir(), "spine.db"))
	if err := db.CreateProject(ctx, store.Project{ID: "p1", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDomain(ctx, store.Domain{Name: "example.com", ProjectID: "p1"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "api"} {
		if err := db.CreateService(ctx, store.Service{ID: "id-" + name, ProjectID: "p1", Name: name, Domain: "example.com",
			Hostnames: []string{name + ".example.com"}, Upstreams: []string{"http://127.0.0.1:1"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.PutKey(ctx, "certificates/ca/web.example.com/web.example.com.crt", []byte("x")); err != nil {
		t.Fatal(err)
	}
	lookup := func(host string) {
		t.Helper()
		s, err := db.ServiceByHostname(ctx, host)
		if err != nil || s.Hostnames[0] != host {
			t.Fatalf("ServiceByHostname(%s) = %v, %v", host, s.Hostnames, err)
		}
		if ds, err := db.DomainsNamed(ctx, []string{host, "example.com", "com"}); err != nil || len(ds) != 1 {
			t.Fatalf("DomainsNamed = %v, %v", ds, err)
		}
		if _, err := db.UploadedCertFor(ctx, host); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UploadedCertFor = %v, want not found", err)
		}
		if _, err := db.GetService(ctx, "p1", strings.TrimSuffix(host, ".example.com")); err != nil {
			t.Fatal(err)
		}
		if kvs, err := db.GetKeysWithPrefix(ctx, 5, "certificates/ca/"+host+"/"); err != nil || len(kvs) != (map[bool]int{true: 1}[host == "web.example.com"]) {
			t.Fatalf("GetKeysWithPrefix = %v, %v", kvs, err)
		}
	}
	lookup("web.example.com")
	n0, max := store.Prepared(db)
	if n0 != 5 {
		t.Errorf("after one look-up, %d statements prepared; want 5 (service, domains, upload, service by name, keys)", n0)
	}
	for range 3 {
		lookup("api.example.com")
	}
	var many []string
	for i := range 9 {
		many = append(many, fmt.Sprintf("n%d.example.com", i))
	}
	if _, err := db.DomainsNamed(ctx, many); err != nil {
		t.Fatal(err)
	}
	if n, _ := store.Prepared(db); n != n0 {
		t.Errorf("after more look-ups and a long IN list, %d statements prepared; want %d still", n, n0)
	}

	for i := range max + 5 {
		v, err := store.QueryRead(ctx, db, fmt.Sprintf("SELECT %d + $1", i), 1)
		if err != nil || v != int64(i+1) {
			t.Fatalf("query %d = %d, %v", i, v, err)
		}
	}
	if n, _ := store.Prepared(db); n != max {
		t.Errorf("%d statements prepared past the bound, want %d", n, max)
	}
	lookup("web.example.com") // kept statements still answer

	db.Close()
	if _, err := db.ServiceByHostname(ctx, "web.example.com"); err == nil {
		t.Error("a read after Close succeeded")
	}
	if _, err := store.QueryRead(ctx, db, "SELECT 999 + $1", 1); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("a read of a new statement after Close = %v, want the store closed", err)
	}
}
