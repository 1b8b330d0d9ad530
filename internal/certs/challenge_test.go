package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// testClock is a clock that moves only when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// openTwice opens one store twice, as two nodes of a fleet do: one SQLite
// file, or one PostgreSQL schema.
func openTwice(t *testing.T, kind string) (*store.DB, *store.DB) {
	t.Helper()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "spine.db")
	if kind == "postgres" {
		dsn = storetest.PostgresDSN(t)
	}
	var dbs [2]*store.DB
	for i := range dbs {
		db, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs[0], dbs[1]
}

// challengeNodes returns two managers over one store, each with a Storage
// of its own: a presents challenges, b answers them for names, with its
// challenge reads timed by the returned clock.
func challengeNodes(t *testing.T, kind string, names ...string) (a, b *Manager, clock *testClock) {
	t.Helper()
	ctx := context.Background()
	dbA, dbB := openTwice(t, kind)
	stA, stB := NewStorage(dbA, StorageOptions{}), NewStorage(dbB, StorageOptions{})
	c, err := ca.Load(ctx, stA, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []**Manager{&a, &b} {
		st := stA
		if m == &b {
			st = stB
		}
		*m, err = New(Config{Storage: st, Issuers: []certmagic.Issuer{c}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup((*m).Stop)
	}
	clock = &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b.challenges.now = clock.Now
	b.Sync(ctx, names)
	return a, b, clock
}

// httpChallenge sends m the validation request of an HTTP-01 challenge,
// as the CA would, and returns the status code the edge would answer and
// the body: 404 when m does not answer it.
func httpChallenge(m *Manager, host, token string) (int, string) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "http://"+host+"/.well-known/acme-challenge/"+token, nil)
	if !m.HandleHTTPChallenge(w, r) {
		return http.StatusNotFound, ""
	}
	return w.Code, w.Body.String()
}

// alpnChallenge makes the TLS-ALPN-01 validation handshake's certificate
// request to m, as the CA would.
func alpnChallenge(t *testing.T, m *Manager, host string) (*tls.Certificate, error) {
	h := hello(t, host)
	h.SupportedProtos = []string{acmez.ACMETLS1Protocol}
	return m.GetCertificate(h)
}

func challengeFor(typ, host, token string) acme.Challenge {
	return acme.Challenge{
		Type:             typ,
		Token:            token,
		KeyAuthorization: token + ".thumbprint",
		Identifier:       acme.Identifier{Type: "dns", Value: host},
	}
}

// A challenge one node stores is answered by another node at the CA's
// first request, even if that node looked the name's challenge up just
// before (when there was none, or another token), over a SQLite file and
// over PostgreSQL. The clock of b's challenge reads does not move, so any
// answer b remembered from before would still be fresh.
func TestCrossNodeChallengeAnsweredAtFirstRequest(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a, b, clock := challengeNodes(t, kind, "h1.example", "h2.example", "t1.example", "t2.example", "x.example")
			solverA := edgeSolver{a.challenges}
			present := func(chal acme.Challenge) {
				t.Helper()
				if err := solverA.Present(ctx, chal); err != nil {
					t.Fatal(err)
				}
			}
			cleanUp := func(chal acme.Challenge) {
				t.Helper()
				if err := solverA.CleanUp(ctx, chal); err != nil {
					t.Fatal(err)
				}
			}
			wantHTTP := func(what string, chal acme.Challenge) {
				t.Helper()
				code, body := httpChallenge(b, chal.Identifier.Value, chal.Token)
				if code != http.StatusOK || body != chal.KeyAuthorization {
					t.Errorf("HTTP-01 %s: %d %q, want 200 %q", what, code, body, chal.KeyAuthorization)
				}
			}
			wantALPN := func(what string, chal acme.Challenge) {
				t.Helper()
				cert, err := alpnChallenge(t, b, chal.Identifier.Value)
				if err != nil {
					t.Errorf("TLS-ALPN-01 %s: %v", what, err)
					return
				}
				want, err := acmez.TLSALPN01ChallengeCert(chal)
				if err != nil {
					t.Fatal(err)
				}
				if !sameExtension(leafOf(t, cert), leafOf(t, want)) {
					t.Errorf("TLS-ALPN-01 %s: the certificate answers another token than %s", what, chal.Token)
				}
			}

			// b is asked before a stored the challenge (a probe, or a
			// CA's request of an earlier order), then a stores it.
			if code, _ := httpChallenge(b, "h1.example", "tok1"); code != http.StatusNotFound {
				t.Fatalf("HTTP-01 before any challenge: %d, want 404", code)
			}
			chal1 := challengeFor(acme.ChallengeTypeHTTP01, "h1.example", "tok1")
			present(chal1)
			wantHTTP("stored by another node just after a miss", chal1)

			if _, err := alpnChallenge(t, b, "t1.example"); err == nil {
				t.Fatal("TLS-ALPN-01 answered before any challenge")
			}
			alpn1 := challengeFor(acme.ChallengeTypeTLSALPN01, "t1.example", "tok3")
			present(alpn1)
			wantALPN("stored by another node just after a miss", alpn1)

			// The next order's challenge replaces one b just answered: b
			// answers the new token at once.
			chal2 := challengeFor(acme.ChallengeTypeHTTP01, "h2.example", "tok2")
			present(chal2)
			wantHTTP("stored by another node", chal2)
			cleanUp(chal2)
			chal2b := challengeFor(acme.ChallengeTypeHTTP01, "h2.example", "tok2b")
			present(chal2b)
			wantHTTP("of the next order", chal2b)

			alpn2 := challengeFor(acme.ChallengeTypeTLSALPN01, "t2.example", "tok4")
			present(alpn2)
			wantALPN("stored by another node", alpn2)
			cleanUp(alpn2)
			alpn2b := challengeFor(acme.ChallengeTypeTLSALPN01, "t2.example", "tok4b")
			present(alpn2b)
			wantALPN("of the next order", alpn2b)

			// b does not manage the name yet (its sync is behind a's,
			// which ordered): it answers all the same.
			late := challengeFor(acme.ChallengeTypeHTTP01, "late.example", "tok5")
			present(late)
			wantHTTP("for a name b does not manage yet", late)
			lateALPN := challengeFor(acme.ChallengeTypeTLSALPN01, "late-alpn.example", "tok6")
			present(lateALPN)
			wantALPN("for a name b does not manage yet", lateALPN)

			// An order that ends after another node took the name over
			// (its lease was lost) does not clean up the newer order's
			// challenge.
			old := challengeFor(acme.ChallengeTypeHTTP01, "x.example", "tok7")
			present(old)
			newer := challengeFor(acme.ChallengeTypeHTTP01, "x.example", "tok8")
			if err := (edgeSolver{b.challenges}).Present(ctx, newer); err != nil {
				t.Fatal(err)
			}
			cleanUp(old)
			if code, body := httpChallenge(a, "x.example", "tok8"); code != http.StatusOK || body != newer.KeyAuthorization {
				t.Errorf("HTTP-01 of a newer order after the older one's clean-up: %d %q, want 200 %q", code, body, newer.KeyAuthorization)
			}

			// Once a cleans a challenge up, b stops answering it when
			// what it read expires.
			cleanUp(chal2b)
			clock.Advance(remoteCacheFor)
			if code, _ := httpChallenge(b, "h2.example", "tok2b"); code != http.StatusNotFound {
				t.Errorf("HTTP-01 cleaned up %v ago: %d, want 404", remoteCacheFor, code)
			}
		})
	}
}

