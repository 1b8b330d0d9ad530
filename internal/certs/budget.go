// The shared CA budget: one ACME account serves every tenant, so Spine
// counts, in the store that a fleet shares, the orders it places with each
// CA, and keeps within the CA's limits instead of spending failures on
// them. An order that would pass one waits: its name stays pending, with
// the reason and the time it will be tried, and no other issuer (the
// internal CA) stands in for it meanwhile.

package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
	"golang.org/x/net/publicsuffix"

	"github.com/spine-platform/spine/internal/store"
)

// OrderBook records the orders placed with ACME CAs and refuses one that
// would pass a CA's budget or its project's orders per hour, with a
// *store.BudgetWait. It must be safe for concurrent use; *store.DB
// implements it, and a fleet that shares the store shares the counts.
type OrderBook interface {
	ReserveOrder(ctx context.Context, req store.OrderRequest) (string, error)
	FinishOrder(ctx context.Context, id, outcome string) error
}

// Let's Encrypt's ACME directories, whose published limits BudgetFor knows.
const (
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging    = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// BudgetFor returns the limits of the CA at directory url for
// ACMEIssuer.Budget: budgets[url] if the operator gave one (a zero
// CABudget turns the count off: nil), else Let's Encrypt's published
// limits for its directories, else nil (not tracked).
func BudgetFor(url string, budgets map[string]store.CABudget) *store.CABudget {
	if b, ok := budgets[url]; ok {
		if b == (store.CABudget{}) {
			return nil
		}
		return &b
	}
	switch url {
	case LetsEncryptProduction:
		b := LetsEncryptBudget()
		return &b
	case LetsEncryptStaging:
		b := LetsEncryptStagingBudget()
		return &b
	}
	return nil
}

// LetsEncryptBudget is Let's Encrypt's production limits for one account:
// 300 new orders per 3 hours, 50 certificates per registered domain per
// week, 5 failed validations per hostname per hour.
func LetsEncryptBudget() store.CABudget {
	return store.CABudget{Orders: 300, OrdersWindow: 3 * time.Hour, DomainCerts: 50, DomainCertsWindow: 7 * 24 * time.Hour,
		FailedValidations: 5, FailedValidationsWindow: time.Hour}
}

// LetsEncryptStagingBudget is Let's Encrypt's staging limits: 1,500 new
// orders per 3 hours, 30,000 certificates per registered domain per week,
// 60 failed validations per hostname per hour.
func LetsEncryptStagingBudget() store.CABudget {
	return store.CABudget{Orders: 1500, OrdersWindow: 3 * time.Hour, DomainCerts: 30000, DomainCertsWindow: 7 * 24 * time.Hour,
		FailedValidations: 60, FailedValidationsWindow: time.Hour}
}

// BudgetWaitError is the error of an order that waits for a CA's budget
// (or its project's orders per hour) instead of being placed.
type BudgetWaitError struct {
	CA     string    // the CA's directory URL
	Until  time.Time // when the name will be tried again
	Reason string    // which limit, in plain words
}

func (e *BudgetWaitError) Error() string {
	return fmt.Sprintf("waiting, not ordered: %s; it will be tried at %s", e.Reason, e.Until.UTC().Format(time.RFC3339))
}

// registeredDomain is the public suffix + 1 of name, the unit of a CA's
// certificates-per-domain limit; name itself if it has none.
func registeredDomain(name string) string {
	name = strings.TrimPrefix(name, "*.")
	if rd, err := publicsuffix.EffectiveTLDPlusOne(name); err == nil {
		return rd
	}
	return name
}

// budgetKey names the CA and account whose budget an issuer spends.
func (a *acmeIssuer) budgetKey() string {
	who := a.Email
	if who == "" {
		who = "default"
	}
	return a.key + "/" + who
}

// reserve records the order for names in the book, or returns a
// BudgetWaitError (wrapped so that certmagic does not retry: the manager
// tries the name again at its time) when it must wait. An issuer without a
// book orders freely.
func (a *acmeIssuer) reserve(ctx context.Context, names []string) (string, error) {
	if a.book == nil || len(names) == 0 {
		return "", nil
	}
	var b store.CABudget
	if a.Budget != nil {
		b = *a.Budget
	}
	id, err := a.book.ReserveOrder(ctx, store.OrderRequest{CA: a.budgetKey(), Hostname: names[0],
		RegisteredDomain: registeredDomain(names[0]), Budget: b, Now: time.Now()})
	var w *store.BudgetWait
	if errors.As(err, &w) {
		bw := &BudgetWaitError{CA: a.CA, Until: w.Until, Reason: w.Reason}
		for _, n := range names {
			a.waits.set(n, bw)
		}
		return "", certmagic.ErrNoRetry{Err: bw}
	}
	if err != nil {
		// Not recorded, not placed: the count must not miss an order.
		return "", fmt.Errorf("%v: recording the order in the CA's budget: %w", names, err)
	}
	a.waits.forget(names...)
	return id, nil
}

// finish records how the order went.
func (a *acmeIssuer) finish(ctx context.Context, id string, err error) {
	if a.book == nil || id == "" {
		return
	}
	outcome := store.OrderIssued
	if err != nil {
		outcome = store.OrderFailed
		if failedValidation(err) {
			outcome = store.OrderInvalid
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusWriteTimeout)
	defer cancel()
	if ferr := a.book.FinishOrder(fctx, id, outcome); ferr != nil {
		a.log.Warn("recording an order's outcome in the CA's budget", "order", id, "err", ferr)
	}
}

// failedValidation reports whether err is the CA's refusal of a
// challenge's answer: what its failed-validations limit counts.
func failedValidation(err error) bool {
	var p acme.Problem
	if !errors.As(err, &p) {
		return false
	}
	for _, typ := range []string{acme.ProblemTypeUnauthorized, acme.ProblemTypeIncorrectResponse, acme.ProblemTypeConnection,
		acme.ProblemTypeDNS, acme.ProblemTypeTLS, acme.ProblemTypeCAA} {
		if isProblem(p, typ) {
			return true
		}
	}
	return false
}

// budgetWaits remembers, per certificate subject, the latest wait an ACME
// issuer found, so that the issuers after it (the internal CA) wait too.
// Bounded like holds: a flood of names empties it.
type budgetWaits struct {
	mu sync.Mutex
	m  map[string]*BudgetWaitError
}

func (w *budgetWaits) set(name string, e *BudgetWaitError) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[string]*BudgetWaitError{}
	}
	if len(w.m) > 10000 {
		clear(w.m)
	}
	w.m[name] = e
}

