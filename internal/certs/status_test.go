package certs

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// A valid name's status stays in memory only while its certificate is in
// the cache: release drops it once it left (unless a change of it is not
// written yet, or a handshake waits on it), and a change written for a
// name not in memory (a renewal from its record) is dropped once written.
// Names that are not valid stay: handshakes and retries need them.
func TestStatusBookKeepsValidNamesInMemoryOnly(t *testing.T) {
	recs := &records{}
	b := newStatusBook(recs, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	inCache := map[string]bool{}
	b.inMemory = func(name string) bool { return inCache[name] }
	now := time.Now()
	leaf := &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}

	// Started from their records, then loaded: in memory, nothing written.
	for _, n := range []string{"a.test", "b.test", "c.test"} {
		inCache[n] = true
		b.loaded(n, leaf)
	}
	_, waiting := b.watch("c.test") // a handshake waits on c
	if !b.release("a.test") || b.size() != 2 {
		t.Fatalf("a's certificate left the cache: released, %d statuses left; want 2", b.size())
	}
	if b.release("c.test") {
		t.Error("c was released while a handshake waits on it")
	}
	select {
	case <-waiting:
		t.Error("release woke c's watcher")
	default:
	}

	// A renewal of b (in the cache) is written and kept; once b left the
	// cache, released.
	b.active("b.test", leaf)
	if b.release("b.test") {
		t.Error("b was released before its change was written")
	}
	if !b.flush(context.Background()) || recs.get("b.test").Status != store.CertActive {
		t.Fatalf("b's change was not written: %+v", recs.get("b.test"))
	}
	if _, ok := b.lookup("b.test"); !ok {
		t.Fatal("b, in the cache, was dropped once written")
	}
	inCache["b.test"] = false
	if !b.release("b.test") {
		t.Error("b, written and out of the cache, was not released")
	}

	// A renewal from its record of a name not in memory: dropped once
	// written, the record holds it.
	b.seed(store.CertStatus{Hostname: "d.test", Status: store.CertActive, NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter})
	b.active("d.test", leaf)
	if !b.flush(context.Background()) || recs.get("d.test").NotAfter != leaf.NotAfter {
		t.Fatalf("d's renewal was not written: %+v", recs.get("d.test"))
	}
	if _, ok := b.lookup("d.test"); ok {
		t.Error("d, renewed from its record and not in memory, kept its status once written")
	}

	// Not valid: kept, in the cache or not.
	b.pending("e.test")
	b.failed("f.test", io.ErrUnexpectedEOF)
	b.flush(context.Background())
	if b.release("e.test") || b.release("f.test") {
		t.Error("a pending or failed name was released")
	}
	if _, ok := b.lookup("e.test"); !ok {
		t.Error("a pending name's status was dropped once written")
	}
}