// countingStorage counts the Loads that reach a storage.
type countingStorage struct {
	certmagic.Storage
	loads atomic.Int64
}

func (c *countingStorage) Load(ctx context.Context, key string) ([]byte, error) {
	c.loads.Add(1)
	return c.Storage.Load(ctx, key)
}

// Challenge requests for names a node does not manage read storage only
// within a rate; for managed names, every request the memory cannot
// answer reads it.
func TestChallengeReadsForUnmanagedNamesAreBounded(t *testing.T) {
	st := &countingStorage{Storage: &certmagic.FileStorage{Path: storageDir(t)}}
	c := newChallenges(st, slog.New(slog.DiscardHandler))
	clock := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c.now = clock.Now
	ctx := context.Background()

	for i := range 2 * unmanagedReadBurst {
		c.httpChallenge(ctx, fmt.Sprintf("n%d.example", i), "tok", false)
	}
	if n := st.loads.Load(); n != unmanagedReadBurst {
		t.Errorf("%d requests for names not managed: %d storage reads, want %d", 2*unmanagedReadBurst, n, unmanagedReadBurst)
	}
	clock.Advance(time.Second)
	for i := range 2 * unmanagedReadBurst {
		c.httpChallenge(ctx, fmt.Sprintf("m%d.example", i), "tok", false)
	}
	if n := st.loads.Load(); n != unmanagedReadBurst+unmanagedReadRate {
		t.Errorf("a second later: %d storage reads in all, want %d", n, unmanagedReadBurst+unmanagedReadRate)
	}

	// What cannot be a hostname is never looked up.
	clock.Advance(time.Minute)
	before := st.loads.Load()
	for _, name := range []string{"", "a..example", "under_score.example", "x.example:80", strings.Repeat("a", 64) + ".example"} {
		c.httpChallenge(ctx, name, "tok", false)
	}
	if n := st.loads.Load() - before; n != 0 {
		t.Errorf("requests for names that are no hostname: %d storage reads, want none", n)
	}

	before = st.loads.Load()
	for range 3 * unmanagedReadBurst {
		c.httpChallenge(ctx, "managed.example", "tok", true)
	}
	if n := st.loads.Load() - before; n != 3*unmanagedReadBurst {
		t.Errorf("%d requests for a managed name with no challenge: %d storage reads, want one each", 3*unmanagedReadBurst, n)
	}
}
