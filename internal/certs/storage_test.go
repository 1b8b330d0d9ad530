package certs_test

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fastLocks are short leases, so that the tests of expiry take well under a second.
// fastLocks are short leases for tests. A renewal gets LockRefresh to
// answer; with a 300 ms lease and 50 ms renewals, a loaded CI machine
// (-race, every package at once) let a lease run out while held.
var fastLocks = certs.StorageOptions{LockTTL: time.Second, LockRefresh: 100 * time.Millisecond, LockPoll: 20 * time.Millisecond}

func TestStorageKeys(t *testing.T) {
	ctx := testCtx(t)
	s := certs.NewStorage(openStore(t), certs.StorageOptions{})

	_, err := s.Load(ctx, "certificates/ca/a.example/a.example.crt")
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	if s.Exists(ctx, "certificates") {
		t.Error("Exists on an empty storage")
	}
	if _, err := s.Stat(ctx, "certificates"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "certificates", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List of a missing directory: %v, want fs.ErrNotExist", err)
	}

	keys := []string{
		"certificates/ca/a.example/a.example.crt",
		"certificates/ca/a.example/a.example.key",
		"certificates/ca/b.example/b.example.crt",
		"acme/ca/users/me/me.json",
	}
	for _, k := range keys {
		if err := s.Store(ctx, k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := s.Load(ctx, keys[0])
	if err != nil || string(v) != "value of "+keys[0] {
		t.Fatalf("Load = %q, %v", v, err)
	}
	for _, k := range []string{keys[0], "certificates", "certificates/ca/a.example"} {
		if !s.Exists(ctx, k) {
			t.Errorf("Exists(%q) = false", k)
		}
	}

	info, err := s.Stat(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != keys[0] || !info.IsTerminal || info.Size != int64(len("value of "+keys[0])) || info.Modified.IsZero() {
		t.Errorf("Stat(file) = %+v", info)
	}
	info, err = s.Stat(ctx, "certificates/ca")
	if err != nil {
		t.Fatal(err)
	}
	if info.IsTerminal {
		t.Errorf("Stat(directory) = %+v, want IsTerminal false", info)
	}

	list, err := s.List(ctx, "certificates/ca", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"certificates/ca/a.example", "certificates/ca/b.example"}; !slices.Equal(list, want) {
		t.Errorf("List(non-recursive) = %q, want %q", list, want)
	}
	list, err = s.List(ctx, "certificates", true)
	if err != nil {
		t.Fatal(err)
	}
	if want := keys[:3]; !slices.Equal(list, want) {
		t.Errorf("List(recursive) = %q, want %q", list, want)
	}

	if err := s.Delete(ctx, "certificates/ca/a.example"); err != nil {
		t.Fatal(err)
	}
	if s.Exists(ctx, keys[0]) || s.Exists(ctx, keys[1]) || !s.Exists(ctx, keys[2]) {
		t.Error("Delete of a directory did not delete exactly the keys under it")
	}
	if err := s.Delete(ctx, "certificates/ca/a.example"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
}

// leaseKV is an in-memory KV for the lock tests: its leases run out by
// time.Now, so under testing/synctest they do on the bubble's fake clock,
// to the nanosecond, however loaded the machine. It follows the store's
// lease rules (store.DB.TryLock and Unlock), which storetest checks against
// SQLite and PostgreSQL with the database's clock. Locks use no keys: the
// key methods are the embedded nil KV's.
type leaseKV struct {
	certs.KV
	mu     sync.Mutex
	leases map[string]leaseRow
}

type leaseRow struct {
	owner   string
	expires time.Time
}

func newLeaseKV() *leaseKV { return &leaseKV{leases: map[string]leaseRow{}} }

func (k *leaseKV) TryLock(_ context.Context, name, owner string, ttl time.Duration) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := time.Now()
	if l, ok := k.leases[name]; ok && l.owner != owner && now.Before(l.expires) {
		return false, nil
	}
	k.leases[name] = leaseRow{owner: owner, expires: now.Add(ttl)}
	return true, nil
}

func (k *leaseKV) Unlock(_ context.Context, name, owner string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if l, ok := k.leases[name]; !ok || l.owner != owner {
		return fmt.Errorf("lock %q is not held by %s: %w", name, owner, store.ErrNotFound)
	}
	delete(k.leases, name)
	return nil
}

// returned reports whether a result is in c, without waiting.
func returned(c <-chan error) (error, bool) {
	select {
	case err := <-c:
		return err, true
	default:
		return nil, false
	}
}

func TestStorageLockContention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		kv := newLeaseKV()
		a, b := certs.NewStorage(kv, fastLocks), certs.NewStorage(kv, fastLocks)

		if err := a.Lock(ctx, "issue_cert_a.example"); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.TryLock(ctx, "issue_cert_a.example"); ok || err != nil {
			t.Fatalf("TryLock while another holds it = %v, %v; want false", ok, err)
		}
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err := b.Lock(short, "issue_cert_a.example")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock while another holds it: %v, want context.DeadlineExceeded", err)
		}
		// Other names are free.
		if err := b.Lock(ctx, "issue_cert_b.example"); err != nil {
			t.Fatal(err)
		}

		got := make(chan error, 1)
		go func() { got <- b.Lock(ctx, "issue_cert_a.example") }()
		// A minute of renewals by a and of tries by b: b keeps waiting.
		time.Sleep(time.Minute)
		synctest.Wait()
		if err, ok := returned(got); ok {
			t.Fatalf("Lock returned (%v) while another holds the lock", err)
		}
		if err := a.Unlock(ctx, "issue_cert_a.example"); err != nil {
			t.Fatal(err)
		}
		// b (another node) learns it at its next try: its waits have grown
		// to LockPollMax (1 s), with up to a quarter more of jitter.
		unlocked := time.Now()
		if err := <-got; err != nil {
			t.Fatalf("Lock after Unlock: %v", err)
		}
		if d := time.Since(unlocked); d > 1250*time.Millisecond {
			t.Errorf("Lock returned %v after the Unlock, want within one poll (1.25 s)", d)
		}
		if ok, _ := a.TryLock(ctx, "issue_cert_a.example"); ok {
			t.Error("a took the lock that b holds")
		}
		for _, name := range []string{"issue_cert_a.example", "issue_cert_b.example"} {
			if err := b.Unlock(ctx, name); err != nil {
				t.Error(err)
			}
		}
		if err := b.Unlock(ctx, "issue_cert_a.example"); err == nil {
			t.Error("Unlock of a lock not held succeeded")
		}
	})
}

