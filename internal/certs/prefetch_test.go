package certs_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/store"
)

// countingKV is the store, counting the reads that reach it. If hold is
// set, a prefix read waits, after reading, until hold is closed.
type countingKV struct {
	*store.DB
	gets, prefixReads atomic.Int64
	hold              chan struct{}
	read              chan struct{} // closed when a held prefix read has read
}

func (c *countingKV) GetKey(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.DB.GetKey(ctx, key)
}

func (c *countingKV) GetKeysWithPrefix(ctx context.Context, limit int, prefixes ...string) ([]store.KeyValue, error) {
	c.prefixReads.Add(1)
	kvs, err := c.DB.GetKeysWithPrefix(ctx, limit, prefixes...)
	if c.hold != nil {
		close(c.read)
		<-c.hold
	}
	return kvs, err
}

// reads returns how many reads reached the store so far.
func (c *countingKV) reads() int64 { return c.gets.Load() + c.prefixReads.Load() }

// Keys of one certificate as certmagic names them.
func siteKeys(issuer, name string) (key, crt, meta string) {
	dir := "certificates/" + issuer + "/" + name + "/" + name
	return dir + ".key", dir + ".crt", dir + ".json"
}

// putSite writes a certificate's three keys straight into the store, as
// another node would, with values that say which version they are.
func putSite(t *testing.T, db *store.DB, issuer, name, version string) {
	t.Helper()
	key, crt, meta := siteKeys(issuer, name)
	for _, k := range []string{key, crt, meta} {
		if err := db.PutKey(context.Background(), k, []byte(version+" "+k)); err != nil {
			t.Fatal(err)
		}
	}
}

// newCounted returns a Storage with opts (at most one; none: the defaults)
// over a counting KV.
func newCounted(t *testing.T, opts ...certs.StorageOptions) (*certs.Storage, *countingKV) {
	var o certs.StorageOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	kv := &countingKV{DB: openStore(t)}
	return certs.NewStorage(kv, o), kv
}

// wantLoad loads key and checks its value (or, for want "", that it does
// not exist) and how many reads reached the store so far.
func wantLoad(t *testing.T, s *certs.Storage, kv *countingKV, key, want string, reads int64) {
	t.Helper()
	v, err := s.Load(context.Background(), key)
	switch {
	case want == "" && (!errors.Is(err, fs.ErrNotExist) || !errors.Is(err, store.ErrNotFound)):
		t.Errorf("Load(%s) = %q, %v; want fs.ErrNotExist and store.ErrNotFound", key, v, err)
	case want != "" && (err != nil || string(v) != want):
		t.Errorf("Load(%s) = %q, %v; want %q", key, v, err, want)
	}
	if got := kv.reads(); got != reads {
		t.Errorf("after Load(%s): %d reads reached the store, want %d", key, got, reads)
	}
}

// A certificate's key, certificate, metadata and OCSP staple are read from
// the store at once; each is answered once, so the next load reads again.
func TestPrefetchOneReadPerCertificate(t *testing.T) {
	s, kv := newCounted(t)
	ctx := context.Background()
	putSite(t, kv.DB, "ca", "a.example", "v1")
	if err := kv.DB.PutKey(ctx, "ocsp/a.example-1f2e", []byte("staple")); err != nil {
		t.Fatal(err)
	}
	key, crt, meta := siteKeys("ca", "a.example")

	wantLoad(t, s, kv, key, "v1 "+key, 1)
	wantLoad(t, s, kv, crt, "v1 "+crt, 1)
	wantLoad(t, s, kv, meta, "v1 "+meta, 1)
	wantLoad(t, s, kv, "ocsp/a.example-1f2e", "staple", 1)
	wantLoad(t, s, kv, "ocsp/a.example-9999", "", 1) // a staple that is not there
	wantLoad(t, s, kv, "certificates/ca/a.example/other", "", 1)

	// The next load of the certificate reads it again, and sees what
	// another node wrote meanwhile.
	putSite(t, kv.DB, "ca", "a.example", "v2")
	wantLoad(t, s, kv, key, "v2 "+key, 2)
	wantLoad(t, s, kv, crt, "v2 "+crt, 2)
	wantLoad(t, s, kv, crt, "v2 "+crt, 3) // answered already: from the store

	// A certificate not in the store: absent, from one read.
	k, c, _ := siteKeys("ca", "missing.example")
	wantLoad(t, s, kv, k, "", 4)
	wantLoad(t, s, kv, c, "", 4)

	// Keys of no certificate are read alone.
	if err := s.Store(ctx, "acme/ca/users/me.json", []byte("me")); err != nil {
		t.Fatal(err)
	}
	wantLoad(t, s, kv, "acme/ca/users/me.json", "me", 5)
	wantLoad(t, s, kv, "acme/ca/users/me.json", "me", 6)
}

