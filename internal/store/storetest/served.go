package storetest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// testServedLookups: the reads of one hostname a node makes while its
// first full read runs (ServiceByHostname, UploadedCertFor) and the
// bounded count that decides whether it does (HostnamesAtLeast).
func testServedLookups(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	if ok, err := db.HostnamesAtLeast(ctx, 1); err != nil || ok {
		t.Fatalf("HostnamesAtLeast(1) of an empty store = %v, %v", ok, err)
	}
	project(t, db, "p1")
	domain(t, db, "p1", "one.example")
	web := service("p1", "web", "one.example", "www.one.example", "a.one.example", "b.one.example")
	must(t, db.CreateService(ctx, web))
	must(t, db.CreateService(ctx, service("p1", "api", "one.example", "api.one.example")))

	got, err := db.ServiceByHostname(ctx, "a.one.example")
	must(t, err)
	if got.ID != web.ID || got.Name != "web" || !slices.Equal(got.Hostnames, web.Hostnames) || !slices.Equal(got.Upstreams, web.Upstreams) || got.HSTSMaxAge != 300 {
		t.Fatalf("ServiceByHostname(a.one.example) = %+v, want %+v", got, web)
	}
	_, err = db.ServiceByHostname(ctx, "nothing.one.example")
	wantErr(t, err, store.ErrNotFound, "nothing.one.example")
	_, err = db.ServiceByHostname(ctx, "' OR 1=1 --")
	wantErr(t, err, store.ErrNotFound, "OR 1=1")

	for n, want := range map[int]bool{0: true, 3: true, 4: true, 5: false, 1000: false} {
		if ok, err := db.HostnamesAtLeast(ctx, n); err != nil || ok != want {
			t.Errorf("HostnamesAtLeast(%d) with 4 hostnames = %v, %v; want %v", n, ok, err, want)
		}
	}

	_, err = db.UploadedCertFor(ctx, "www.one.example")
	wantErr(t, err, store.ErrNotFound, "www.one.example")
	c := store.UploadedCert{Hostname: "www.one.example", ProjectID: "p1", Chain: []byte("chain-1"), Key: []byte("key-1"),
		Issuer: "Example CA", NotBefore: t0, NotAfter: t0.Add(90 * 24 * time.Hour), SHA256: "aa", UploadedAt: t0}
	must(t, db.PutUploadedCert(ctx, "one.example", c))
	up, err := db.UploadedCertFor(ctx, "www.one.example")
	must(t, err)
	if up.ProjectID != "p1" || !bytes.Equal(up.Chain, c.Chain) || !bytes.Equal(up.Key, c.Key) || up.SHA256 != "aa" || !up.NotAfter.Equal(c.NotAfter) {
		t.Fatalf("UploadedCertFor = %+v", up)
	}
}

// testScanServices: ScanServices yields every service once, by ID, as
// ListServices reads it (hostnames in their order, upstreams decoded,
// times, settings), though it reuses one Service; fn's error stops it.
func testScanServices(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	n := 0
	must(t, db.ScanServices(ctx, func(*store.Service) error { n++; return nil }))
	if n != 0 {
		t.Fatalf("an empty store yielded %d services", n)
	}
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "one.example")
	domain(t, db, "p2", "two.example")
	must(t, db.CreateService(ctx, service("p1", "web", "one.example", "www.one.example", "a.one.example", "b.one.example", "c.one.example")))
	must(t, db.CreateService(ctx, service("p1", "api", "one.example", "api.one.example")))
	other := service("p2", "web", "two.example", "z.two.example", "y.two.example")
	other.Upstreams = []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080"}
	other.HealthPath, other.HealthInterval, other.HSTSMaxAge = "/healthz", 7*time.Second, 0
	other.ClientCA, other.ClientAuth = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "require"
	must(t, db.CreateService(ctx, other))
	must(t, db.CreateService(ctx, service("p2", "one", "two.example", "x.two.example")))

	want, err := db.ListServices(ctx, "")
	must(t, err)
	slices.SortFunc(want, func(a, b store.Service) int { return strings.Compare(a.ID, b.ID) })
	var got []store.Service
	must(t, db.ScanServices(ctx, func(s *store.Service) error {
		c := *s
		c.Hostnames, c.Upstreams = slices.Clone(s.Hostnames), slices.Clone(s.Upstreams)
		got = append(got, c)
		return nil
	}))
	if len(got) != len(want) {
		t.Fatalf("ScanServices yielded %d services, want %d", len(got), len(want))
	}
	for i := range want {
		if g, w := got[i], want[i]; !sameService(g, w) {
			t.Errorf("service %d: scanned %+v, listed %+v", i, g, w)
		}
	}
	// The read of every service (on PostgreSQL, with pgx's rows) agrees
	// with the reads of one project (database/sql's).
	all, err := db.ListServices(ctx, "")
	must(t, err)
	var byProject []store.Service
	for _, p := range []string{"p1", "p2"} {
		ss, err := db.ListServices(ctx, p)
		must(t, err)
		byProject = append(byProject, ss...)
	}
	if !slices.EqualFunc(all, byProject, sameService) {
		t.Errorf("ListServices of all:\n%+v\nof each project:\n%+v", all, byProject)
	}
	stop := errors.New("enough")
	n = 0
	if err := db.ScanServices(ctx, func(*store.Service) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("ScanServices after fn's error: %v, %d calls; want that error after one", err, n)
	}
}

// sameService reports whether a and b hold the same service, field by field.
func sameService(a, b store.Service) bool {
	return a.ID == b.ID && a.ProjectID == b.ProjectID && a.Name == b.Name && a.Domain == b.Domain &&
		slices.Equal(a.Hostnames, b.Hostnames) && slices.Equal(a.Upstreams, b.Upstreams) &&
		a.HSTSMaxAge == b.HSTSMaxAge && a.HealthPath == b.HealthPath && a.HealthInterval == b.HealthInterval &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.ClientCA == b.ClientCA && a.ClientAuth == b.ClientAuth
}
