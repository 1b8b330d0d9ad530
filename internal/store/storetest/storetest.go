// Package storetest is the conformance suite that every store back end passes.
//
// Imported by: tests only.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

// Run runs the suite. open returns a new, empty database; it is called once per
// subtest and should close the database in t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) *store.DB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB)
	}{
		{"Projects", testProjects},
		{"Tokens", testTokens},
		{"Domains", testDomains},
		{"DomainIsolation", testDomainIsolation},
		{"Services", testServices},
		{"ServiceConflicts", testServiceConflicts},
		{"CreateServices", testCreateServices},
		{"ServiceIsolation", testServiceIsolation},
		{"UpdateService", testUpdateService},
		{"ConcurrentServiceUpdates", testConcurrentServiceUpdates},
		{"DomainOverlap", testDomainOverlap},
		{"DomainOverlapRace", testDomainOverlapRace},
		{"DeleteDomainInUse", testDeleteDomainInUse},
		{"DeleteDomainStrandsHostname", testDeleteDomainStrandsHostname},
		{"CertStatus", testCertStatus},
		{"CertStatusDue", testCertStatusDue},
		{"UploadedCerts", testUploadedCerts},
		{"HostnameReads", testHostnameReads},
		{"ServedLookups", testServedLookups},
		{"ReadWarm", testReadWarm},
		{"ScanServices", testScanServices},
		{"ServiceClientAuth", testServiceClientAuth},
		{"Revision", testRevision},
		{"ChangeLog", testChangeLog},
		{"Watch", testWatch},
		{"KV", testKV},
		{"KVList", testKVList},
		{"KVDelete", testKVDelete},
		{"KVWithPrefix", testKVWithPrefix},
		{"KVSpecialCharacters", testKVSpecialCharacters},
		{"PutKeysAndCertStatus", testPutKeysAndCertStatus},
		{"Sealed", testSealed},
		{"ResealPlaintextPages", testResealPlaintextPages},
		{"ResealPages", testResealPages},
		{"Locks", testLocks},
		{"LockExpiry", testLockExpiry},
		{"LockContention", testLockContention},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Nodes", testNodes},
		{"Events", testEvents},
		{"AppendEvent", testAppendEvent},
		{"EventOrder", testEventOrder},
		{"WatchEvents", testWatchEvents},
		{"PruneEvents", testPruneEvents},
		{"Webhooks", testWebhooks},
		{"DeliveryLeases", testDeliveryLeases},
		{"WebhookDisable", testWebhookDisable},
		{"PruneDeliveries", testPruneDeliveries},
		{"AddDelivery", testAddDelivery},
		{"Quotas", testQuotas},
		{"QuotaRace", testQuotaRace},
		{"CABudget", testCABudget},
		{"CABudgetRace", testCABudgetRace},
		{"TokenScopesExpiry", testTokenScopesExpiry},
		{"TouchTokens", testTouchTokens},
		{"SuspendProject", testSuspendProject},
		{"DeleteProject", testDeleteProject},
		{"Audit", testAudit},
		{"AuditPrune", testAuditPrune},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

// ctxT is a test's context; its deadline guards against a hang on a loaded
// machine and is no speed target.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// wantErr fails unless err is target and its message contains text.
func wantErr(t *testing.T, err, target error, text string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
	if !strings.Contains(err.Error(), text) {
		t.Fatalf("error = %q, want it to contain %q", err, text)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func project(t *testing.T, db *store.DB, id string) {
	t.Helper()
	must(t, db.CreateProject(ctxT(t), store.Project{ID: id, Name: "name-" + id, CreatedAt: t0}))
}

func domain(t *testing.T, db *store.DB, projectID, name string) {
	t.Helper()
	must(t, db.CreateDomain(ctxT(t), store.Domain{Name: name, ProjectID: projectID, Status: store.DomainVerified, VerifyToken: "tok", CreatedAt: t0}))
}

func service(projectID, name, dom string, hostnames ...string) store.Service {
	return store.Service{
		ID: projectID + "-" + name, ProjectID: projectID, Name: name, Domain: dom,
		Hostnames: hostnames, Upstreams: []string{"http://127.0.0.1:9000"}, HSTSMaxAge: 300,
		CreatedAt: t0, UpdatedAt: t0,
	}
}

// replaceService updates the service s.ProjectID/s.Name to s's hostnames,
// upstreams, HSTS, health check and update time.
func replaceService(ctx context.Context, db *store.DB, s store.Service) error {
	_, err := db.UpdateService(ctx, s.ProjectID, s.Name, func(cur *store.Service) error {
		cur.Hostnames, cur.Upstreams, cur.HSTSMaxAge = s.Hostnames, s.Upstreams, s.HSTSMaxAge
		cur.HealthPath, cur.HealthInterval, cur.UpdatedAt = s.HealthPath, s.HealthInterval, s.UpdatedAt
		return nil
	})
	return err
}

func testProjects(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	if k := db.Kind(); k != "sqlite" && k != "postgres" {
		t.Errorf("Kind() = %q", k)
	}
	must(t, db.Ping(ctx))
	if _, err := db.GetProject(ctx, "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetProject on empty db: %v, want ErrNotFound", err)
	}
	ps, err := db.ListProjects(ctx)
	must(t, err)
	if len(ps) != 0 {
		t.Fatalf("ListProjects on empty db = %v", ps)
	}
	want := store.Project{ID: "p2", Name: "beta", CreatedAt: t0}
	must(t, db.CreateProject(ctx, want))
	must(t, db.CreateProject(ctx, store.Project{ID: "p1", Name: "alpha"}))

	got, err := db.GetProject(ctx, "p2")
	must(t, err)
	if got.ID != want.ID || got.Name != want.Name || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("GetProject = %+v, want %+v", got, want)
	}
	p1, err := db.GetProject(ctx, "p1")
	must(t, err)
	if p1.CreatedAt.IsZero() {
		t.Error("CreatedAt was not defaulted to now")
	}

	wantErr(t, db.CreateProject(ctx, store.Project{ID: "p2", Name: "other"}), store.ErrConflict, "already exists")
	wantErr(t, db.CreateProject(ctx, store.Project{ID: "p3", Name: "beta"}), store.ErrConflict, `project "beta"`)

	ps, err = db.ListProjects(ctx)
	must(t, err)
	if len(ps) != 2 || ps[0].ID != "p1" || ps[1].ID != "p2" {
		t.Errorf("ListProjects = %+v, want p1, p2", ps)
	}
}

func testDomains(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	want := store.Domain{Name: "example.com", ProjectID: "p1", Status: store.DomainPending, VerifyToken: "v1", CreatedAt: t0}
	must(t, db.CreateDomain(ctx, want))
	domain(t, db, "p2", "b.example")
	domain(t, db, "p1", "a.example")

	got, err := db.GetDomain(ctx, "example.com")
	must(t, err)
	if got.Name != want.Name || got.ProjectID != "p1" || got.Status != store.DomainPending || got.VerifyToken != "v1" ||
		!got.CreatedAt.Equal(t0) || !got.VerifiedAt.IsZero() || !got.CheckedAt.IsZero() || got.CheckError != "" {
		t.Errorf("GetDomain = %+v, want %+v", got, want)
	}
	_, err = db.GetDomain(ctx, "missing.example")
	wantErr(t, err, store.ErrNotFound, `domain "missing.example" not found`)

	// Taken by another project, and by the same one.
	wantErr(t, db.CreateDomain(ctx, store.Domain{Name: "example.com", ProjectID: "p2", Status: store.DomainPending}),
		store.ErrConflict, `domain "example.com" is already taken`)
	wantErr(t, db.CreateDomain(ctx, store.Domain{Name: "a.example", ProjectID: "p1", Status: store.DomainPending}),
		store.ErrConflict, `"a.example"`)
	wantErr(t, db.CreateDomain(ctx, store.Domain{Name: "x.example", ProjectID: "ghost"}), store.ErrNotFound, `project "ghost"`)

	names := func(ds []store.Domain) (out []string) {
		for _, d := range ds {
			out = append(out, d.Name)
		}
		return out
	}
	all, err := db.ListDomains(ctx, "")
	must(t, err)
	if got, want := names(all), []string{"a.example", "b.example", "example.com"}; !slices.Equal(got, want) {
		t.Errorf("ListDomains(all) = %v, want %v", got, want)
	}
	p1, err := db.ListDomains(ctx, "p1")
	must(t, err)
	if got, want := names(p1), []string{"a.example", "example.com"}; !slices.Equal(got, want) {
		t.Errorf("ListDomains(p1) = %v, want %v", got, want)
	}
	// By name, whichever project holds them; names no domain has left out,
	// and more names than one query takes.
	asked := []string{"example.com", "x.example.com", "b.example", "com", "nowhere.test"}
	for i := range 1200 {
		asked = append(asked, fmt.Sprintf("n%d.example.org", i))
	}
	named, err := db.DomainsNamed(ctx, asked)
	must(t, err)
	if got, want := names(named), []string{"b.example", "example.com"}; !slices.Equal(got, want) || named[1].ProjectID != "p1" || named[0].ProjectID != "p2" {
		t.Errorf("DomainsNamed = %+v, want %v", named, want)
	}
	if none, err := db.DomainsNamed(ctx, nil); err != nil || len(none) != 0 {
		t.Errorf("DomainsNamed(nil) = %v, %v", none, err)
	}
	none, err := db.ListDomains(ctx, "p3")
	must(t, err)
	if len(none) != 0 {
		t.Errorf("ListDomains(p3) = %v, want none", none)
	}

	verified := t0.Add(time.Hour)
	upd := store.Domain{Name: "example.com", ProjectID: "p1", Status: store.DomainVerified, VerifyToken: "v2",
		VerifiedAt: verified, CheckedAt: verified, CheckError: "", CreatedAt: time.Now()}
	must(t, db.UpdateDomain(ctx, upd))
	got, err = db.GetDomain(ctx, "example.com")
	must(t, err)
	if got.Status != store.DomainVerified || got.VerifyToken != "v2" || !got.VerifiedAt.Equal(verified) ||
		!got.CheckedAt.Equal(verified) || !got.CreatedAt.Equal(t0) {
		t.Errorf("after UpdateDomain: %+v", got)
	}
	upd.CheckError, upd.Status = "TXT record not found", store.DomainPending
	must(t, db.UpdateDomain(ctx, upd))
	got, err = db.GetDomain(ctx, "example.com")
	must(t, err)
	if got.CheckError != "TXT record not found" || got.Status != store.DomainPending {
		t.Errorf("after UpdateDomain: %+v", got)
	}
	// Moving a domain to another project.
	upd.ProjectID = "p2"
	must(t, db.UpdateDomain(ctx, upd))
	got, err = db.GetDomain(ctx, "example.com")
	must(t, err)
	if got.ProjectID != "p2" {
		t.Errorf("ProjectID after move = %q, want p2", got.ProjectID)
	}
	upd.ProjectID = "ghost"
	wantErr(t, db.UpdateDomain(ctx, upd), store.ErrNotFound, `project "ghost"`)
	wantErr(t, db.UpdateDomain(ctx, store.Domain{Name: "missing.example", ProjectID: "p1"}), store.ErrNotFound, "missing.example")

	must(t, db.DeleteDomain(ctx, "p1", "a.example"))
	_, err = db.GetDomain(ctx, "a.example")
	wantErr(t, err, store.ErrNotFound, "a.example")
	wantErr(t, db.DeleteDomain(ctx, "p1", "a.example"), store.ErrNotFound, "a.example")
	// The name is free again, for any project.
	domain(t, db, "p2", "a.example")
}

func testDomainOverlap(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "example.com")
	// Above, below, and two levels below another project's domain.
	for _, name := range []string{"com", "app.example.com", "a.b.example.com"} {
		err := db.CreateDomain(ctx, store.Domain{Name: name, ProjectID: "p2", Status: store.DomainPending, VerifyToken: "t"})
		wantErr(t, err, store.ErrConflict, `overlaps domain "example.com" of another project`)
	}
	// Names that only share a suffix of characters do not overlap, and LIKE
	// wildcards in a name are matched literally.
	domain(t, db, "p2", "myexample.com")
	domain(t, db, "p2", "x_ample.com")
	domain(t, db, "p1", "xyample.com")
	// A project may nest its own domains.
	domain(t, db, "p1", "app.example.com")
	if all, err := db.ListDomains(ctx, "p2"); err != nil || len(all) != 2 {
		t.Fatalf("p2 domains = %v, %v; want only the two that do not overlap", all, err)
	}
}