// Many goroutines on two nodes, and several in one node: never two inside at once.
func TestStorageLockMutualExclusion(t *testing.T) {
	ctx := testCtx(t)
	db := openStore(t)
	nodes := []*certs.Storage{certs.NewStorage(db, fastLocks), certs.NewStorage(db, fastLocks)}
	var (
		inside, entered atomic.Int32
		wg              sync.WaitGroup
	)
	for i := range 8 {
		wg.Go(func() {
			s := nodes[i%2]
			for range 3 {
				if err := s.Lock(ctx, "ca"); err != nil {
					t.Error(err)
					return
				}
				if n := inside.Add(1); n != 1 {
					t.Errorf("%d holders inside the lock", n)
				}
				entered.Add(1)
				time.Sleep(5 * time.Millisecond)
				inside.Add(-1)
				if err := s.Unlock(ctx, "ca"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := entered.Load(); n != 24 {
		t.Errorf("%d entries, want 24", n)
	}
}

// A held lock outlives its lease because it is renewed.
func TestStorageLockRenewed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		kv := newLeaseKV()
		a, b := certs.NewStorage(kv, fastLocks), certs.NewStorage(kv, fastLocks)
		if err := a.Lock(ctx, "long"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * fastLocks.LockTTL)
		if ok, err := b.TryLock(ctx, "long"); ok || err != nil {
			t.Fatalf("TryLock ten leases later = %v, %v; want false (renewed)", ok, err)
		}
		if err := a.Unlock(ctx, "long"); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.TryLock(ctx, "long"); !ok || err != nil {
			t.Fatalf("TryLock after Unlock = %v, %v; want true", ok, err)
		}
		// Unlock stopped a's renewal: nothing takes the lock back from b,
		// whose own renewals keep it.
		time.Sleep(10 * fastLocks.LockTTL)
		if ok, _ := a.TryLock(ctx, "long"); ok {
			t.Error("a took back the lock after Unlock")
		}
		if err := b.Unlock(ctx, "long"); err != nil {
			t.Fatal(err)
		}
	})
}

// pausable is a KV whose lock renewals fail while paused, as for a node cut off
// from the database.
type pausable struct {
	certs.KV
	paused atomic.Bool
}

func (p *pausable) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if p.paused.Load() {
		return false, store.ErrUnavailable
	}
	return p.KV.TryLock(ctx, name, owner, ttl)
}

// When a holder stops renewing (it died or lost the database), another node
// takes the lock once the lease expires, and the old holder's Unlock does not
// release the new holder's lock.
func TestStorageLockExpiryTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		kv := newLeaseKV()
		cut := &pausable{KV: kv}
		a, b, c := certs.NewStorage(cut, fastLocks), certs.NewStorage(kv, fastLocks), certs.NewStorage(kv, fastLocks)

		if err := a.Lock(ctx, "ca"); err != nil {
			t.Fatal(err)
		}
		taken := time.Now()
		time.Sleep(fastLocks.LockRefresh / 2) // between two renewals
		cut.paused.Store(true)
		lastRenewal := taken
		if err := b.Lock(ctx, "ca"); err != nil {
			t.Fatalf("Lock after the holder stopped renewing: %v", err)
		}
		// a took the lease at taken and could renew it no more (renewals
		// come every LockRefresh, the first one after the pause); b gets it
		// once that lease ran out, and within one poll after (LockPollMax,
		// 1 s by default, and a quarter more of jitter).
		if d := time.Since(lastRenewal); d < fastLocks.LockTTL || d > fastLocks.LockTTL+1250*time.Millisecond {
			t.Errorf("lock taken over %v after the last renewal, want from the lease's end (%v) to one poll later", d, fastLocks.LockTTL)
		}
		cut.paused.Store(false)
		if err := a.Unlock(ctx, "ca"); err != nil {
			t.Errorf("Unlock of a lost lease: %v, want nil", err)
		}
		if ok, _ := c.TryLock(ctx, "ca"); ok {
			t.Fatal("the old holder's Unlock released the new holder's lock")
		}
		if err := b.Unlock(ctx, "ca"); err != nil {
			t.Fatal(err)
		}

		// A holder that died outright: a lease row nobody renews.
		if ok, err := kv.TryLock(ctx, "certs/dead", "dead-node", fastLocks.LockTTL); !ok || err != nil {
			t.Fatal(ok, err)
		}
		start := time.Now()
		if err := c.Lock(ctx, "dead"); err != nil {
			t.Fatalf("Lock of a dead holder's lock: %v", err)
		}
		if d := time.Since(start); d < fastLocks.LockTTL {
			t.Errorf("a dead holder's lock taken after %v, before its lease (%v) ran out", d, fastLocks.LockTTL)
		}
		if err := c.Unlock(ctx, "dead"); err != nil {
			t.Fatal(err)
		}
	})
}