// Writes and deletes through the Storage are never hidden by a read kept
// from before them.
func TestPrefetchWritesInvalidate(t *testing.T) {
	s, kv := newCounted(t)
	ctx := context.Background()
	putSite(t, kv.DB, "ca", "a.example", "v1")
	putSite(t, kv.DB, "ca", "b.example", "v1")
	key, crt, meta := siteKeys("ca", "a.example")
	bkey, bcrt, _ := siteKeys("ca", "b.example")

	wantLoad(t, s, kv, key, "v1 "+key, 1)
	wantLoad(t, s, kv, bkey, "v1 "+bkey, 2)
	if err := s.Store(ctx, crt, []byte("new crt")); err != nil {
		t.Fatal(err)
	}
	wantLoad(t, s, kv, crt, "new crt", 3)   // a new read of a.example,
	wantLoad(t, s, kv, key, "v1 "+key, 3)   // which answers the rest
	wantLoad(t, s, kv, bcrt, "v1 "+bcrt, 3) // another certificate's read is kept

	if err := s.Delete(ctx, meta); err != nil {
		t.Fatal(err)
	}
	wantLoad(t, s, kv, meta, "", 4)
	if err := s.Delete(ctx, "certificates/ca/a.example"); err != nil { // the whole folder
		t.Fatal(err)
	}
	wantLoad(t, s, kv, crt, "", 5)
	wantLoad(t, s, kv, key, "", 5)

	// A staple stored after a read is seen.
	if err := s.Store(ctx, "ocsp/b.example-77", []byte("staple")); err != nil {
		t.Fatal(err)
	}
	wantLoad(t, s, kv, "ocsp/b.example-77", "staple", 6)
}

// A write that ends while a read is on its way keeps that read from being
// kept: the read may be older than the write.
func TestPrefetchWriteDuringRead(t *testing.T) {
	s, kv := newCounted(t)
	ctx := context.Background()
	putSite(t, kv.DB, "ca", "a.example", "v1")
	key, crt, _ := siteKeys("ca", "a.example")
	kv.hold, kv.read = make(chan struct{}), make(chan struct{})

	done := make(chan error)
	go func() {
		_, err := s.Load(ctx, key)
		done <- err
	}()
	<-kv.read // the read has the old certificate
	if err := s.Store(ctx, crt, []byte("new crt")); err != nil {
		t.Fatal(err)
	}
	close(kv.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	kv.hold = nil
	wantLoad(t, s, kv, crt, "new crt", 2)
}

// Taking a lock drops every read kept: what its previous holder wrote on
// another node is seen after it.
func TestPrefetchLockInvalidates(t *testing.T) {
	s, kv := newCounted(t)
	ctx := context.Background()
	putSite(t, kv.DB, "ca", "a.example", "v1")
	key, crt, _ := siteKeys("ca", "a.example")

	wantLoad(t, s, kv, key, "v1 "+key, 1)
	putSite(t, kv.DB, "ca", "a.example", "v2") // another node, without our lock
	if ok, err := s.TryLock(ctx, "issue_cert_a.example"); err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	defer s.Unlock(ctx, "issue_cert_a.example")
	wantLoad(t, s, kv, crt, "v2 "+crt, 2)
}

// A read is kept for PrefetchTTL at most.
func TestPrefetchTTL(t *testing.T) {
	s, kv := newCounted(t, certs.StorageOptions{PrefetchTTL: 2 * time.Second})
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	certs.SetPrefetchClock(s, func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	})
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	putSite(t, kv.DB, "ca", "a.example", "v1")
	key, crt, meta := siteKeys("ca", "a.example")

	wantLoad(t, s, kv, key, "v1 "+key, 1)
	advance(1999 * time.Millisecond)
	wantLoad(t, s, kv, crt, "v1 "+crt, 1)
	putSite(t, kv.DB, "ca", "a.example", "v2") // another node
	advance(time.Millisecond)
	wantLoad(t, s, kv, meta, "v2 "+meta, 2)
	if n := certs.PrefetchSize(s); n != 1 {
		t.Errorf("%d reads kept, want 1 (the new one)", n)
	}
}