// testDomainOverlapRace adds a parent and a child domain from two projects at
// once, many times: the overlap check runs in the write's transaction, so at
// most one of each pair may succeed.
func testDomainOverlapRace(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	for i := range 20 {
		parent := fmt.Sprintf("race%d.example", i)
		errs := make(chan error, 2)
		for _, d := range []store.Domain{
			{Name: parent, ProjectID: "p1", Status: store.DomainPending, VerifyToken: "t"},
			{Name: "app." + parent, ProjectID: "p2", Status: store.DomainPending, VerifyToken: "t"},
		} {
			go func() { errs <- db.CreateDomain(ctx, d) }()
		}
		ok := 0
		for range 2 {
			if err := <-errs; err == nil {
				ok++
			} else if !errors.Is(err, store.ErrConflict) {
				t.Fatalf("CreateDomain: %v", err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of two overlapping domains were stored, want 1", i, ok)
		}
	}
}

func testDomainIsolation(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "example.com")
	wantErr(t, db.DeleteDomain(ctx, "p2", "example.com"), store.ErrNotFound, `domain "example.com" not found`)
	if _, err := db.GetDomain(ctx, "example.com"); err != nil {
		t.Fatalf("domain gone after another project's delete: %v", err)
	}
}

func testServices(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "example.com")
	domain(t, db, "p2", "other.example")

	want := service("p1", "web", "example.com", "web.example.com", "www.example.com", "alias.example.com")
	want.Upstreams = []string{"http://10.0.0.1:80", "https://10.0.0.2:443"}
	want.HealthPath, want.HealthInterval = "/healthz?deep=1", 1500*time.Millisecond
	must(t, db.CreateService(ctx, want))
	must(t, db.CreateService(ctx, service("p1", "api", "example.com", "api.example.com")))
	must(t, db.CreateService(ctx, service("p2", "api", "other.example", "api.other.example")))
	noUp := service("p2", "empty", "other.example", "empty.other.example")
	noUp.Upstreams, noUp.CreatedAt, noUp.UpdatedAt = nil, time.Time{}, time.Time{}
	must(t, db.CreateService(ctx, noUp))

	got, err := db.GetService(ctx, "p1", "web")
	must(t, err)
	if got.ID != want.ID || got.ProjectID != "p1" || got.Name != "web" || got.Domain != "example.com" ||
		!slices.Equal(got.Hostnames, want.Hostnames) || !slices.Equal(got.Upstreams, want.Upstreams) ||
		got.HSTSMaxAge != 300 || !got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) ||
		got.HealthPath != want.HealthPath || got.HealthInterval != want.HealthInterval {
		t.Errorf("GetService = %+v\nwant %+v", got, want)
	}
	e, err := db.GetService(ctx, "p2", "empty")
	must(t, err)
	if len(e.Upstreams) != 0 || e.CreatedAt.IsZero() || e.UpdatedAt.IsZero() || e.HealthPath != "" || e.HealthInterval != 0 {
		t.Errorf("service without upstreams or times = %+v", e)
	}

	list := func(projectID string) (out []string) {
		t.Helper()
		ss, err := db.ListServices(ctx, projectID)
		must(t, err)
		for _, s := range ss {
			out = append(out, s.ProjectID+"/"+s.Name+"="+strings.Join(s.Hostnames, ","))
		}
		return out
	}
	if got, want := list(""), []string{
		"p1/api=api.example.com",
		"p1/web=web.example.com,www.example.com,alias.example.com",
		"p2/api=api.other.example",
		"p2/empty=empty.other.example",
	}; !slices.Equal(got, want) {
		t.Errorf("ListServices(all) =\n%v\nwant\n%v", got, want)
	}
	if got, want := list("p2"), []string{"p2/api=api.other.example", "p2/empty=empty.other.example"}; !slices.Equal(got, want) {
		t.Errorf("ListServices(p2) = %v, want %v", got, want)
	}
	if got := list("p3"); len(got) != 0 {
		t.Errorf("ListServices(p3) = %v, want none", got)
	}

	must(t, db.DeleteService(ctx, "p1", "web"))
	_, err = db.GetService(ctx, "p1", "web")
	wantErr(t, err, store.ErrNotFound, `service "web" not found`)
	wantErr(t, db.DeleteService(ctx, "p1", "web"), store.ErrNotFound, "web")
	// Its hostnames are free again.
	must(t, db.CreateService(ctx, service("p1", "site", "example.com", "www.example.com", "web.example.com")))

	// A read gives a name that its first hostname begins with
	// (<name>.<domain>) as that hostname's bytes, any other as its own.
	for _, projectID := range []string{"", "p1"} {
		ss, err := db.ListServices(ctx, projectID)
		must(t, err)
		names := map[string]bool{}
		for _, s := range ss {
			names[s.ProjectID+"/"+s.Name] = true
			shared := unsafe.StringData(s.Name) == unsafe.StringData(s.Hostnames[0])
			if want := strings.HasPrefix(s.Hostnames[0], s.Name+"."); shared != want {
				t.Errorf("ListServices(%q): %s/%s shares its first hostname %s: %v, want %v", projectID, s.ProjectID, s.Name, s.Hostnames[0], shared, want)
			}
		}
		if !names["p1/site"] || !names["p1/api"] {
			t.Errorf("ListServices(%q) names %v", projectID, names)
		}
	}
}

