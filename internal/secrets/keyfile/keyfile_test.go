package keyfile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

// newKey returns one new raw key.
func newKey(t *testing.T) []byte {
	t.Helper()
	content, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	_, raw, err := secrets.Parse(content)
	if err != nil {
		t.Fatal(err)
	}
	return raw[0]
}

// writeKeys replaces the key file at path with keys, newest first, 0600,
// as an operator's copy (or `spine secrets rotate`) would.
func writeKeys(t *testing.T, path string, keys ...[]byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, secrets.FileContent(keys...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// openStore opens a new SQLite store in a folder of its own, closed when t ends.
func openStore(t *testing.T) *store.DB {
	t.Helper()
	return openDSN(t, "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
}

// openDSN opens the store at dsn (another node's view of it: no keyring
// yet), closed when t ends.
func openDSN(t *testing.T, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// logBuffer is a log's text, safe for the watcher's goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// nodeKeys returns the key IDs the node recorded in the store.
func nodeKeys(t *testing.T, db *store.DB, nodeID string) []string {
	t.Helper()
	b, err := db.GetKey(t.Context(), NodeKeysPrefix+nodeID)
	if err != nil {
		t.Fatalf("reading the node's key IDs: %v", err)
	}
	var nk NodeKeys
	if err := json.Unmarshal(b, &nk); err != nil {
		t.Fatal(err)
	}
	return nk.Keys
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	t.Run("missing", func(t *testing.T) {
		k, sum, err := Read(filepath.Join(dir, "none.key"))
		if k != nil || sum != [sha256.Size]byte{} || err != nil {
			t.Fatalf("Read of a missing file = %v, %x, %v; want nil, zero, nil", k, sum, err)
		}
	})
	t.Run("keys", func(t *testing.T) {
		path := filepath.Join(dir, "secret.key")
		a, b := newKey(t), newKey(t)
		writeKeys(t, path, a, b)
		k, sum, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{secrets.KeyID(a), secrets.KeyID(b)}; !slices.Equal(k.IDs(), want) {
			t.Errorf("key IDs %v, want %v (newest first)", k.IDs(), want)
		}
		if want := sha256.Sum256(secrets.FileContent(a, b)); sum != want {
			t.Errorf("sum %x, want the SHA-256 of the content %x", sum, want)
		}
	})
	t.Run("readable by others", func(t *testing.T) {
		path := filepath.Join(dir, "open.key")
		if err := os.WriteFile(path, secrets.FileContent(newKey(t)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := Read(path)
		var fe *secrets.FileError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("Read of a 0644 key file: %v; want a FileError asking for chmod 600", err)
		}
	})
	t.Run("not a key", func(t *testing.T) {
		path := filepath.Join(dir, "bad.key")
		if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Read(path); err == nil || !strings.Contains(err.Error(), "line 1 is not a key") {
			t.Fatalf("Read of a file without a key: %v; want \"line 1 is not a key\"", err)
		}
	})
}

// TestEnsureCreatesKeyFile: on a store with nothing sealed, a missing key
// file is made, readable by its owner only, and its key seals the canary
// and is recorded as the node's.
func TestEnsureCreatesKeyFile(t *testing.T) {
	db := openStore(t)
	path := filepath.Join(t.TempDir(), "keys", "secret.key")
	var logs logBuffer
	w := NewWatcher(Config{Path: path, Store: db, NodeID: "n1", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := w.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o, want 0600", fi.Mode().Perm())
	}
	k, _, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(db.Keyring().IDs(), k.IDs()) {
		t.Errorf("store's keyring %v, want the file's %v", db.Keyring().IDs(), k.IDs())
	}
	if sealed, err := db.HasSealed(t.Context()); err != nil || !sealed {
		t.Errorf("HasSealed = %v, %v; want the canary sealed", sealed, err)
	}
	if got := nodeKeys(t, db, "n1"); !slices.Equal(got, k.IDs()) {
		t.Errorf("recorded key IDs %v, want %v", got, k.IDs())
	}
	if !strings.Contains(logs.String(), "created the secret key file: back it up") {
		t.Errorf("no warning to back the new key file up; log:\n%s", logs.String())
	}
}

// TestEnsureRefuses: a node whose key file is missing, or lacks the key of
// the store's canary, does not start and writes nothing.
func TestEnsureRefuses(t *testing.T) {
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "spine.db")
	db := openDSN(t, dsn)
	first := filepath.Join(dir, "first.key")
	if err := NewWatcher(Config{Path: first, Store: db, NodeID: "n1", Logger: slog.New(slog.DiscardHandler)}).Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}

	t.Run("missing", func(t *testing.T) {
		db2 := openDSN(t, dsn) // another node over the same store
		path := filepath.Join(dir, "missing.key")
		err := NewWatcher(Config{Path: path, Store: db2, NodeID: "n2"}).Ensure(t.Context())
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "this store's secrets are sealed") {
			t.Fatalf("Ensure without a key file on a sealed store: %v; want a FileError saying the store is sealed", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a key file was made on a sealed store (stat: %v)", err)
		}
	})
	t.Run("other key", func(t *testing.T) {
		path := filepath.Join(dir, "other.key")
		writeKeys(t, path, newKey(t))
		other, _, err := Read(path)
		if err != nil {
			t.Fatal(err)
		}
		db2 := openDSN(t, dsn)
		db2.SetKeyring(other)
		err = NewWatcher(Config{Path: path, Store: db2, NodeID: "n2"}).Ensure(t.Context())
		want := "does not hold key " + db.Keyring().IDs()[0]
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Ensure with another key: %v; want %q", err, want)
		}
		if _, err := db2.GetKey(t.Context(), NodeKeysPrefix+"n2"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the refused node recorded its keys (GetKey: %v)", err)
		}
	})
}

// watched is a watcher running over its own store and key file, inside a
// synctest bubble: time moves only when every goroutine waits.
type watched struct {
	t       *testing.T
	db      *store.DB
	path    string
	logs    *logBuffer
	changed int // calls of Config.Changed; read after synctest.Wait
	first   []byte
}

// startWatched makes a key file of one key, ensures it and runs the
// watcher until the test ends.
func startWatched(t *testing.T) *watched {
	w := &watched{t: t, db: openStore(t), path: filepath.Join(t.TempDir(), "secret.key"), logs: &logBuffer{}, first: newKey(t)}
	writeKeys(t, w.path, w.first)
	k, sum, err := Read(w.path)
	if err != nil {
		t.Fatal(err)
	}
	w.db.SetKeyring(k)
	watcher := NewWatcher(Config{Path: w.path, Store: w.db, NodeID: "n1", Sum: sum,
		Prepared: func() bool { return true }, Changed: func() { w.changed++ },
		Logger: slog.New(slog.NewTextHandler(w.logs, nil))})
	if err := watcher.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		watcher.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	synctest.Wait() // the migration at start is done
	return w
}

// tick lets the watcher's next read of the key file happen.
func (w *watched) tick() {
	time.Sleep(interval) // the bubble's clock: no wall-clock wait
	synctest.Wait()
}

// TestRunTakesUpRotation: a key file that changed and still opens the
// store's canary is taken up at the next read, recorded as the node's keys
// and announced; an unchanged file is left alone.
func TestRunTakesUpRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := startWatched(t)
		w.tick()
		if w.changed != 0 {
			t.Fatalf("an unchanged key file was taken up %d times", w.changed)
		}
		next := newKey(t)
		writeKeys(t, w.path, next, w.first) // step 2 of a rotation: the new key first
		w.tick()
		want := []string{secrets.KeyID(next), secrets.KeyID(w.first)}
		if got := w.db.Keyring().IDs(); !slices.Equal(got, want) {
			t.Fatalf("keyring %v after the rotation, want %v", got, want)
		}
		if w.changed != 1 {
			t.Errorf("Changed called %d times, want 1", w.changed)
		}
		if got := nodeKeys(t, w.db, "n1"); !slices.Equal(got, want) {
			t.Errorf("recorded key IDs %v, want %v", got, want)
		}
		if !strings.Contains(w.logs.String(), "read the secret key file again") {
			t.Errorf("the rotation was not logged; log:\n%s", w.logs.String())
		}
		w.tick()
		if w.changed != 1 {
			t.Errorf("the same file was taken up again (Changed called %d times)", w.changed)
		}
	})
}

