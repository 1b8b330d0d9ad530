package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

func testUploadedCerts(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "one.example")
	domain(t, db, "p2", "two.example")
	must(t, db.CreateDomain(ctx, store.Domain{Name: "pending.example", ProjectID: "p1", Status: store.DomainPending, VerifyToken: "tok", CreatedAt: t0}))

	c := store.UploadedCert{Hostname: "www.one.example", ProjectID: "p1", Chain: []byte("chain-1"), Key: []byte("key-1"),
		Issuer: "Example CA", NotBefore: t0, NotAfter: t0.Add(90 * 24 * time.Hour), SHA256: "aa", UploadedAt: t0}
	rev, err := db.Revision(ctx)
	must(t, err)
	must(t, db.PutUploadedCert(ctx, "one.example", c))
	if r, _ := db.Revision(ctx); r <= rev {
		t.Errorf("an upload is not a change: revision %d, then %d", rev, r)
	}
	// Another project's domain, or one not verified: nothing stored.
	other := c
	other.Hostname, other.ProjectID = "www.two.example", "p1"
	wantErr(t, db.PutUploadedCert(ctx, "two.example", other), store.ErrNotFound, "two.example")
	other.Hostname = "www.pending.example"
	wantErr(t, db.PutUploadedCert(ctx, "pending.example", other), store.ErrNotFound, "pending.example")

	got, err := db.ListUploadedCerts(ctx, "p1", false)
	must(t, err)
	if len(got) != 1 || got[0].Hostname != c.Hostname || !bytes.Equal(got[0].Chain, c.Chain) || got[0].Key != nil ||
		got[0].Issuer != c.Issuer || !got[0].NotAfter.Equal(c.NotAfter) || !got[0].NotBefore.Equal(t0) || got[0].SHA256 != "aa" || !got[0].UploadedAt.Equal(t0) {
		t.Fatalf("ListUploadedCerts(p1, no keys) = %+v", got)
	}
	got, err = db.ListUploadedCerts(ctx, "", true)
	must(t, err)
	if len(got) != 1 || !bytes.Equal(got[0].Key, c.Key) {
		t.Fatalf("ListUploadedCerts(all, keys) = %+v", got)
	}
	if got, _ := db.ListUploadedCerts(ctx, "p2", true); len(got) != 0 {
		t.Errorf("p2 sees p1's certificate: %+v", got)
	}
	// A second upload replaces the first.
	c.Chain, c.Key, c.SHA256 = []byte("chain-2"), []byte("key-2"), "bb"
	must(t, db.PutUploadedCert(ctx, "one.example", c))
	got, _ = db.ListUploadedCerts(ctx, "", true)
	if len(got) != 1 || string(got[0].Chain) != "chain-2" || string(got[0].Key) != "key-2" || got[0].SHA256 != "bb" {
		t.Fatalf("after replacing: %+v", got)
	}
	// Removal: only by its project.
	wantErr(t, db.DeleteUploadedCert(ctx, "p2", "www.one.example"), store.ErrNotFound, "www.one.example")
	rev, _ = db.Revision(ctx)
	must(t, db.DeleteUploadedCert(ctx, "p1", "www.one.example"))
	if r, _ := db.Revision(ctx); r <= rev {
		t.Errorf("a removal is not a change")
	}
	wantErr(t, db.DeleteUploadedCert(ctx, "p1", "www.one.example"), store.ErrNotFound, "www.one.example")
	// Deleting the project deletes its certificates.
	must(t, db.PutUploadedCert(ctx, "one.example", c))
	must(t, db.DeleteProject(context.Background(), "p1"))
	if got, _ := db.ListUploadedCerts(ctx, "", true); len(got) != 0 {
		t.Errorf("a deleted project's certificate stays: %+v", got)
	}
}

func testServiceClientAuth(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	domain(t, db, "p1", "one.example")
	s := service("p1", "api", "one.example", "api.one.example")
	s.ClientCA, s.ClientAuth = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", "require"
	must(t, db.CreateService(ctx, s))
	got, err := db.GetService(ctx, "p1", "api")
	must(t, err)
	if got.ClientCA != s.ClientCA || got.ClientAuth != "require" {
		t.Fatalf("GetService = %q %q", got.ClientCA, got.ClientAuth)
	}
	_, err = db.UpdateService(ctx, "p1", "api", func(cur *store.Service) error {
		cur.ClientAuth = "optional"
		return nil
	})
	must(t, err)
	ss, err := db.ListServices(ctx, "p1")
	must(t, err)
	if len(ss) != 1 || ss[0].ClientAuth != "optional" || ss[0].ClientCA != s.ClientCA {
		t.Fatalf("after update: %+v", ss)
	}
}
