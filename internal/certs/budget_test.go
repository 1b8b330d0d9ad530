package certs

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"

	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/pebbletest"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

func TestRegisteredDomain(t *testing.T) {
	for in, want := range map[string]string{
		"www.example.com": "example.com", "*.shop.example.co.uk": "example.co.uk", "a.b.example.test": "example.test",
		"example.com": "example.com", "localhost": "localhost", "user.github.io": "user.github.io",
	} {
		if got := registeredDomain(in); got != want {
			t.Errorf("registeredDomain(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestFailedValidation(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{acme.Problem{Type: acme.ProblemTypeUnauthorized}, true},
		{errors.Join(errors.New("wrapped"), acme.Problem{Type: acme.ProblemTypeConnection}), true},
		{acme.Problem{Type: "urn:ietf:params:acme:error:malformed", Subproblems: []acme.Subproblem{{Problem: acme.Problem{Type: acme.ProblemTypeDNS}}}}, true},
		{acme.Problem{Type: acme.ProblemTypeRateLimited}, false},
		{errors.New("connection refused"), false},
	} {
		if got := failedValidation(c.err); got != c.want {
			t.Errorf("failedValidation(%v) = %v", c.err, got)
		}
	}
}

// A name past the CA's budget waits in pending with the reason and the time
// it will be tried, is not issued by the internal CA meanwhile, and is
// ordered from the CA once the window has moved on.
func TestBudgetWaitsInsteadOfOrdering(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateProject(ctx, store.Project{ID: "p1", Name: "p1"}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDomain(ctx, store.Domain{Name: "budget.test", ProjectID: "p1", Status: store.DomainVerified}); err != nil {
		t.Fatal(err)
	}
	dns := pebbletest.StartDNS(t)
	tlsLn, httpLn := listen(t), listen(t)
	p := pebbletest.Start(t, pebbletest.Options{HTTPPort: portOf(httpLn.Addr().String()), TLSPort: portOf(tlsLn.Addr().String()), Resolver: dns.Addr})
	storage := &certmagic.FileStorage{Path: storageDir(t)}
	internal, err := ca.Load(ctx, storage, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const window = 3 * time.Second
	book := &reservations{OrderBook: db}
	e := newACMEEnv(t, acmeOptions{dns: dns, tlsLn: tlsLn, httpLn: httpLn, storage: storage, orders: book,
		issuers: func(int, int) []certmagic.Issuer {
			return []certmagic.Issuer{pebbleIssuer(p, func(i *ACMEIssuer) { i.Budget = &store.CABudget{Orders: 1, OrdersWindow: window} }), internal}
		}})
	e.m.Sync(ctx, []string{"a.budget.test"})
	first := e.waitActive(t, "a.budget.test")
	if strings.Contains(first.Issuer, "Spine") {
		t.Fatalf("a.budget.test issued by %q, want Pebble", first.Issuer)
	}
	e.m.Sync(ctx, []string{"a.budget.test", "b.budget.test"})
	poll.Until(t, "b.budget.test to wait", waitTimeout, poll.True(func() bool {
		return strings.Contains(e.m.Status("b.budget.test").Error, "waiting, not ordered")
	}))
	st := e.m.Status("b.budget.test")
	if st.Status != store.CertPending || !strings.Contains(st.Error, "limit of 1 new orders per 3s") || !strings.Contains(st.Error, "it will be tried at") {
		t.Errorf("waiting status = %+v", st)
	}
	poll.Until(t, "the status write", waitTimeout, poll.True(func() bool { return strings.Contains(e.status.last("b.budget.test").Error, "waiting, not ordered") }))
	// Then, once the first order leaves the window, the CA issues it.
	second := e.waitActive(t, "b.budget.test")
	if strings.Contains(second.Issuer, "Spine") {
		t.Errorf("b.budget.test issued by %q while it waited for the CA: the internal CA stood in", second.Issuer)
	}
	// Pebble saw both orders, the second reserved in the book no sooner
	// than the window after the first. (Pebble's own times of the two
	// orders are no measure of the window: the first reached it after the
	// account's registration, which on a loaded machine takes long. Nor is
	// its count of order requests one of orders: Pebble refuses a share of
	// nonces, and acmez sends a refused request again, so one order can be
	// two requests; the book and the project's quota count the orders.)
	var orders int
	for _, ev := range p.Events(time.Time{}) {
		if ev.Kind == "order" {
			orders++
		}
	}
	if orders < 2 {
		t.Errorf("Pebble saw %d order requests, want both orders", orders)
	}
	if r := book.placed(); len(r) != 2 {
		t.Errorf("%d orders reserved, want 2", len(r))
	} else if gap := r[1].Sub(r[0]); gap < window {
		t.Errorf("b.budget.test reserved %s after the first: within the window", gap)
	}
	for _, s := range e.status.history("b.budget.test") {
		if s == store.CertFailed {
			t.Errorf("b.budget.test went through failed: %v", e.status.history("b.budget.test"))
		}
	}
	_, u, err := db.ProjectQuota(ctx, "p1", time.Now())
	if err != nil || u.OrdersLastHour != 2 {
		t.Errorf("orders recorded in the last hour: %d %v, want 2", u.OrdersLastHour, err)
	}
}

// TestBudgetFor: an operator's budget wins, a zero one turns the count off,
// Let's Encrypt's directories have their published limits, others none.
func TestBudgetFor(t *testing.T) {
	own := store.CABudget{Orders: 10, OrdersWindow: time.Hour}
	budgets := map[string]store.CABudget{"https://ca.example/dir": own, LetsEncryptStaging: {}}
	if b := BudgetFor("https://ca.example/dir", budgets); b == nil || *b != own {
		t.Errorf("operator's budget: got %v", b)
	}
	if b := BudgetFor(LetsEncryptStaging, budgets); b != nil {
		t.Errorf("a zero budget should turn the count off, got %v", b)
	}
	if b := BudgetFor(LetsEncryptProduction, budgets); b == nil || *b != LetsEncryptBudget() {
		t.Errorf("Let's Encrypt production: got %v", b)
	}
	if b := BudgetFor(LetsEncryptStaging, nil); b == nil || *b != LetsEncryptStagingBudget() {
		t.Errorf("Let's Encrypt staging: got %v", b)
	}
	if b := BudgetFor("https://other.example/dir", nil); b != nil {
		t.Errorf("another CA: got %v, want none", b)
	}
}

// reservations is an OrderBook that keeps the time of each order it
// allowed.
type reservations struct {
	OrderBook
	mu    sync.Mutex
	times []time.Time
}

func (r *reservations) ReserveOrder(ctx context.Context, req store.OrderRequest) (string, error) {
	id, err := r.OrderBook.ReserveOrder(ctx, req)
	if err == nil {
		r.mu.Lock()
		r.times = append(r.times, req.Now)
		r.mu.Unlock()
	}
	return id, err
}

func (r *reservations) placed() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.times)
}
