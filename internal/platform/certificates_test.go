package platform

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// perName hides the store's ListCertStatus, so that ListCertificates reads
// name by name.
type perName struct{ Store }

// ListCertificates gives the same answer whether it reads every status in
// one query (a project with more than manyCertificates names) or one name
// at a time, and leaves out another project's statuses.
func TestListCertificatesOneReadOrPerName(t *testing.T) {
	p := newTestPlatform(t, Options{})
	ctx := context.Background()
	db := p.store.(*store.DB)
	now := time.Now().UTC().Truncate(time.Second)
	for _, d := range []store.Domain{
		{Name: "one.test", ProjectID: "p1", Status: store.DomainVerified, CreatedAt: now, VerifiedAt: now},
		{Name: "two.test", ProjectID: "p2", Status: store.DomainVerified, CreatedAt: now, VerifiedAt: now},
		{Name: "wait.test", ProjectID: "p1", Status: store.DomainPending, VerifyToken: "x", CreatedAt: now},
	} {
		if err := db.CreateDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	svc := store.Service{ID: "s1", ProjectID: "p1", Name: "big", Domain: "one.test", Upstreams: []string{"http://127.0.0.1:9"}, CreatedAt: now, UpdatedAt: now}
	svc.Hostnames = []string{"big.one.test", "x.wait.test"} // the second is not served: pending domain
	for i := range manyCertificates + 10 {
		svc.Hostnames = append(svc.Hostnames, fmt.Sprintf("h%03d.one.test", i))
	}
	if err := db.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	other := store.Service{ID: "s2", ProjectID: "p2", Name: "other", Domain: "two.test", Hostnames: []string{"other.two.test"},
		Upstreams: []string{"http://127.0.0.1:9"}, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateService(ctx, other); err != nil {
		t.Fatal(err)
	}
	for i, h := range append(svc.Hostnames[2:], "other.two.test") {
		st := store.CertStatus{Hostname: h, Status: store.CertActive, Issuer: "test", NotBefore: now, NotAfter: now.Add(time.Hour), UpdatedAt: now}
		if i%7 == 0 {
			continue // no status recorded: pending
		}
		if err := db.PutCertStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	one, err := p.ListCertificates(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	each, err := New(perName{db}, Options{}).ListCertificates(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != len(svc.Hostnames) || !reflect.DeepEqual(one, each) {
		t.Fatalf("one read: %d certificates, per name: %d; equal %v", len(one), len(each), reflect.DeepEqual(one, each))
	}
	if one[1].Hostname != "x.wait.test" || one[1].Status != store.CertPending || one[1].Error == "" {
		t.Errorf("the name under a pending domain: %+v", one[1])
	}
	if one[2].Status != store.CertPending || one[3].Status != store.CertActive {
		t.Errorf("statuses: %+v, %+v", one[2], one[3])
	}
}