// TestRunRefusesWrongKeyFile: a changed key file that does not open the
// store's canary, cannot be read (readable by others) or is gone leaves the
// node with its keys, and says why.
func TestRunRefusesWrongKeyFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, path string)
		log    string
	}{
		{"another key", func(t *testing.T, path string) { writeKeys(t, path, newKey(t)) },
			"the secret key file changed but does not open the store's secrets; keeping the keys read before"},
		{"readable by others", func(t *testing.T, path string) {
			if err := os.Chmod(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "the secret key file cannot be read again; keeping the keys read before"},
		{"gone", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, "the secret key file is gone; keeping the keys read before"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := startWatched(t)
				tc.change(t, w.path)
				w.tick()
				if got, want := w.db.Keyring().IDs(), []string{secrets.KeyID(w.first)}; !slices.Equal(got, want) {
					t.Errorf("keyring %v, want the keys read before %v", got, want)
				}
				if w.changed != 0 {
					t.Errorf("Changed called %d times, want 0", w.changed)
				}
				if !strings.Contains(w.logs.String(), tc.log) {
					t.Errorf("log lacks %q:\n%s", tc.log, w.logs.String())
				}
				if err := w.db.CheckKeyring(t.Context()); err != nil {
					t.Errorf("the node's keys no longer open the store: %v", err)
				}
			})
		})
	}
}
