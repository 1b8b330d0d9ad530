package fleet

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// Two nodes on one store share the ECH keys; a rotation on one is taken
// up by the other at its next read; the replaced key is still accepted
// for ECHGrace, then dropped; a new public name starts a new key.
func TestECHKeysSharedAndRotated(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	applied := map[string][]tls.EncryptedClientHelloKey{}
	node := func(id, name string) *ECHKeys {
		e := NewECHKeys(db, id, name, func(k []tls.EncryptedClientHelloKey) error { applied[id] = k; return nil }, log)
		e.now = func() time.Time { return now }
		return e
	}
	a, b := node("a", "ech.example.com"), node("b", "ech.example.com")
	refresh := func(e *ECHKeys) {
		t.Helper()
		if err := e.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	refresh(a)
	refresh(b)
	if len(applied["a"]) != 1 || string(applied["a"][0].Config) != string(applied["b"][0].Config) || !applied["a"][0].SendAsRetry {
		t.Fatalf("nodes do not share one key: %d / %d keys", len(applied["a"]), len(applied["b"]))
	}
	first := applied["a"][0].Config
	if string(a.ConfigList()[2:]) != string(first) {
		t.Error("ConfigList does not publish the key")
	}

	now = now.Add(ECHRotation)
	refresh(b) // b rotates
	refresh(a)
	if len(applied["a"]) != 2 || string(applied["a"][1].Config) != string(first) || applied["a"][1].SendAsRetry || !applied["a"][0].SendAsRetry {
		t.Fatalf("after a rotation: %d keys; the old one must stay, not as retry", len(applied["a"]))
	}
	if string(applied["a"][0].Config) != string(applied["b"][0].Config) {
		t.Error("the nodes disagree on the new key")
	}
	now = now.Add(ECHGrace)
	refresh(a)
	for _, k := range applied["a"] {
		if string(k.Config) == string(first) {
			t.Error("the first key is still accepted after its grace period")
		}
	}

	c := node("c", "ech2.example.com")
	refresh(c)
	if got := applied["c"][0].Config; !containsName(got, "ech2.example.com") {
		t.Error("a new public name did not start a key of its own")
	}
}

func containsName(config []byte, name string) bool {
	return len(config) > len(name) && string(config[len(config)-2-len(name):len(config)-2]) == name
}

// A nil ECHKeys publishes nothing.
func TestECHKeysOffPublishesNothing(t *testing.T) {
	var off *ECHKeys
	if name, list := off.Published(); name != "" || list != nil {
		t.Errorf("a nil ECHKeys published %q, %x", name, list)
	}
}
