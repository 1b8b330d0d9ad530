package platform

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// ListHostnames and CountHostnames, which count and page in the store,
// report every hostname as ListCertificates does: a hostname under a
// pending domain (itself under a verified one) is pending with the reason; an uploaded certificate wins over a managed
// one; one of a hostname no service has is listed too; a hostname that is
// a domain itself follows its own domain.
func TestListHostnamesAsListCertificates(t *testing.T) {
	p := newTestPlatform(t, Options{})
	ctx := context.Background()
	db := p.store.(*store.DB)
	now := time.Now().UTC().Truncate(time.Second)
	for _, d := range []store.Domain{
		{Name: "one.test", ProjectID: "p1", Status: store.DomainVerified, CreatedAt: now, VerifiedAt: now},
		{Name: "sub.one.test", ProjectID: "p1", Status: store.DomainVerified, CreatedAt: now, VerifiedAt: now},
		{Name: "wait.one.test", ProjectID: "p1", Status: store.DomainPending, VerifyToken: "x", CreatedAt: now},
		{Name: "two.test", ProjectID: "p2", Status: store.DomainVerified, CreatedAt: now, VerifiedAt: now},
	} {
		if err := db.CreateDomain(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	svc := store.Service{ID: "s1", ProjectID: "p1", Name: "web", Domain: "one.test", Upstreams: []string{"http://127.0.0.1:9"}, CreatedAt: now, UpdatedAt: now,
		Hostnames: []string{"web.one.test", "one.test", "a.one.test", "b.one.test", "x.wait.one.test", "wait.one.test", "x.sub.one.test", "up.one.test", "c.d.one.test"}}
	if err := db.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	other := store.Service{ID: "s2", ProjectID: "p2", Name: "web", Domain: "two.test", Hostnames: []string{"web.two.test"},
		Upstreams: []string{"http://127.0.0.1:9"}, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateService(ctx, other); err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	for i, h := range []string{"web.one.test", "one.test", "a.one.test", "x.wait.one.test", "wait.one.test", "x.sub.one.test", "up.one.test", "c.d.one.test", "web.two.test"} {
		st := store.CertStatus{Hostname: h, Status: []string{store.CertActive, store.CertFailed, store.CertIssuing}[i%3], Issuer: "CA", NotBefore: now.Add(-day), NotAfter: now.Add(time.Duration(i+1) * day), UpdatedAt: now}
		if st.Status == store.CertFailed {
			st.Error = "refused"
		}
		if err := db.PutCertStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"up.one.test", "lone.one.test"} {
		if err := db.PutUploadedCert(ctx, "one.test", store.UploadedCert{Hostname: h, ProjectID: "p1", Chain: []byte("c"), Key: []byte("k"),
			Issuer: "Own", NotBefore: now, NotAfter: now.Add(3 * day), SHA256: "aa", UploadedAt: now}); err != nil {
			t.Fatal(err)
		}
	}

	want, err := p.ListCertificates(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b Certificate) int { return cmp.Compare(a.Hostname, b.Hostname) })
	got, total, err := p.ListHostnames(ctx, "p1", HostnameFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if total != len(want) || !reflect.DeepEqual(got, want) {
		t.Fatalf("ListHostnames (%d) =\n%+v\nListCertificates (%d) =\n%+v", total, got, len(want), want)
	}
	for _, c := range want {
		if (c.Hostname == "x.wait.one.test" || c.Hostname == "wait.one.test") && (c.Status != store.CertPending || c.Error == "") {
			t.Errorf("a hostname under a pending domain: %+v, want pending with the reason", c)
		}
	}

	endsBefore := now.Add(4 * day)
	counts, err := p.CountHostnames(ctx, "p1", endsBefore)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := HostnameCounts{ByStatus: map[string]int{}}
	for _, c := range want {
		wantCounts.Total++
		wantCounts.ByStatus[c.Status]++
		if !c.NotAfter.IsZero() && c.NotAfter.Before(endsBefore) {
			wantCounts.Expiring++
		}
	}
	if !reflect.DeepEqual(counts, wantCounts) {
		t.Errorf("CountHostnames = %+v, want %+v", counts, wantCounts)
	}

	for _, st := range []string{store.CertPending, store.CertActive, store.CertFailed, store.CertUploaded} {
		got, total, err := p.ListHostnames(ctx, "p1", HostnameFilter{Status: st, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		var all []Certificate
		for _, c := range want {
			if c.Status == st {
				all = append(all, c)
			}
		}
		if total != len(all) || !reflect.DeepEqual(got, all[:min(2, len(all))]) {
			t.Errorf("status %s: %d %+v, want %d %+v", st, total, got, len(all), all)
		}
	}
}