func testServiceConflicts(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "example.com")
	domain(t, db, "p2", "localhost")
	must(t, db.CreateService(ctx, service("p2", "api", "localhost", "api.localhost")))
	rev, err := db.Revision(ctx)
	must(t, err)

	// A hostname another project's service has.
	s := service("p1", "web", "example.com", "web.example.com", "api.localhost")
	wantErr(t, db.CreateService(ctx, s), store.ErrConflict, `hostname "api.localhost" is already taken`)
	// Nothing of the failed service stays behind.
	if _, err := db.GetService(ctx, "p1", "web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("half-created service: %v", err)
	}
	must(t, db.CreateService(ctx, service("p1", "web", "example.com", "web.example.com")))
	if r, _ := db.Revision(ctx); r != rev+1 {
		t.Errorf("revision = %d, want %d (one successful write)", r, rev+1)
	}

	// The same name in the same project; the same name in another project is fine.
	wantErr(t, db.CreateService(ctx, service("p1", "web", "example.com", "web2.example.com")), store.ErrConflict, `service "web" already exists`)
	other := service("p2", "web", "localhost", "web.localhost")
	must(t, db.CreateService(ctx, other))

	wantErr(t, db.CreateService(ctx, service("p1", "dup", "example.com", "dup.example.com", "dup.example.com")),
		store.ErrConflict, `hostname "dup.example.com"`)
	wantErr(t, db.CreateService(ctx, service("p1", "x", "missing.example", "x.missing.example")), store.ErrNotFound, `domain "missing.example"`)
	// Another project's domain is not found either.
	wantErr(t, db.CreateService(ctx, service("p1", "y", "localhost", "y.localhost")), store.ErrNotFound, `domain "localhost"`)
}