// An issuance context ends, with ErrLeaseLost, once renewals have failed
// until the lease would run out, and not while renewals succeed; one for a
// name whose lock is not held here lives as long as its parent.
func TestIssuanceContextEndsWhenLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		cut := &pausable{KV: newLeaseKV()}
		s := certs.NewStorage(cut, fastLocks)
		if err := s.Lock(ctx, "issue_cert_a.example"); err != nil {
			t.Fatal(err)
		}
		held, cancelHeld := s.IssuanceContext(ctx, []string{"a.example"})
		defer cancelHeld()
		free, cancelFree := s.IssuanceContext(ctx, []string{"b.example"})
		defer cancelFree()

		time.Sleep(10 * fastLocks.LockTTL)
		if err := held.Err(); err != nil {
			t.Fatalf("issuance context ended while its lease was renewed: %v", context.Cause(held))
		}
		lastRenewal := time.Now() // renewals tick on whole LockRefresh periods
		time.Sleep(fastLocks.LockRefresh / 2)
		cut.paused.Store(true)
		<-held.Done()
		// It ends at the first failed renewal after which the lease would
		// run out before the next one could succeed.
		if d := time.Since(lastRenewal); d < fastLocks.LockTTL-fastLocks.LockRefresh || d > fastLocks.LockTTL {
			t.Errorf("issuance context ended %v after the last renewal, want within the last renewal period of the lease (%v)", d, fastLocks.LockTTL)
		}
		if cause := context.Cause(held); !errors.Is(cause, certs.ErrLeaseLost) || !errors.Is(cause, store.ErrUnavailable) {
			t.Errorf("cause %v, want ErrLeaseLost wrapping the store's error", cause)
		}
		if err := free.Err(); err != nil {
			t.Errorf("context of a name without a held lock ended: %v", context.Cause(free))
		}
		cut.paused.Store(false)
		if err := s.Unlock(ctx, "issue_cert_a.example"); err != nil {
			t.Fatal(err)
		}
	})
}

