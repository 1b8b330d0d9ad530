package storetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

func intp(v int) *int { return &v }

// testQuotas: limits refuse the write that would pass them, naming the
// limit and the use, and store nothing; a project's own limits override
// the default.
func testQuotas(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	db.SetDefaultQuota(store.Quota{Domains: 2, Services: 2, Hostnames: 3})
	t.Cleanup(func() { db.SetDefaultQuota(store.Quota{}) })
	if q := db.DefaultQuota(); q.Domains != 2 || q.Hostnames != 3 {
		t.Fatalf("DefaultQuota = %+v", q)
	}

	domain(t, db, "p1", "a.example")
	domain(t, db, "p1", "b.example")
	err := db.CreateDomain(ctx, store.Domain{Name: "c.example", ProjectID: "p1", Status: store.DomainVerified})
	if !isQuota(err, "domains", 2, 2) {
		t.Fatalf("third domain: %v, want a quota error for domains 2 of 2", err)
	}
	if _, err := db.GetDomain(ctx, "c.example"); !errors.Is(err, store.ErrNotFound) {
		t.Error("the refused domain was stored")
	}
	domain(t, db, "p2", "c.example") // another project has its own count

	must(t, db.CreateService(ctx, service("p1", "one", "a.example", "one.a.example", "x.a.example")))
	err = db.CreateService(ctx, service("p1", "two", "a.example", "two.a.example", "y.a.example"))
	if !isQuota(err, "hostnames", 3, 2) {
		t.Fatalf("service past the hostname limit: %v", err)
	}
	if _, err := db.GetService(ctx, "p1", "two"); !errors.Is(err, store.ErrNotFound) {
		t.Error("the refused service was stored")
	}
	must(t, db.CreateService(ctx, service("p1", "two", "a.example", "two.a.example")))
	err = db.CreateService(ctx, service("p1", "three", "a.example", "three.a.example"))
	if !isQuota(err, "services", 2, 2) {
		t.Fatalf("third service: %v", err)
	}
	// Growing a service's hostnames counts; keeping or shrinking never does.
	grow := service("p1", "two", "a.example", "two.a.example", "z.a.example")
	if err := replaceService(ctx, db, grow); !isQuota(err, "hostnames", 3, 3) {
		t.Fatalf("growing past the limit: %v", err)
	}
	db.SetDefaultQuota(store.Quota{Domains: 2, Services: 2, Hostnames: 1}) // lowered below use
	must(t, replaceService(ctx, db, service("p1", "one", "a.example", "one.a.example")))

	// A project's own limits win over the default; 0 is no limit.
	must(t, db.SetQuotaOverride(ctx, "p1", store.QuotaOverride{Services: intp(0), Hostnames: intp(10), OrdersPerHour: intp(7)}))
	o, err := db.GetQuotaOverride(ctx, "p1")
	must(t, err)
	if o.Domains != nil || o.Services == nil || *o.Services != 0 || *o.Hostnames != 10 || *o.OrdersPerHour != 7 {
		t.Errorf("GetQuotaOverride = %+v", o)
	}
	must(t, db.CreateService(ctx, service("p1", "three", "a.example", "three.a.example")))
	q, u, err := db.ProjectQuota(ctx, "p1", time.Now())
	must(t, err)
	if q != (store.Quota{Domains: 2, Services: 0, Hostnames: 10, OrdersPerHour: 7}) {
		t.Errorf("ProjectQuota limits = %+v", q)
	}
	if u != (store.QuotaUsage{Domains: 2, Services: 3, Hostnames: 3}) {
		t.Errorf("ProjectQuota usage = %+v", u)
	}
	if o, _ := db.GetQuotaOverride(ctx, "p2"); o != (store.QuotaOverride{}) {
		t.Errorf("p2 has an override: %+v", o)
	}
	wantErr(t, db.SetQuotaOverride(ctx, "nobody", store.QuotaOverride{}), store.ErrNotFound, "nobody")
	must(t, db.SetQuotaOverride(ctx, "p1", store.QuotaOverride{})) // back to the default
	if err := db.CreateDomain(ctx, store.Domain{Name: "d.example", ProjectID: "p1"}); !isQuota(err, "domains", 2, 2) {
		t.Errorf("after resetting the override: %v", err)
	}

	// A domain taken over by proof counts for the project that takes it.
	d, err := db.GetDomain(ctx, "c.example")
	must(t, err)
	d.ProjectID = "p1"
	if err := db.UpdateDomain(ctx, d); !isQuota(err, "domains", 2, 2) {
		t.Errorf("moving a domain to a project at its limit: %v", err)
	}
}