func testServiceIsolation(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "example.com")
	must(t, db.CreateService(ctx, service("p1", "web", "example.com", "web.example.com")))

	_, err := db.GetService(ctx, "p2", "web")
	wantErr(t, err, store.ErrNotFound, "web")
	wantErr(t, db.DeleteService(ctx, "p2", "web"), store.ErrNotFound, "web")
	_, err = db.UpdateService(ctx, "p2", "web", func(s *store.Service) error {
		s.Hostnames = append(s.Hostnames, "evil.example.com")
		return nil
	})
	wantErr(t, err, store.ErrNotFound, "web")
	got, err := db.GetService(ctx, "p1", "web")
	must(t, err)
	if !slices.Equal(got.Hostnames, []string{"web.example.com"}) {
		t.Errorf("another project changed the service: %+v", got)
	}
}

func testUpdateService(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "example.com")
	domain(t, db, "p2", "other.example")
	must(t, db.CreateService(ctx, service("p1", "web", "example.com", "web.example.com", "old.example.com")))
	must(t, db.CreateService(ctx, service("p2", "api", "other.example", "api.other.example")))

	var seen store.Service
	upd, err := db.UpdateService(ctx, "p1", "web", func(s *store.Service) error {
		seen = *s
		s.Hostnames = []string{"web.example.com", "new.example.com"}
		s.Upstreams = []string{"http://10.0.0.9:8080"}
		s.HSTSMaxAge, s.HealthPath, s.HealthInterval = 0, "/up", 3*time.Second
		s.UpdatedAt = t0.Add(time.Minute)
		// Fields that are not the update's to change stay as stored.
		s.ID, s.Name, s.Domain, s.CreatedAt = "other", "other", "other.example", t0.Add(time.Hour)
		return nil
	})
	must(t, err)
	if seen.ID != "p1-web" || !slices.Equal(seen.Hostnames, []string{"web.example.com", "old.example.com"}) ||
		!slices.Equal(seen.Upstreams, []string{"http://127.0.0.1:9000"}) || seen.HSTSMaxAge != 300 || !seen.UpdatedAt.Equal(t0) {
		t.Errorf("change saw %+v, want the service as stored", seen)
	}
	got, err := db.GetService(ctx, "p1", "web")
	must(t, err)
	if !slices.Equal(got.Hostnames, []string{"web.example.com", "new.example.com"}) || !slices.Equal(got.Upstreams, []string{"http://10.0.0.9:8080"}) ||
		got.HSTSMaxAge != 0 || got.HealthPath != "/up" || got.HealthInterval != 3*time.Second ||
		!got.UpdatedAt.Equal(t0.Add(time.Minute)) || !got.CreatedAt.Equal(t0) ||
		got.Domain != "example.com" || got.ID != "p1-web" || got.Name != "web" {
		t.Errorf("after UpdateService: %+v", got)
	}
	if !slices.Equal(upd.Hostnames, got.Hostnames) || upd.ID != got.ID || !upd.UpdatedAt.Equal(got.UpdatedAt) || upd.HealthPath != got.HealthPath {
		t.Errorf("UpdateService returned %+v, stored %+v", upd, got)
	}
	// The dropped hostname is free for anyone.
	must(t, db.CreateService(ctx, service("p2", "old", "other.example", "old.example.com")))

	rev, err := db.Revision(ctx)
	must(t, err)
	unchanged := func(what string) {
		t.Helper()
		after, err := db.GetService(ctx, "p1", "web")
		must(t, err)
		if !slices.Equal(after.Hostnames, got.Hostnames) || !slices.Equal(after.Upstreams, got.Upstreams) ||
			after.HealthPath != got.HealthPath || !after.UpdatedAt.Equal(got.UpdatedAt) {
			t.Errorf("%s left %+v", what, after)
		}
		if r, _ := db.Revision(ctx); r != rev {
			t.Errorf("%s bumped the revision: %d -> %d", what, rev, r)
		}
	}
	// Taking another service's hostname changes nothing, upstreams included.
	_, err = db.UpdateService(ctx, "p1", "web", func(s *store.Service) error {
		s.Hostnames = append(s.Hostnames, "api.other.example")
		s.Upstreams = []string{"http://10.9.9.9"}
		return nil
	})
	wantErr(t, err, store.ErrConflict, `hostname "api.other.example" is already taken`)
	unchanged("a conflicting update")
	// A refusal of change is returned as it is, and nothing is written.
	refusal := errors.New("no such upstream")
	_, err = db.UpdateService(ctx, "p1", "web", func(s *store.Service) error {
		s.Upstreams = nil
		return refusal
	})
	if err != refusal {
		t.Errorf("refused change: error %v, want %v", err, refusal)
	}
	unchanged("a refused change")
	_, err = db.UpdateService(ctx, "p1", "nope", func(*store.Service) error { t.Error("change called for a missing service"); return nil })
	wantErr(t, err, store.ErrNotFound, `service "nope"`)
}

// testConcurrentServiceUpdates: updates that each add a hostname to one
// service, from many goroutines at once, all land: each reads what the
// others wrote (the update is one transaction).
func testConcurrentServiceUpdates(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	domain(t, db, "p1", "example.com")
	must(t, db.CreateService(ctx, service("p1", "web", "example.com", "web.example.com")))
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = db.UpdateService(ctx, "p1", "web", func(s *store.Service) error {
				s.Hostnames = append(s.Hostnames, fmt.Sprintf("h%d.example.com", i))
				return nil
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("update %d: %v", i, err)
		}
	}
	got, err := db.GetService(ctx, "p1", "web")
	must(t, err)
	if len(got.Hostnames) != n+1 {
		t.Errorf("after %d concurrent updates the service has %d hostnames, want %d: %v", n, len(got.Hostnames), n+1, got.Hostnames)
	}
}

