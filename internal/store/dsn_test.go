package store_test

import (
	"strings"
	"testing"

	"github.com/spine-platform/spine/internal/store"
)

// Every PostgreSQL address pgx accepts is accepted, and a refused one never
// shows its password, wherever it is written, in the error or in ShownDSN.
func TestCheckDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres:///spine?host=/var/run/postgresql",
		"postgres://a:5432,b:5432/spine",
		"postgres://u:pw@/db",
		"postgresql://spine:pw@db.internal:5432/spine?sslmode=require",
		"sqlite:" + t.TempDir() + "/spine.db",
	} {
		if err := store.CheckDSN(dsn); err != nil {
			t.Errorf("CheckDSN(%q) = %v, want nil", dsn, err)
		}
	}
	for _, dsn := range []string{
		"postgres://spine@/spine?password=SECRET1&connect_timeout=soon",
		"postgres://spine:SECRET1@db:notaport/spine",
		"host=db password=SECRET1",
		"mysql://root:SECRET1@db/spine",
	} {
		err := store.CheckDSN(dsn)
		if err == nil {
			t.Errorf("CheckDSN(%q) accepted it", dsn)
			continue
		}
		if strings.Contains(err.Error(), "SECRET1") || strings.Contains(store.ShownDSN(dsn), "SECRET1") {
			t.Errorf("CheckDSN(%q) = %v, shown as %s: shows the password", dsn, err, store.ShownDSN(dsn))
		}
		if !strings.Contains(err.Error(), "write sqlite:PATH or postgres://") {
			t.Errorf("CheckDSN(%q) = %v: does not say what to write", dsn, err)
		}
	}
	if err := store.CheckDSN("sqlite:"); err == nil || !strings.Contains(err.Error(), "give the path of the database file") {
		t.Errorf("CheckDSN(sqlite:) = %v", err)
	}
}