// One failed renewal while the lease still has time left stops nothing, and
// a lease lost and then renewed again (the lock was still free) serves the
// next issuance: certmagic keeps the lock through its retries, and an old
// loss must not stop every one of them.
func TestIssuanceContextAfterARenewalFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		cut := &pausable{KV: newLeaseKV()}
		s := certs.NewStorage(cut, fastLocks)
		if err := s.Lock(ctx, "issue_cert_a.example"); err != nil {
			t.Fatal(err)
		}
		held, cancelHeld := s.IssuanceContext(ctx, []string{"a.example"})
		defer cancelHeld()
		// Renewals tick on whole LockRefresh periods from the Lock; the
		// store comes and goes half-way between two of them.
		time.Sleep(fastLocks.LockRefresh / 2)

		// A blip: renewals fail for half a lease.
		cut.paused.Store(true)
		time.Sleep(fastLocks.LockTTL / 2)
		cut.paused.Store(false)
		time.Sleep(10 * fastLocks.LockTTL)
		if err := held.Err(); err != nil {
			t.Fatalf("a renewal blip inside the lease stopped the issuance: %v", context.Cause(held))
		}

		// A real loss: the store is gone past the lease.
		cut.paused.Store(true)
		time.Sleep(2 * fastLocks.LockTTL)
		if held.Err() == nil {
			t.Fatal("issuance context alive after its lease ran out unrenewed")
		}
		cut.paused.Store(false)
		// Nobody took the lock meanwhile, so the next renewal holds it
		// again, and a new issuance under it is not stopped by the old loss.
		time.Sleep(fastLocks.LockRefresh)
		next, cancelNext := s.IssuanceContext(ctx, []string{"a.example"})
		defer cancelNext()
		time.Sleep(10 * fastLocks.LockTTL)
		if err := next.Err(); err != nil {
			t.Fatalf("an issuance after the lease was renewed again ended: %v", context.Cause(next))
		}
		if ok, _ := certs.NewStorage(cut, fastLocks).TryLock(ctx, "issue_cert_a.example"); ok {
			t.Fatal("another holder took the lock this Storage renewed")
		}
		if err := s.Unlock(ctx, "issue_cert_a.example"); err != nil {
			t.Fatal(err)
		}
	})
}

// leaseWatcher is an Issuer that cuts the store off once it is called
// (holding certmagic's lock), then waits for its issuance context to end.
type leaseWatcher struct {
	s     *certs.Storage
	cut   *pausable
	cause chan error
}

func (w *leaseWatcher) IssuerKey() string { return "lease-watcher" }

func (w *leaseWatcher) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	ictx, cancel := w.s.IssuanceContext(ctx, csr.DNSNames)
	defer cancel()
	w.cut.paused.Store(true)
	select {
	case <-ictx.Done():
		w.cause <- context.Cause(ictx)
		return nil, context.Cause(ictx)
	case <-time.After(10 * time.Second):
		w.cause <- nil
		return nil, errors.New("still issuing after the lease was lost")
	}
}

// Through certmagic: an issuance whose lock's lease cannot be renewed is
// stopped, and certmagic stores nothing. This pins the name of the lock
// certmagic holds while it obtains a certificate.
func TestIssuanceStopsWhenLeaseLost(t *testing.T) {
	ctx := testCtx(t)
	cut := &pausable{KV: openStore(t)}
	s := certs.NewStorage(cut, fastLocks)
	w := &leaseWatcher{s: s, cut: cut, cause: make(chan error, 1)}
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zap.NewNop(),
	})
	t.Cleanup(cache.Stop)
	magic = certmagic.New(cache, certmagic.Config{Storage: s, Issuers: []certmagic.Issuer{w}, Logger: zap.NewNop()})

	start := time.Now()
	if err := magic.ObtainCertSync(ctx, "a.example"); err == nil {
		t.Fatal("ObtainCertSync succeeded")
	}
	cut.paused.Store(false)
	if cause := <-w.cause; !errors.Is(cause, certs.ErrLeaseLost) {
		t.Fatalf("issuance ended with %v after %v, want ErrLeaseLost", cause, time.Since(start))
	}
	if s.Exists(ctx, "certificates") {
		t.Error("a certificate was stored")
	}
}