// testQuotaRace: concurrent creates cannot both take the last slot.
func testQuotaRace(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	db.SetDefaultQuota(store.Quota{Domains: 3, Services: 3})
	t.Cleanup(func() { db.SetDefaultQuota(store.Quota{}) })
	domain(t, db, "p1", "example.com")
	var wg sync.WaitGroup
	results := make(chan error, 20)
	for i := range 10 {
		wg.Go(func() {
			results <- db.CreateService(ctx, service("p1", fmt.Sprint("s", i), "example.com", fmt.Sprintf("s%d.example.com", i)))
		})
		wg.Go(func() {
			results <- db.CreateDomain(ctx, store.Domain{Name: fmt.Sprintf("d%d.example", i), ProjectID: "p1", Status: store.DomainVerified})
		})
	}
	wg.Wait()
	close(results)
	for err := range results {
		if err != nil && !errors.Is(err, store.ErrQuota) {
			t.Errorf("unexpected error: %v", err)
		}
	}
	_, u, err := db.ProjectQuota(ctx, "p1", time.Now())
	must(t, err)
	if u.Services != 3 || u.Domains != 3 {
		t.Errorf("after the race: %d services, %d domains; want exactly 3 and 3", u.Services, u.Domains)
	}
}

// testCABudget: the CA's limits, shared by every tenant and node.
func testCABudget(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	project(t, db, "p3")
	domain(t, db, "p1", "a.shared.example")
	domain(t, db, "p2", "b.shared.example")
	domain(t, db, "p3", "solo.example")
	b := store.CABudget{Orders: 7, OrdersWindow: 3 * time.Hour, DomainCerts: 4, DomainCertsWindow: 7 * 24 * time.Hour,
		FailedValidations: 2, FailedValidationsWindow: time.Hour}
	req := func(host, rd string, at time.Time) store.OrderRequest {
		return store.OrderRequest{CA: "acme-ca", Hostname: host, RegisteredDomain: rd, Budget: b, Now: at}
	}
	wait := func(err error) *store.BudgetWait {
		var w *store.BudgetWait
		if !errors.As(err, &w) {
			t.Fatalf("error = %v, want a BudgetWait", err)
		}
		return w
	}

	// Two projects share shared.example: each may take half of its 4.
	for i := range 2 {
		_, err := db.ReserveOrder(ctx, req(fmt.Sprintf("x%d.a.shared.example", i), "shared.example", t0.Add(time.Duration(i)*time.Minute)))
		must(t, err)
	}
	_, err := db.ReserveOrder(ctx, req("x9.a.shared.example", "shared.example", t0.Add(5*time.Minute)))
	w := wait(err)
	if !strings.Contains(w.Reason, "share (2 of 4, shared by 2 projects)") || !w.Until.Equal(t0.Add(7*24*time.Hour)) {
		t.Errorf("p1 past its share: %v (until %v)", w, w.Until)
	}
	// p2 still has its half.
	id, err := db.ReserveOrder(ctx, req("y.b.shared.example", "shared.example", t0.Add(6*time.Minute)))
	must(t, err)
	// A failed order does not count as a certificate.
	must(t, db.FinishOrder(ctx, id, store.OrderFailed))
	_, err = db.ReserveOrder(ctx, req("y.b.shared.example", "shared.example", t0.Add(7*time.Minute)))
	must(t, err)

	// Failed validations per hostname.
	for i := range 2 {
		id, err := db.ReserveOrder(ctx, req("solo.example", "solo.example", t0.Add(time.Duration(10+i)*time.Minute)))
		must(t, err)
		must(t, db.FinishOrder(ctx, id, store.OrderInvalid))
	}
	_, err = db.ReserveOrder(ctx, req("solo.example", "solo.example", t0.Add(20*time.Minute)))
	if w := wait(err); !strings.Contains(w.Reason, "failed validation 2 times") || !w.Until.Equal(t0.Add(70*time.Minute)) {
		t.Errorf("third validation: %v (until %v)", w, w.Until)
	}
	// Another hostname of the domain is not held back by it.
	_, err = db.ReserveOrder(ctx, req("www.solo.example", "solo.example", t0.Add(21*time.Minute)))
	must(t, err)

	// The account's orders: 7 per 3 h, and 7 are placed (refusals place none).
	_, err = db.ReserveOrder(ctx, req("www2.solo.example", "solo.example", t0.Add(22*time.Minute)))
	if w := wait(err); !strings.Contains(w.Reason, "7 new orders per 3h0m0s") || !w.Until.Equal(t0.Add(3*time.Hour)) {
		t.Errorf("past the account's orders: %v (until %v)", w, w.Until)
	}
	// Later, the window has moved on.
	_, err = db.ReserveOrder(ctx, req("www2.solo.example", "solo.example", t0.Add(3*time.Hour+time.Minute)))
	must(t, err)
	// Another CA has a budget of its own.
	other := req("www3.solo.example", "solo.example", t0.Add(22*time.Minute))
	other.CA = "other-ca"
	_, err = db.ReserveOrder(ctx, other)
	must(t, err)

	// The project's orders per hour (its quota).
	must(t, db.SetQuotaOverride(ctx, "p3", store.QuotaOverride{OrdersPerHour: intp(1)}))
	late := t0.Add(10 * time.Hour)
	_, err = db.ReserveOrder(ctx, req("a.solo.example", "solo.example", late))
	must(t, err)
	_, err = db.ReserveOrder(ctx, req("b.solo.example", "solo.example", late.Add(time.Minute)))
	if w := wait(err); !strings.Contains(w.Reason, "quota of 1 certificate orders per hour") || !w.Until.Equal(late.Add(time.Hour)) {
		t.Errorf("past the project's orders per hour: %v (until %v)", w, w.Until)
	}
	_, u, err := db.ProjectQuota(ctx, "p3", late.Add(time.Minute))
	must(t, err)
	if u.OrdersLastHour != 1 {
		t.Errorf("OrdersLastHour = %d, want 1", u.OrdersLastHour)
	}
	// An unknown order ID is not an error.
	must(t, db.FinishOrder(ctx, "ord_gone", store.OrderIssued))
}

// testCABudgetRace: nodes racing for the last slots of the account take
// exactly what the limit allows.
func testCABudgetRace(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	domain(t, db, "p1", "example.com")
	b := store.CABudget{Orders: 5, OrdersWindow: time.Hour}
	var wg sync.WaitGroup
	ok := make(chan string, 20)
	for i := range 20 {
		wg.Go(func() {
			id, err := db.ReserveOrder(ctx, store.OrderRequest{CA: "ca", Hostname: fmt.Sprintf("h%d.example.com", i),
				RegisteredDomain: "example.com", Budget: b, Now: t0})
			var w *store.BudgetWait
			switch {
			case err == nil:
				ok <- id
			case !errors.As(err, &w):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(ok)
	if n := len(ok); n != 5 {
		t.Errorf("%d orders reserved at once, want exactly 5", n)
	}
}
