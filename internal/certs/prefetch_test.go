package certs_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"

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

func newCounted(t *testing.T) (*certs.Storage, *countingKV) {
	kv := &countingKV{DB: openStore(t)}
	return certs.NewStorage(kv, certs.StorageOptions{}), kv
}

// wantLoad loads key under ctx and checks its value (or, for want "",
// that it does not exist) and how many reads reached the store so far.
func wantLoad(t *testing.T, ctx context.Context, s *certs.Storage, kv *countingKV, key, want string, reads int64) {
	t.Helper()
	v, err := s.Load(ctx, key)
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

// Within a certificate load, a certificate's key, certificate, metadata
// and OCSP staple are read from the store at once; the next load reads
// them again.
func TestPrefetchOneReadPerLoad(t *testing.T) {
	s, kv := newCounted(t)
	putSite(t, kv.DB, "ca", "a.example", "v1")
	if err := kv.DB.PutKey(context.Background(), "ocsp/a.example-1f2e", []byte("staple")); err != nil {
		t.Fatal(err)
	}
	key, crt, meta := siteKeys("ca", "a.example")

	load := certs.WithCertificateLoad(context.Background())
	wantLoad(t, load, s, kv, key, "v1 "+key, 1)
	wantLoad(t, load, s, kv, crt, "v1 "+crt, 1)
	wantLoad(t, load, s, kv, meta, "v1 "+meta, 1)
	wantLoad(t, load, s, kv, crt, "v1 "+crt, 1) // again: the same read
	wantLoad(t, load, s, kv, "ocsp/a.example-1f2e", "staple", 1)
	wantLoad(t, load, s, kv, "ocsp/a.example-9999", "", 1) // a staple that is not there
	wantLoad(t, load, s, kv, "certificates/ca/a.example/other", "", 1)

	// The next load reads the store again, and sees what another node
	// wrote meanwhile.
	putSite(t, kv.DB, "ca", "a.example", "v2")
	load = certs.WithCertificateLoad(context.Background())
	wantLoad(t, load, s, kv, key, "v2 "+key, 2)
	wantLoad(t, load, s, kv, crt, "v2 "+crt, 2)

	// A certificate not in the store: absent, from one read.
	k, c, _ := siteKeys("ca", "missing.example")
	load = certs.WithCertificateLoad(context.Background())
	wantLoad(t, load, s, kv, k, "", 3)
	wantLoad(t, load, s, kv, c, "", 3)

	// Keys of no certificate are read alone, in a load or not; a staple
	// asked for before any key of its certificate too.
	if err := s.Store(context.Background(), "acme/ca/users/me.json", []byte("me")); err != nil {
		t.Fatal(err)
	}
	wantLoad(t, load, s, kv, "acme/ca/users/me.json", "me", 4)
	wantLoad(t, load, s, kv, "acme/ca/users/me.json", "me", 5)
	wantLoad(t, certs.WithCertificateLoad(context.Background()), s, kv, "ocsp/a.example-1f2e", "staple", 6)
}

// Outside a certificate load nothing is kept: every Load reads the store.
func TestPrefetchOnlyInALoad(t *testing.T) {
	s, kv := newCounted(t)
	putSite(t, kv.DB, "ca", "a.example", "v1")
	key, crt, _ := siteKeys("ca", "a.example")
	ctx := context.Background()
	wantLoad(t, ctx, s, kv, key, "v1 "+key, 1)
	wantLoad(t, ctx, s, kv, crt, "v1 "+crt, 2)
	wantLoad(t, ctx, s, kv, crt, "v1 "+crt, 3)
	if kv.prefixReads.Load() != 0 {
		t.Error("prefix reads outside a certificate load")
	}
}

// A renewal that another node stores while a load is under way is seen by
// all of the load or by none of it: the key and certificate a load returns
// belong together.
func TestPrefetchLoadIsOneSnapshot(t *testing.T) {
	s, kv := newCounted(t)
	putSite(t, kv.DB, "ca", "a.example", "v1")
	key, crt, meta := siteKeys("ca", "a.example")

	load := certs.WithCertificateLoad(context.Background())
	wantLoad(t, load, s, kv, key, "v1 "+key, 1)
	putSite(t, kv.DB, "ca", "a.example", "v2") // another node renews
	wantLoad(t, load, s, kv, crt, "v1 "+crt, 1)
	wantLoad(t, load, s, kv, meta, "v1 "+meta, 1)

	// Outside a load, the certificate is the renewed one: read key by key,
	// the load would have paired it with the old key.
	wantLoad(t, context.Background(), s, kv, crt, "v2 "+crt, 2)
}

// Writes and deletes made under a load are seen by its later Loads; a
// failed write makes the next Load read the store again.
func TestPrefetchWritesInALoad(t *testing.T) {
	s, kv := newCounted(t)
	putSite(t, kv.DB, "ca", "a.example", "v1")
	key, crt, meta := siteKeys("ca", "a.example")

	load := certs.WithCertificateLoad(context.Background())
	wantLoad(t, load, s, kv, key, "v1 "+key, 1)
	if err := s.Store(load, crt, []byte("new crt")); err != nil {
		t.Fatal(err)
	}
	wantLoad(t, load, s, kv, crt, "new crt", 1)
	if err := s.Store(load, "ocsp/a.example-77", []byte("staple")); err != nil {
		t.Fatal(err)
	}
	wantLoad(t, load, s, kv, "ocsp/a.example-77", "staple", 1)
	if err := s.Delete(load, meta); err != nil {
		t.Fatal(err)
	}
	wantLoad(t, load, s, kv, meta, "", 1)
	if err := s.Delete(load, "certificates/ca/a.example"); err != nil { // the whole folder
		t.Fatal(err)
	}
	wantLoad(t, load, s, kv, key, "", 1)
	wantLoad(t, load, s, kv, crt, "", 1)

	// A write the store refuses (an invalid key) may or may not have
	// been done, as far as the load knows: it reads again.
	if err := s.Store(load, "certificates/ca/a.example/", []byte("x")); err == nil {
		t.Fatal("a key with a trailing slash was stored")
	}
	wantLoad(t, load, s, kv, key, "", 2)
}

// With several issuers, one read covers the certificate's folder under each
// issuer seen so far.
func TestPrefetchIssuers(t *testing.T) {
	s, kv := newCounted(t)
	putSite(t, kv.DB, "ca2", "a.example", "v1")
	key1, _, _ := siteKeys("ca1", "a.example")
	key2, crt2, meta2 := siteKeys("ca2", "a.example")

	load := certs.WithCertificateLoad(context.Background())
	wantLoad(t, load, s, kv, key1, "", 1)
	wantLoad(t, load, s, kv, key2, "v1 "+key2, 2) // ca2 is new
	wantLoad(t, load, s, kv, crt2, "v1 "+crt2, 2)
	wantLoad(t, load, s, kv, meta2, "v1 "+meta2, 2)

	// Both issuers are known: a certificate costs one read.
	putSite(t, kv.DB, "ca2", "b.example", "v1")
	key1, _, _ = siteKeys("ca1", "b.example")
	key2, crt2, meta2 = siteKeys("ca2", "b.example")
	load = certs.WithCertificateLoad(context.Background())
	wantLoad(t, load, s, kv, key1, "", 3)
	wantLoad(t, load, s, kv, key2, "v1 "+key2, 3)
	wantLoad(t, load, s, kv, crt2, "v1 "+crt2, 3)
	wantLoad(t, load, s, kv, meta2, "v1 "+meta2, 3)
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
	load := certs.WithCertificateLoad(ctx)
	wantLoad(t, load, s, kv, keys[0], keys[0], 2) // a prefix read, then the key alone
	wantLoad(t, load, s, kv, keys[1], keys[1], 4)
}

// A KV that cannot read prefixes has every Load read its key alone.
func TestPrefetchNeedsAPrefixReader(t *testing.T) {
	kv := &countingKV{DB: openStore(t)}
	s := certs.NewStorage(struct{ certs.KV }{kv}, certs.StorageOptions{}) // only the KV methods
	putSite(t, kv.DB, "ca", "a.example", "v1")
	key, crt, _ := siteKeys("ca", "a.example")
	load := certs.WithCertificateLoad(context.Background())
	wantLoad(t, load, s, kv, key, "v1 "+key, 1)
	wantLoad(t, load, s, kv, crt, "v1 "+crt, 2)
	if kv.prefixReads.Load() != 0 {
		t.Error("prefix reads through a KV without GetKeysWithPrefix")
	}
}

// Every goroutine's load sees what it wrote before the load began,
// whatever the others write.
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
				load := certs.WithCertificateLoad(ctx)
				key, _, _ := siteKeys("ca", name)
				s.Load(load, key) // the read of the folder
				got, err := s.Load(load, k)
				if err != nil || string(got) != v {
					t.Errorf("Load(%s) = %q, %v; want %q", k, got, err, v)
					return
				}
			}
		})
	}
	wg.Wait()
}