func (w *budgetWaits) get(name string, now time.Time) *BudgetWaitError {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.m[name]
	if e != nil && !now.Before(e.Until) {
		delete(w.m, name)
		return nil
	}
	return e
}

func (w *budgetWaits) forget(names ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range names {
		delete(w.m, n)
	}
}

// budgetGuard is a non-ACME issuer (the internal CA) that does not stand
// in for an ACME CA whose budget makes a name wait.
type budgetGuard struct {
	certmagic.Issuer
	waits *budgetWaits
}

func (g budgetGuard) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	for _, n := range namesOf(csr) {
		if bw := g.waits.get(n, time.Now()); bw != nil {
			return nil, certmagic.ErrNoRetry{Err: bw}
		}
	}
	return g.Issuer.Issue(ctx, csr)
}

// retryAt manages name again at at, for a first certificate that waited
// for a CA's budget (certmagic's own retries were stopped). One timer per
// waiting name, replaced by a later wait; Stop ends them.
func (m *Manager) retryAt(name string, at time.Time) {
	m.retryMu.Lock()
	defer m.retryMu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	if t := m.retries[name]; t != nil {
		t.Stop()
	}
	m.retries[name] = time.AfterFunc(time.Until(at), func() {
		m.retryMu.Lock()
		delete(m.retries, name)
		m.retryMu.Unlock()
		m.syncMu.Lock()
		defer m.syncMu.Unlock()
		if m.ctx.Err() != nil || !m.managed.Load().has(name) {
			return
		}
		if cancel := m.cancels[name]; cancel != nil {
			cancel()
		}
		m.log.Info("trying a certificate that waited for the certificate authority's budget", "hostname", name)
		m.manage(name)
	})
}

// stopRetries ends the timers of retryAt.
func (m *Manager) stopRetries() {
	m.retryMu.Lock()
	defer m.retryMu.Unlock()
	for n, t := range m.retries {
		t.Stop()
		delete(m.retries, n)
	}
}