// BenchmarkLoadFromStore loads a certificate from storage into a certmagic
// cache, as a handshake for a served name that is not in memory does
// (one-read: in a certificate load, so its keys come in one read), and as
// certmagic's own loads do (key-by-key: a read per key).
func BenchmarkLoadFromStore(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) *store.DB
	}{
		{"sqlite", func(b *testing.B) *store.DB { return openStoreDSN(b, "sqlite:"+filepath.Join(b.TempDir(), "spine.db")) }},
		{"postgres", func(b *testing.B) *store.DB { return openStoreDSN(b, storetest.PostgresDSN(b)) }},
	}
	sealing, _, err := secrets.Parse(mustGenerate(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range stores {
		for _, ring := range []struct {
			name string
			k    *secrets.Keyring
		}{{"plain", nil}, {"sealed", sealing}} {
			b.Run(s.name+"/"+ring.name, func(b *testing.B) { benchmarkLoad(b, s.open, ring.k) })
		}
	}
}

func mustGenerate(b *testing.B) []byte {
	content, err := secrets.Generate()
	if err != nil {
		b.Fatal(err)
	}
	return content
}

// benchmarkLoad is BenchmarkLoadFromStore on one store, its keys sealed
// with k (nil: in the clear, as before sealing).
func benchmarkLoad(b *testing.B, open func(b *testing.B) *store.DB, k *secrets.Keyring) {
	ctx := context.Background()
	db := open(b)
	if k != nil {
		db.SetKeyring(k)
	}
	kv := &countingKV{DB: db}
	st := certs.NewStorage(kv, certs.StorageOptions{})
	c, err := ca.Load(ctx, st, ca.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zap.NewNop(),
	})
	b.Cleanup(cache.Stop)
	magic = certmagic.New(cache, certmagic.Config{Storage: st, Issuers: []certmagic.Issuer{c}, Logger: zap.NewNop(),
		OCSP: certmagic.OCSPConfig{DisableStapling: true}}) // as a Manager's with the internal CA only (internalOnly)
	names := make([]string, 32)
	for i := range names {
		names[i] = fmt.Sprintf("s%02d.localhost", i)
		if err := magic.ObtainCertSync(ctx, names[i]); err != nil {
			b.Fatal(err)
		}
	}
	for _, mode := range []struct {
		name string
		ctx  func() context.Context
	}{
		{"one-read", func() context.Context { return certs.WithCertificateLoad(ctx) }},
		{"key-by-key", func() context.Context { return ctx }},
	} {
		b.Run(mode.name, func(b *testing.B) {
			before := kv.reads()
			i := 0
			for b.Loop() {
				if _, err := magic.CacheManagedCertificate(mode.ctx(), names[i%len(names)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(kv.reads()-before)/float64(i), "reads/op")
		})
	}
}

func openStoreDSN(tb testing.TB, dsn string) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Two nodes over one store (one SQLite file, or one PostgreSQL schema),
// each with its own Storage: whatever a node read before, its next Load of
// a key returns what the other node's last Store of it wrote, as
// certmagic's Storage contract asks, for the keys of certificates and
// their staples as for every other key.
func TestStorageLoadReturnsLastStoreAcrossNodes(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			ctx := testCtx(t)
			dsn := "sqlite:" + filepath.Join(t.TempDir(), "spine.db")
			if kind == "postgres" {
				dsn = storetest.PostgresDSN(t)
			}
			a := certs.NewStorage(openStoreDSN(t, dsn), certs.StorageOptions{})
			b := certs.NewStorage(openStoreDSN(t, dsn), certs.StorageOptions{})
			key, crt, meta := siteKeys("ca", "a.example")
			keys := []string{key, crt, meta, "ocsp/a.example-1f2e", "acme/spine-challenges/a.example.json"}
			put := func(version string) {
				t.Helper()
				for _, k := range keys {
					if err := a.Store(ctx, k, []byte(version+" "+k)); err != nil {
						t.Fatal(err)
					}
				}
			}
			put("v1")
			// b loads the certificate as certmagic does, key by key.
			for _, k := range keys {
				if v, err := b.Load(ctx, k); err != nil || string(v) != "v1 "+k {
					t.Fatalf("Load(%s) = %q, %v; want v1", k, v, err)
				}
			}
			for i, k := range keys {
				version := fmt.Sprintf("v%d", i+2)
				if _, err := b.Load(ctx, key); err != nil { // as a new load of the certificate begins
					t.Fatal(err)
				}
				put(version)
				if v, err := b.Load(ctx, k); err != nil || string(v) != version+" "+k {
					t.Errorf("Load(%s) after the other node stored %s: %q, %v", k, version, v, err)
				}
			}
		})
	}
}