func testDeleteDomainInUse(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	domain(t, db, "p1", "example.com")
	must(t, db.CreateService(ctx, service("p1", "web", "example.com", "web.example.com")))
	rev, err := db.Revision(ctx)
	must(t, err)
	wantErr(t, db.DeleteDomain(ctx, "p1", "example.com"), store.ErrInUse, `service "web"`)
	if _, err := db.GetDomain(ctx, "example.com"); err != nil {
		t.Fatalf("domain in use was deleted: %v", err)
	}
	if r, _ := db.Revision(ctx); r != rev {
		t.Errorf("a failed delete bumped the revision: %d -> %d", rev, r)
	}
	must(t, db.DeleteService(ctx, "p1", "web"))
	must(t, db.DeleteDomain(ctx, "p1", "example.com"))
}

// testDeleteDomainStrandsHostname: a domain that no service names as its
// domain, but whose names a service holds as extra hostnames, stays until the
// hostnames go, unless another domain of the project covers them.
func testDeleteDomainStrandsHostname(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	domain(t, db, "p1", "example.com")
	domain(t, db, "p1", "other.example")
	domain(t, db, "p1", "sub.other.example")
	must(t, db.CreateService(ctx, service("p1", "web", "example.com", "web.example.com", "www.other.example", "x.sub.other.example")))
	wantErr(t, db.DeleteDomain(ctx, "p1", "other.example"), store.ErrInUse, `service "web" (hostname "www.other.example")`)
	// x.sub.other.example is also covered by other.example.
	must(t, db.DeleteDomain(ctx, "p1", "sub.other.example"))
	wantErr(t, db.DeleteDomain(ctx, "p1", "other.example"), store.ErrInUse, `"www.other.example"`)
	_, err := db.UpdateService(ctx, "p1", "web", func(s *store.Service) error {
		s.Hostnames = []string{"web.example.com"}
		return nil
	})
	must(t, err)
	must(t, db.DeleteDomain(ctx, "p1", "other.example"))
}

func testCertStatus(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	_, err := db.GetCertStatus(ctx, "a.example")
	wantErr(t, err, store.ErrNotFound, "a.example")
	want := store.CertStatus{Hostname: "b.example", Status: store.CertActive, Issuer: "Spine Internal CA",
		NotBefore: t0, NotAfter: t0.Add(24 * time.Hour), UpdatedAt: t0}
	must(t, db.PutCertStatus(ctx, want))
	must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: "a.example", Status: store.CertIssuing}))
	got, err := db.GetCertStatus(ctx, "b.example")
	must(t, err)
	if got.Status != want.Status || got.Issuer != want.Issuer || !got.NotBefore.Equal(want.NotBefore) ||
		!got.NotAfter.Equal(want.NotAfter) || !got.UpdatedAt.Equal(t0) || got.Error != "" {
		t.Errorf("GetCertStatus = %+v, want %+v", got, want)
	}
	// Upsert replaces every field.
	must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: "b.example", Status: store.CertFailed, Error: "rate limited"}))
	got, err = db.GetCertStatus(ctx, "b.example")
	must(t, err)
	if got.Status != store.CertFailed || got.Error != "rate limited" || got.Issuer != "" || !got.NotAfter.IsZero() || got.UpdatedAt.IsZero() {
		t.Errorf("after upsert: %+v", got)
	}
	all, err := db.ListCertStatus(ctx)
	must(t, err)
	if len(all) != 2 || all[0].Hostname != "a.example" || all[1].Hostname != "b.example" {
		t.Errorf("ListCertStatus = %+v", all)
	}
	must(t, db.DeleteCertStatus(ctx, "a.example"))
	wantErr(t, db.DeleteCertStatus(ctx, "a.example"), store.ErrNotFound, "a.example")
	all, err = db.ListCertStatus(ctx)
	must(t, err)
	if len(all) != 1 {
		t.Errorf("ListCertStatus after delete = %+v", all)
	}
}

func testCertStatusDue(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	day := 24 * time.Hour
	for _, s := range []store.CertStatus{
		// Renewal window: the last third of the lifetime.
		{Hostname: "due.example", Status: store.CertActive, NotBefore: t0.Add(-20 * time.Hour), NotAfter: t0.Add(4 * time.Hour)},
		{Hostname: "expired.example", Status: store.CertFailed, NotBefore: t0.Add(-2 * day), NotAfter: t0.Add(-day)},
		{Hostname: "fresh.example", Status: store.CertActive, NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(23 * time.Hour)},
		{Hostname: "pending.example", Status: store.CertPending},
		{Hostname: "issuing.example", Status: store.CertIssuing},
	} {
		must(t, db.PutCertStatus(ctx, s))
	}
	due, err := db.ListCertStatusDue(ctx, 1.0/3, t0, 10)
	must(t, err)
	var names []string
	for _, s := range due {
		names = append(names, s.Hostname)
	}
	if strings.Join(names, ",") != "expired.example,due.example" {
		t.Errorf("ListCertStatusDue = %v, want expired.example, due.example (soonest end first)", names)
	}
	due, err = db.ListCertStatusDue(ctx, 1.0/3, t0, 1)
	must(t, err)
	if len(due) != 1 || due[0].Hostname != "expired.example" {
		t.Errorf("ListCertStatusDue with limit 1 = %+v", due)
	}
	// Valid: active, begun, before its renewal window; not a certificate
	// yet to begin, nor one of another status.
	must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: "later.example", Status: store.CertActive, NotBefore: t0.Add(time.Hour), NotAfter: t0.Add(day)}))
	must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: "failed.example", Status: store.CertFailed, NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(day)}))
	chunks, err := db.ListCertValid(ctx, 1.0/3, t0)
	must(t, err)
	if valid := slices.Sorted(slices.Values(slices.Concat(chunks...))); strings.Join(valid, ",") != "fresh.example" {
		t.Errorf("ListCertValid = %v, want fresh.example", chunks)
	}
}

