package storetest

import (
	"bytes"
	"slices"
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
