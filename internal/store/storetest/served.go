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

// testReadWarm: ReadWarm answers what the reads it stands for answer one
// by one (on PostgreSQL from one pipeline of them): the service holding
// the name with every setting, the domains named, the uploaded
// certificate with its key, the keys under the prefixes (binary values
// and the limit included); a service or upload not found is in the
// answer, not an error; arguments out of bounds are refused.
func testReadWarm(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	domain(t, db, "p1", "one.example")
	web := service("p1", "web", "one.example", "www.one.example", "a.one.example")
	web.HealthPath, web.HealthInterval = "/healthz", 7*time.Second
	web.ClientCA, web.ClientAuth = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "require"
	must(t, db.CreateService(ctx, web))
	must(t, db.PutUploadedCert(ctx, "one.example", store.UploadedCert{Hostname: "www.one.example", ProjectID: "p1",
		Chain: []byte("chain-1"), Key: []byte("key-1"), Issuer: "Example CA", NotBefore: t0, NotAfter: t0.Add(90 * 24 * time.Hour),
		SHA256: "aa", UploadedAt: t0}))
	for _, k := range []string{"a.crt", "a.json", "a.key", "b.crt", "c.crt"} {
		must(t, db.PutKey(ctx, "certificates/ca/www.one.example/"+k, []byte("value of "+k)))
	}
	must(t, db.PutKey(ctx, "certificates/cb/www.one.example/bin", []byte{0, 0xff, 0}))

	prefixes := func(host string) []string {
		return []string{"certificates/ca/" + host + "/", "certificates/cb/" + host + "/"}
	}
	for _, host := range []string{"www.one.example", "a.one.example", "nothing.one.example", "nothing.else", "' OR 1=1 --"} {
		names := []string{host, "one.example", "example"}
		for _, limit := range []int{64, 3} {
			got, err := db.ReadWarm(ctx, host, names, prefixes(host), limit)
			if err != nil {
				t.Fatalf("ReadWarm(%s): %v", host, err)
			}
			svc, sErr := db.ServiceByHostname(ctx, host)
			if (got.ServiceErr == nil) != (sErr == nil) || (sErr == nil && !sameService(got.Service, svc)) {
				t.Errorf("ReadWarm(%s): service %+v, %v; ServiceByHostname = %+v, %v", host, got.Service, got.ServiceErr, svc, sErr)
			}
			if sErr != nil && !errors.Is(got.ServiceErr, store.ErrNotFound) {
				t.Errorf("ReadWarm(%s): service error %v, want ErrNotFound", host, got.ServiceErr)
			}
			ds, err := db.DomainsNamed(ctx, names)
			must(t, err)
			if len(got.Domains) != len(ds) || (len(ds) > 0 && (got.Domains[0] != ds[0])) {
				t.Errorf("ReadWarm(%s): domains %+v; DomainsNamed = %+v", host, got.Domains, ds)
			}
			up, uErr := db.UploadedCertFor(ctx, host)
			if (got.UploadedErr == nil) != (uErr == nil) || !bytes.Equal(got.Uploaded.Key, up.Key) ||
				!bytes.Equal(got.Uploaded.Chain, up.Chain) || !got.Uploaded.NotAfter.Equal(up.NotAfter) || got.Uploaded.ProjectID != up.ProjectID {
				t.Errorf("ReadWarm(%s): upload %+v, %v; UploadedCertFor = %+v, %v", host, got.Uploaded, got.UploadedErr, up, uErr)
			}
			if uErr != nil && !errors.Is(got.UploadedErr, store.ErrNotFound) {
				t.Errorf("ReadWarm(%s): upload error %v, want ErrNotFound", host, got.UploadedErr)
			}
			kvs, err := db.GetKeysWithPrefix(ctx, limit, prefixes(host)...)
			must(t, err)
			if !slices.EqualFunc(got.Keys, kvs, func(a, b store.KeyValue) bool { return a.Key == b.Key && bytes.Equal(a.Value, b.Value) }) {
				t.Errorf("ReadWarm(%s, limit %d): keys %q; GetKeysWithPrefix = %q", host, limit, got.Keys, kvs)
			}
		}
	}
	if got, err := db.ReadWarm(ctx, "www.one.example", []string{"one.example"}, nil, 0); err != nil || got.Keys != nil || got.ServiceErr != nil {
		t.Errorf("ReadWarm without prefixes = keys %q, service error %v, %v; want no keys read", got.Keys, got.ServiceErr, err)
	}
	if _, err := db.ReadWarm(ctx, "www.one.example", nil, []string{"certificates/ca/www.one.example/"}, 8); err != nil {
		t.Errorf("ReadWarm without domains: %v", err)
	}
	if _, err := db.ReadWarm(ctx, "www.one.example", make([]string, 501), nil, 0); err == nil {
		t.Error("ReadWarm of 501 domain names: no error")
	}
	if _, err := db.ReadWarm(ctx, "www.one.example", nil, []string{""}, 8); err == nil {
		t.Error("ReadWarm with an empty prefix: no error")
	}
}