func testRevision(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	rev, err := db.Revision(ctx)
	must(t, err)
	step := func(what string, bumps bool, err error) {
		t.Helper()
		r, rerr := db.Revision(ctx)
		must(t, rerr)
		want := rev
		if bumps {
			want++
		}
		if r != want {
			t.Errorf("%s (err %v): revision %d, want %d", what, err, r, want)
		}
		rev = r
	}
	step("CreateProject", true, db.CreateProject(ctx, store.Project{ID: "p1", Name: "one"}))
	step("CreateProject conflict", false, db.CreateProject(ctx, store.Project{ID: "p1", Name: "one"}))
	step("CreateDomain", true, db.CreateDomain(ctx, store.Domain{Name: "example.com", ProjectID: "p1"}))
	step("UpdateDomain", true, db.UpdateDomain(ctx, store.Domain{Name: "example.com", ProjectID: "p1", Status: store.DomainVerified}))
	step("CreateService", true, db.CreateService(ctx, service("p1", "web", "example.com", "web.example.com")))
	_, err = db.UpdateService(ctx, "p1", "web", func(s *store.Service) error { s.Hostnames = []string{"w.example.com"}; return nil })
	step("UpdateService", true, err)
	step("DeleteService", true, db.DeleteService(ctx, "p1", "web"))
	step("DeleteDomain", true, db.DeleteDomain(ctx, "p1", "example.com"))
	step("DeleteDomain missing", false, db.DeleteDomain(ctx, "p1", "example.com"))
	step("PutKey", false, db.PutKey(ctx, "k", []byte("v")))
	step("PutCertStatus", false, db.PutCertStatus(ctx, store.CertStatus{Hostname: "x", Status: store.CertPending}))
	step("CreateToken", true, db.CreateToken(ctx, store.Token{ID: "t1", ProjectID: "p1", Name: "ci", Hash: "h1"}))
	step("CreateToken conflict", false, db.CreateToken(ctx, store.Token{ID: "t2", ProjectID: "p1", Name: "ci", Hash: "h2"}))
	step("TouchTokens", false, db.TouchTokens(ctx, []store.TokenUse{{ID: "t1", At: t0}}, time.Minute))
	step("AppendAudit", false, db.AppendAudit(ctx, store.AuditEntry{ProjectID: "p1", Action: "x"}))
	step("DeleteToken", true, db.DeleteToken(ctx, "p1", "ci"))
	step("DeleteToken missing", false, db.DeleteToken(ctx, "p1", "ci"))
	step("SuspendProject", true, db.SuspendProject(ctx, "p1", t0))
	step("DeleteProject", true, db.DeleteProject(ctx, "p1"))
	step("DeleteProject missing", false, db.DeleteProject(ctx, "p1"))
}

func testWatch(t *testing.T, db *store.DB) {
	ctx, cancel := context.WithCancel(ctxT(t))
	ch := db.Watch(ctx)
	if cap(ch) != 1 {
		t.Errorf("Watch channel capacity = %d, want 1", cap(ch))
	}
	other := db.Watch(ctxT(t)) // never read: must not hold up writers
	_ = other

	for i := range 3 {
		drain(ch)
		project(t, db, fmt.Sprint("p", i))
		waitSignal(t, ch, "after CreateProject")
	}
	// Many writes while nobody reads: the writers do not block, one signal waits.
	for i := range 20 {
		project(t, db, fmt.Sprint("q", i))
	}
	waitSignal(t, ch, "after a burst of writes")

	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Watch channel not closed after its context ended")
		}
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: Watch channel closed", what)
		}
	case <-time.After(time.Minute): // a guard against a hang
		t.Fatalf("%s: no Watch signal", what)
	}
}

func testKV(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	_, err := db.GetKey(ctx, "certificates/a.crt")
	wantErr(t, err, store.ErrNotFound, "certificates/a.crt")
	_, err = db.StatKey(ctx, "certificates/a.crt")
	wantErr(t, err, store.ErrNotFound, "certificates/a.crt")

	before := time.Now().Add(-time.Second)
	must(t, db.PutKey(ctx, "certificates/a.crt", []byte("one")))
	must(t, db.PutKey(ctx, "certificates/a.crt", []byte("two-2")))
	v, err := db.GetKey(ctx, "certificates/a.crt")
	must(t, err)
	if string(v) != "two-2" {
		t.Errorf("GetKey = %q, want two-2", v)
	}
	bin := []byte{0, 1, 2, 0xff, 0xfe, 0}
	must(t, db.PutKey(ctx, "bin", bin))
	v, err = db.GetKey(ctx, "bin")
	must(t, err)
	if !slices.Equal(v, bin) {
		t.Errorf("binary value = %v, want %v", v, bin)
	}
	must(t, db.PutKey(ctx, "empty", nil))
	v, err = db.GetKey(ctx, "empty")
	must(t, err)
	if v == nil || len(v) != 0 {
		t.Errorf("empty value = %#v, want []byte{}", v)
	}

	info, err := db.StatKey(ctx, "certificates/a.crt")
	must(t, err)
	if info.Key != "certificates/a.crt" || !info.IsTerminal || info.Size != 5 ||
		info.Modified.Before(before) || info.Modified.After(time.Now().Add(time.Second)) {
		t.Errorf("StatKey(file) = %+v", info)
	}
	info, err = db.StatKey(ctx, "certificates")
	must(t, err)
	if info.IsTerminal || info.Key != "certificates" || info.Modified.IsZero() {
		t.Errorf("StatKey(dir) = %+v, want a directory", info)
	}
	_, err = db.StatKey(ctx, "certif")
	wantErr(t, err, store.ErrNotFound, "certif")

	for _, bad := range []string{"", "/abs", "dir/"} {
		if err := db.PutKey(ctx, bad, []byte("x")); err == nil {
			t.Errorf("PutKey(%q) succeeded", bad)
		}
	}
}