// At most PrefetchReads certificates' reads are kept; the oldest go first.
func TestPrefetchBound(t *testing.T) {
	s, kv := newCounted(t, certs.StorageOptions{PrefetchReads: 2})
	names := []string{"a.example", "b.example", "c.example"}
	for _, n := range names {
		putSite(t, kv.DB, "ca", n, "v1")
	}
	for i, n := range names {
		key, _, _ := siteKeys("ca", n)
		wantLoad(t, s, kv, key, "v1 "+key, int64(i+1))
		if got, want := certs.PrefetchSize(s), min(i+1, 2); got != want {
			t.Errorf("after %d certificates: %d reads kept, want %d", i+1, got, want)
		}
	}
	_, crt, _ := siteKeys("ca", "c.example")
	wantLoad(t, s, kv, crt, "v1 "+crt, 3)
	_, crt, _ = siteKeys("ca", "a.example")
	wantLoad(t, s, kv, crt, "v1 "+crt, 4) // dropped
}

// With several issuers, one read covers the certificate's folder under each
// issuer seen so far.
func TestPrefetchIssuers(t *testing.T) {
	s, kv := newCounted(t)
	putSite(t, kv.DB, "ca2", "a.example", "v1")
	key1, _, _ := siteKeys("ca1", "a.example")
	key2, crt2, meta2 := siteKeys("ca2", "a.example")

	wantLoad(t, s, kv, key1, "", 1)
	wantLoad(t, s, kv, key2, "v1 "+key2, 2) // ca2 is new
	wantLoad(t, s, kv, crt2, "v1 "+crt2, 2)
	wantLoad(t, s, kv, meta2, "v1 "+meta2, 2)

	// Both issuers are known: a certificate costs one read.
	putSite(t, kv.DB, "ca2", "b.example", "v1")
	key1, _, _ = siteKeys("ca1", "b.example")
	key2, crt2, meta2 = siteKeys("ca2", "b.example")
	wantLoad(t, s, kv, key1, "", 3)
	wantLoad(t, s, kv, key2, "v1 "+key2, 3)
	wantLoad(t, s, kv, crt2, "v1 "+crt2, 3)
	wantLoad(t, s, kv, meta2, "v1 "+meta2, 3)
}

// A folder with more keys than a read keeps is read key by key.
func TestPrefetchTooManyKeys(t *testing.T) {
	s, kv := newCounted(t)
	ctx := context.Background()
	var keys []string
	for i := range 70 {
		k := fmt.Sprintf("certificates/ca/a.example/%02d", i)
		keys = append(keys, k)
		if err := kv.DB.PutKey(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	wantLoad(t, s, kv, keys[0], keys[0], 2) // a prefix read, then the key alone
	wantLoad(t, s, kv, keys[1], keys[1], 4)
	if n := certs.PrefetchSize(s); n != 0 {
		t.Errorf("%d reads kept, want none", n)
	}
}

// With a negative PrefetchTTL, or a KV that cannot read prefixes, every
// Load reads its key alone.
func TestPrefetchOff(t *testing.T) {
	s, kv := newCounted(t, certs.StorageOptions{PrefetchTTL: -1})
	putSite(t, kv.DB, "ca", "a.example", "v1")
	key, crt, _ := siteKeys("ca", "a.example")
	wantLoad(t, s, kv, key, "v1 "+key, 1)
	wantLoad(t, s, kv, crt, "v1 "+crt, 2)
	if kv.prefixReads.Load() != 0 {
		t.Error("prefix reads with the prefetch off")
	}
}

// Every goroutine reads what it wrote last, whatever the others do.
func TestPrefetchConcurrent(t *testing.T) {
	s, _ := newCounted(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			name := fmt.Sprintf("n%d.example", g%4) // two goroutines per name, each its own key
			for i := range 50 {
				k := fmt.Sprintf("certificates/ca/%s/%d", name, g)
				v := fmt.Sprintf("%d-%d", g, i)
				if err := s.Store(ctx, k, []byte(v)); err != nil {
					t.Error(err)
					return
				}
				key, _, _ := siteKeys("ca", name)
				s.Load(ctx, key) // a read of the folder, kept
				got, err := s.Load(ctx, k)
				if err != nil || string(got) != v {
					t.Errorf("Load(%s) = %q, %v; want %q", k, got, err, v)
					return
				}
			}
		})
	}
	wg.Wait()
}