func testKVList(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	for _, k := range []string{
		"acme/ca1/users/u.json",
		"acme/ca1/sites/a.example/a.example.crt",
		"acme/ca1/sites/a.example/a.example.key",
		"acme/ca1/sites/b.example/b.example.crt",
		"acme/ca1/sites/b.example.old", // sorts between b.example/ entries in byte order
		"acme/ca2/x",
		"acme/top",
		"acmez/other",
		"root",
	} {
		must(t, db.PutKey(ctx, k, []byte(k)))
	}
	tests := []struct {
		prefix    string
		recursive bool
		want      []string
	}{
		{"", false, []string{"acme", "acmez", "root"}},
		{"acme", false, []string{"acme/ca1", "acme/ca2", "acme/top"}},
		{"acme/", false, []string{"acme/ca1", "acme/ca2", "acme/top"}},
		{"acme/ca1/sites", false, []string{"acme/ca1/sites/a.example", "acme/ca1/sites/b.example", "acme/ca1/sites/b.example.old"}},
		{"acme/ca1/sites", true, []string{
			"acme/ca1/sites/a.example/a.example.crt", "acme/ca1/sites/a.example/a.example.key",
			"acme/ca1/sites/b.example.old", "acme/ca1/sites/b.example/b.example.crt"}},
		{"acme", true, []string{
			"acme/ca1/sites/a.example/a.example.crt", "acme/ca1/sites/a.example/a.example.key",
			"acme/ca1/sites/b.example.old", "acme/ca1/sites/b.example/b.example.crt",
			"acme/ca1/users/u.json", "acme/ca2/x", "acme/top"}},
		{"", true, []string{
			"acme/ca1/sites/a.example/a.example.crt", "acme/ca1/sites/a.example/a.example.key",
			"acme/ca1/sites/b.example.old", "acme/ca1/sites/b.example/b.example.crt",
			"acme/ca1/users/u.json", "acme/ca2/x", "acme/top", "acmez/other", "root"}},
	}
	for _, tt := range tests {
		got, err := db.ListKeys(ctx, tt.prefix, tt.recursive)
		must(t, err)
		if !slices.Equal(got, tt.want) {
			t.Errorf("ListKeys(%q, %v) =\n%q\nwant\n%q", tt.prefix, tt.recursive, got, tt.want)
		}
	}
	for _, missing := range []string{"acm", "nothing", "root"} { // "root" is a key, not a directory
		_, err := db.ListKeys(ctx, missing, false)
		wantErr(t, err, store.ErrNotFound, missing)
	}
}

func testKVDelete(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	for _, k := range []string{"a/b", "a/b/c", "a/b/d/e", "a/bc", "a/b.x", "ab"} {
		must(t, db.PutKey(ctx, k, []byte("v")))
	}
	must(t, db.DeleteKey(ctx, "a/b"))
	got, err := db.ListKeys(ctx, "", true)
	must(t, err)
	if want := []string{"a/b.x", "a/bc", "ab"}; !slices.Equal(got, want) {
		t.Errorf("after DeleteKey(a/b): %q, want %q", got, want)
	}
	wantErr(t, db.DeleteKey(ctx, "a/b"), store.ErrNotFound, "a/b")
	// A directory alone.
	must(t, db.PutKey(ctx, "d/x/1", nil))
	must(t, db.PutKey(ctx, "d/x/2", nil))
	must(t, db.DeleteKey(ctx, "d"))
	if _, err := db.StatKey(ctx, "d"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("StatKey(d) after delete: %v, want ErrNotFound", err)
	}
}

func testKVWithPrefix(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	keys := []string{
		"certificates/ca/a.example/a.example.crt",
		"certificates/ca/a.example/a.example.json",
		"certificates/ca/a.example/a.example.key",
		"certificates/ca/a.example.org/a.example.org.crt", // same string prefix, another directory
		"certificates/ca/a.example0",                      // sorts right after "a.example/"
		"certificates/cb/a.example/a.example.crt",
		"ocsp/a.example-1f2e",
		"ocsp/a.example.org-3c4d",
		"ocsp/a.example_x",
		"p%/x", "pq/y", "p_/z", "t~", "t~/x",
	}
	for _, k := range keys {
		must(t, db.PutKey(ctx, k, []byte("value of "+k)))
	}
	must(t, db.PutKey(ctx, "ocsp/a.example-empty", nil))
	bin := []byte{0, 0xff, 0}
	must(t, db.PutKey(ctx, "certificates/ca/a.example/bin", bin))

	tests := []struct {
		limit    int
		prefixes []string
		want     []string
	}{
		{10, []string{"certificates/ca/a.example/"}, []string{
			"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.json",
			"certificates/ca/a.example/a.example.key", "certificates/ca/a.example/bin"}},
		{10, []string{"certificates/ca/a.example/", "ocsp/a.example-"}, []string{
			"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.json",
			"certificates/ca/a.example/a.example.key", "certificates/ca/a.example/bin",
			"ocsp/a.example-1f2e", "ocsp/a.example-empty"}},
		{10, []string{"certificates/ca/a.example/", "certificates/cb/a.example/"}, []string{
			"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.json",
			"certificates/ca/a.example/a.example.key", "certificates/ca/a.example/bin",
			"certificates/cb/a.example/a.example.crt"}},
		// Overlapping prefixes give each key once.
		{10, []string{"certificates/ca/a.example/a.example.", "certificates/ca/a.example/"}, []string{
			"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.json",
			"certificates/ca/a.example/a.example.key", "certificates/ca/a.example/bin"}},
		{2, []string{"ocsp/a.example-", "certificates/ca/a.example/"}, []string{
			"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.json"}},
		{10, []string{"certificates/ca/a.example"}, []string{
			"certificates/ca/a.example.org/a.example.org.crt",
			"certificates/ca/a.example/a.example.crt", "certificates/ca/a.example/a.example.json",
			"certificates/ca/a.example/a.example.key", "certificates/ca/a.example/bin",
			"certificates/ca/a.example0"}},
		{10, []string{"p%"}, []string{"p%/x"}},
		{10, []string{"p_"}, []string{"p_/z"}},
		{10, []string{"t~"}, []string{"t~", "t~/x"}},
		{10, []string{"certificates/cc/", "ocsp/b."}, nil},
	}
	for _, tt := range tests {
		got, err := db.GetKeysWithPrefix(ctx, tt.limit, tt.prefixes...)
		must(t, err)
		var gotKeys []string
		for _, kv := range got {
			gotKeys = append(gotKeys, kv.Key)
			want := []byte("value of " + kv.Key)
			switch kv.Key {
			case "ocsp/a.example-empty":
				want = []byte{}
			case "certificates/ca/a.example/bin":
				want = bin
			}
			if kv.Value == nil || !slices.Equal(kv.Value, want) {
				t.Errorf("GetKeysWithPrefix(%q): %s = %#v, want %#v", tt.prefixes, kv.Key, kv.Value, want)
			}
		}
		if !slices.Equal(gotKeys, tt.want) {
			t.Errorf("GetKeysWithPrefix(%d, %q) =\n%q\nwant\n%q", tt.limit, tt.prefixes, gotKeys, tt.want)
		}
	}
	for _, bad := range [][]string{nil, {""}, {"ünï"}, {"ok/", "x\x7f"}} {
		if _, err := db.GetKeysWithPrefix(ctx, 10, bad...); err == nil {
			t.Errorf("GetKeysWithPrefix(%q) succeeded", bad)
		}
	}
	if _, err := db.GetKeysWithPrefix(ctx, 0, "ocsp/"); err == nil {
		t.Error("GetKeysWithPrefix with limit 0 succeeded")
	}
}

func testKVSpecialCharacters(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	for _, k := range []string{"p%/x", "pq/y", "p_/z", "P%/w", `p\/v`, "ünï/cödé"} {
		must(t, db.PutKey(ctx, k, []byte(k)))
	}
	for prefix, want := range map[string][]string{
		"p%":  {"p%/x"},
		"p_":  {"p_/z"},
		"P%":  {"P%/w"},
		`p\`:  {`p\/v`},
		"ünï": {"ünï/cödé"},
	} {
		got, err := db.ListKeys(ctx, prefix, true)
		must(t, err)
		if !slices.Equal(got, want) {
			t.Errorf("ListKeys(%q) = %q, want %q", prefix, got, want)
		}
	}
	must(t, db.DeleteKey(ctx, "p%"))
	got, err := db.ListKeys(ctx, "", false)
	must(t, err)
	if want := []string{"P%", `p\`, "p_", "pq", "ünï"}; !slices.Equal(got, want) {
		t.Errorf("after DeleteKey(p%%): %q, want %q", got, want)
	}
}

func testLocks(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	try := func(name, owner string, want bool) {
		t.Helper()
		ok, err := db.TryLock(ctx, name, owner, time.Minute)
		must(t, err)
		if ok != want {
			t.Fatalf("TryLock(%s, %s) = %v, want %v", name, owner, ok, want)
		}
	}
	try("issue/a", "node1", true)
	try("issue/a", "node2", false)
	try("issue/a", "node1", true) // extends its own
	try("issue/b", "node2", true) // another name is independent

	wantErr(t, db.Unlock(ctx, "issue/a", "node2"), store.ErrNotFound, "issue/a")
	try("issue/a", "node2", false) // still node1's
	must(t, db.Unlock(ctx, "issue/a", "node1"))
	try("issue/a", "node2", true)
	wantErr(t, db.Unlock(ctx, "issue/a", "node1"), store.ErrNotFound, "issue/a")

	if _, err := db.TryLock(ctx, "x", "o", 0); err == nil {
		t.Error("TryLock with ttl 0 succeeded")
	}
}

func testLockExpiry(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	// Leases run out by the database's clock, which a test cannot move:
	// a lease of a nanosecond has run out by the next statement (or the
	// one after, where the clock's resolution is coarser), and one of an
	// hour has not by the end of the test.
	ok, err := db.TryLock(ctx, "l", "old", time.Nanosecond)
	must(t, err)
	if !ok {
		t.Fatal("first TryLock failed")
	}
	// The holder extends its lease, expired or not.
	ok, err = db.TryLock(ctx, "l", "old", time.Hour)
	must(t, err)
	if !ok {
		t.Fatal("holder could not extend its lease")
	}
	ok, err = db.TryLock(ctx, "l", "new", time.Minute)
	must(t, err)
	if ok {
		t.Fatal("lock taken while its extended lease ran")
	}

	ok, err = db.TryLock(ctx, "m", "old", time.Nanosecond)
	must(t, err)
	if !ok {
		t.Fatal("TryLock(m) failed")
	}
	poll.Until(t, "an expired lock taken over", time.Minute, func() error {
		ok, err := db.TryLock(ctx, "m", "new", time.Hour)
		if err != nil {
			return poll.Stop(err)
		}
		if !ok {
			return errors.New("TryLock refused")
		}
		return nil
	})
	// The old owner lost it: it can neither extend nor release it.
	ok, err = db.TryLock(ctx, "m", "old", time.Minute)
	must(t, err)
	if ok {
		t.Error("old owner took back a lock another owner holds")
	}
	wantErr(t, db.Unlock(ctx, "m", "old"), store.ErrNotFound, "m")
}

func testLockContention(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	const n = 16
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []int
	)
	for i := range n {
		wg.Go(func() {
			ok, err := db.TryLock(ctx, "contended", fmt.Sprint("owner", i), time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				wins = append(wins, i)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Errorf("%d owners took the lock (%v), want exactly 1", len(wins), wins)
	}
}

func testConcurrentWriters(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p")
	rev, err := db.Revision(ctx)
	must(t, err)
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := fmt.Sprintf("d%d.example", i)
			if err := db.CreateDomain(ctx, store.Domain{Name: d, ProjectID: "p", Status: store.DomainVerified}); err != nil {
				t.Error(err)
				return
			}
			// Every writer also tries to take the same hostname: exactly one wins.
			s := service("p", fmt.Sprint("s", i), d, "web."+d, "shared.example")
			err := db.CreateService(ctx, s)
			if err != nil && !errors.Is(err, store.ErrConflict) {
				t.Error(err)
			}
			if err := db.PutKey(ctx, fmt.Sprintf("k/%d", i), []byte("v")); err != nil {
				t.Error(err)
			}
			if _, err := db.ListServices(ctx, ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ss, err := db.ListServices(ctx, "p")
	must(t, err)
	if len(ss) != 1 {
		t.Errorf("%d services took the shared hostname, want 1", len(ss))
	}
	keys, err := db.ListKeys(ctx, "k", false)
	must(t, err)
	if len(keys) != n {
		t.Errorf("%d keys, want %d", len(keys), n)
	}
	if r, _ := db.Revision(ctx); r != rev+n+1 {
		t.Errorf("revision = %d, want %d (%d domains + 1 service)", r, rev+n+1, n)
	}
}
