package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// testHostnameReads: a project's hostnames counted by zone and status,
// paged, searched and filtered, and its services summarised, in the
// database; another project's never appear.
func testHostnameReads(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "one.example")
	domain(t, db, "p2", "two.example")
	must(t, db.CreateDomain(ctx, store.Domain{Name: "wait.one.example", ProjectID: "p1", Status: store.DomainPending, VerifyToken: "tok", CreatedAt: t0}))
	day := 24 * time.Hour
	must(t, db.CreateService(ctx, service("p1", "web", "one.example", "web.one.example", "a.one.example", "b_x.one.example", "one.example")))
	must(t, db.CreateService(ctx, service("p1", "api", "one.example", "api.one.example", "up.one.example", "x.wait.one.example")))
	must(t, db.CreateService(ctx, service("p2", "web", "two.example", "web.two.example", "a.two.example")))
	put := func(h, status string, notBefore, notAfter time.Time, errText string) {
		t.Helper()
		must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: h, Status: status, Issuer: "CA " + h, NotBefore: notBefore, NotAfter: notAfter, Error: errText, UpdatedAt: t0}))
	}
	put("web.one.example", store.CertActive, t0.Add(-day), t0.Add(60*day), "")
	put("a.one.example", store.CertFailed, time.Time{}, time.Time{}, "the CA refused")
	// b_x: no record, so pending. one.example (a domain itself) ends in
	// 3 days of 90, well into its renewal window: late.
	put("one.example", store.CertActive, t0.Add(-87*day), t0.Add(3*day), "")
	put("api.one.example", store.CertActive, t0.Add(-day), t0.Add(5*day), "") // expiring, renewal not late (a 6-day life)
	put("x.wait.one.example", store.CertActive, t0.Add(-day), t0.Add(60*day), "")
	put("up.one.example", store.CertIssuing, time.Time{}, time.Time{}, "")
	put("web.two.example", store.CertFailed, time.Time{}, time.Time{}, "p2's failure")
	put("a.two.example", store.CertActive, t0.Add(-day), t0.Add(2*day), "")
	up := store.UploadedCert{Hostname: "up.one.example", ProjectID: "p1", Chain: []byte("c"), Key: []byte("k"), Issuer: "Own CA",
		NotBefore: t0, NotAfter: t0.Add(90 * day), SHA256: "aa", UploadedAt: t0.Add(time.Minute)}
	must(t, db.PutUploadedCert(ctx, "one.example", up))
	lone := up
	lone.Hostname, lone.NotAfter = "lone.one.example", t0.Add(2*day)
	must(t, db.PutUploadedCert(ctx, "one.example", lone))

	zones, err := db.HostnameZones(ctx, "p1")
	must(t, err)
	// one.example is a hostname and a domain: its own zone (and "example",
	// its parent, is no one's).
	if want := []string{"example", "one.example", "wait.one.example"}; !slices.Equal(zones, want) {
		t.Errorf("HostnameZones(p1) = %q, want %q", zones, want)
	}
	unserved := []string{"wait.one.example"}
	count := func(unserved []string) []string {
		t.Helper()
		counts, err := db.CountHostnames(ctx, "p1", t0.Add(7*day), unserved)
		must(t, err)
		var got []string
		for _, c := range counts {
			got = append(got, fmt.Sprintf("%s %d %d", c.Status, c.Count, c.Expiring))
		}
		return got
	}
	// web, api (expiring), one.example itself (expiring), x.wait; lone
	// (expiring) and up uploaded.
	if got, want := count(nil), []string{"active 4 2", "failed 1 0", "pending 1 0", "uploaded 2 1"}; !slices.Equal(got, want) {
		t.Errorf("CountHostnames(p1) = %q, want %q", got, want)
	}
	if got, want := count(unserved), []string{"active 3 2", "failed 1 0", "pending 2 0", "uploaded 2 1"}; !slices.Equal(got, want) {
		t.Errorf("CountHostnames(p1, %q unserved) = %q, want %q", unserved, got, want)
	}
	// "example" is one.example's parent, but one.example is a domain: its
	// own zone.
	if got, want := count([]string{"example"}), []string{"active 4 2", "failed 1 0", "pending 1 0", "uploaded 2 1"}; !slices.Equal(got, want) {
		t.Errorf("CountHostnames(p1, example unserved) = %q, want %q", got, want)
	}
	// one.example unserved: every hostname under it and itself, not those
	// of wait.one.example's zone, nor an uploaded certificate no service has.
	if got, want := count([]string{"one.example"}), []string{"active 1 0", "pending 6 0", "uploaded 1 1"}; !slices.Equal(got, want) {
		t.Errorf("CountHostnames(p1, one.example unserved) = %q, want %q", got, want)
	}

	list := func(q store.HostnameQuery) ([]string, int) {
		t.Helper()
		q.ProjectID = "p1"
		rows, total, err := db.ListHostnames(ctx, q)
		must(t, err)
		var out []string
		for _, r := range rows {
			out = append(out, fmt.Sprintf("%s %s %v %s", r.Cert.Hostname, r.Service, r.Unserved, r.Cert.Status))
		}
		return out, total
	}
	check := func(name string, q store.HostnameQuery, wantTotal int, want ...string) {
		t.Helper()
		got, total := list(q)
		if !slices.Equal(got, want) || total != wantTotal {
			t.Errorf("%s: ListHostnames = %q (of %d), want %q (of %d)", name, got, total, want, wantTotal)
		}
	}
	check("all", store.HostnameQuery{Unserved: unserved}, 8,
		"a.one.example web false failed", "api.one.example api false active", "b_x.one.example web false pending",
		"lone.one.example  false uploaded", "one.example web false active", "up.one.example api false uploaded",
		"web.one.example web false active", "x.wait.one.example api true pending")
	check("page 2", store.HostnameQuery{Unserved: unserved, Offset: 2, Limit: 2}, 8,
		"b_x.one.example web false pending", "lone.one.example  false uploaded")
	check("past the end", store.HostnameQuery{Unserved: unserved, Offset: 20, Limit: 2}, 8)
	check("search", store.HostnameQuery{Search: "b_x"}, 1, "b_x.one.example web false pending")
	check("search, _ is no wildcard", store.HostnameQuery{Search: "a_"}, 0)
	check("pending, with unserved", store.HostnameQuery{Status: store.CertPending, Unserved: unserved}, 2,
		"b_x.one.example web false pending", "x.wait.one.example api true pending")
	check("active, without unserved", store.HostnameQuery{Status: store.CertActive}, 4,
		"api.one.example api false active", "one.example web false active", "web.one.example web false active",
		"x.wait.one.example api false active")
	check("uploaded", store.HostnameQuery{Status: store.CertUploaded, Unserved: unserved}, 2,
		"lone.one.example  false uploaded", "up.one.example api false uploaded")
	// one.example unserved: its hostnames pending whatever their record or
	// upload, not lone.one.example, which no service has.
	check("active, one.example unserved", store.HostnameQuery{Status: store.CertActive, Unserved: []string{"one.example"}}, 1,
		"x.wait.one.example api false active")
	check("uploaded, one.example unserved", store.HostnameQuery{Status: store.CertUploaded, Unserved: []string{"one.example"}}, 1,
		"lone.one.example  false uploaded")
	check("pending, one.example unserved, page 3", store.HostnameQuery{Status: store.CertPending, Unserved: []string{"one.example"}, Offset: 4, Limit: 2}, 6,
		"up.one.example api true pending", "web.one.example web true pending")
	check("service", store.HostnameQuery{Service: "api", Unserved: unserved}, 3,
		"api.one.example api false active", "up.one.example api false uploaded", "x.wait.one.example api true pending")
	check("hostname", store.HostnameQuery{Hostname: "web.two.example"}, 0) // p2's
	check("expiring", store.HostnameQuery{EndsBefore: t0.Add(7 * day), Unserved: unserved}, 3,
		"api.one.example api false active", "lone.one.example  false uploaded", "one.example web false active")
	check("problems", store.HostnameQuery{Problems: &store.Problems{Now: t0, EndsBefore: t0.Add(7 * day), RenewalRatio: 1.0 / 3}, Unserved: unserved}, 3,
		"a.one.example web false failed", "one.example web false active", "x.wait.one.example api true pending")

	rows, _, err := db.ListHostnames(ctx, store.HostnameQuery{ProjectID: "p1", Hostname: "up.one.example"})
	must(t, err)
	if len(rows) != 1 || rows[0].Cert.Issuer != "Own CA" || !rows[0].Cert.NotAfter.Equal(up.NotAfter) || !rows[0].Cert.UpdatedAt.Equal(up.UploadedAt) {
		t.Errorf("uploaded hostname = %+v, want the uploaded certificate's issuer and validity", rows)
	}
	rows, _, err = db.ListHostnames(ctx, store.HostnameQuery{ProjectID: "p1", Hostname: "a.one.example"})
	must(t, err)
	if len(rows) != 1 || rows[0].Cert.Error != "the CA refused" || rows[0].Cert.Issuer != "CA a.one.example" {
		t.Errorf("failed hostname = %+v, want its record", rows)
	}

	// Without uploaded certificates the reads leave uploaded_certs out:
	// the same answers, up.one.example now its record's (issuing) and
	// lone.one.example gone.
	must(t, db.DeleteUploadedCert(ctx, "p1", "up.one.example"))
	must(t, db.DeleteUploadedCert(ctx, "p1", "lone.one.example"))
	if got, want := count(nil), []string{"active 4 2", "failed 1 0", "issuing 1 0", "pending 1 0"}; !slices.Equal(got, want) {
		t.Errorf("no uploads: CountHostnames(p1) = %q, want %q", got, want)
	}
	if got, want := count(unserved), []string{"active 3 2", "failed 1 0", "issuing 1 0", "pending 2 0"}; !slices.Equal(got, want) {
		t.Errorf("no uploads: CountHostnames(p1, %q unserved) = %q, want %q", unserved, got, want)
	}
	if got, want := count([]string{"one.example"}), []string{"active 1 0", "pending 6 0"}; !slices.Equal(got, want) {
		t.Errorf("no uploads: CountHostnames(p1, one.example unserved) = %q, want %q", got, want)
	}
	check("no uploads: all", store.HostnameQuery{Unserved: unserved}, 7,
		"a.one.example web false failed", "api.one.example api false active", "b_x.one.example web false pending",
		"one.example web false active", "up.one.example api false issuing", "web.one.example web false active",
		"x.wait.one.example api true pending")
	check("no uploads: page 2", store.HostnameQuery{Unserved: unserved, Offset: 2, Limit: 2}, 7,
		"b_x.one.example web false pending", "one.example web false active")
	check("no uploads: past the end", store.HostnameQuery{Unserved: unserved, Offset: 20, Limit: 2}, 7)
	check("no uploads: pending, with unserved, page 2", store.HostnameQuery{Status: store.CertPending, Unserved: unserved, Offset: 1, Limit: 1}, 2,
		"x.wait.one.example api true pending")
	check("no uploads: issuing", store.HostnameQuery{Status: store.CertIssuing}, 1, "up.one.example api false issuing")
	check("no uploads: uploaded", store.HostnameQuery{Status: store.CertUploaded, Unserved: unserved}, 0)
	check("no uploads: active, one.example unserved", store.HostnameQuery{Status: store.CertActive, Unserved: []string{"one.example"}}, 1,
		"x.wait.one.example api false active")
	check("no uploads: pending, one.example unserved, page 3", store.HostnameQuery{Status: store.CertPending, Unserved: []string{"one.example"}, Offset: 4, Limit: 2}, 6,
		"up.one.example api true pending", "web.one.example web true pending")
	check("no uploads: search", store.HostnameQuery{Search: "one.ex", Status: store.CertActive, Limit: 2}, 4,
		"api.one.example api false active", "one.example web false active")
	check("no uploads: service", store.HostnameQuery{Service: "api", Unserved: unserved}, 3,
		"api.one.example api false active", "up.one.example api false issuing", "x.wait.one.example api true pending")
	check("no uploads: expiring", store.HostnameQuery{EndsBefore: t0.Add(7 * day), Unserved: unserved}, 2,
		"api.one.example api false active", "one.example web false active")
	check("no uploads: problems", store.HostnameQuery{Problems: &store.Problems{Now: t0, EndsBefore: t0.Add(7 * day), RenewalRatio: 1.0 / 3}, Unserved: unserved}, 3,
		"a.one.example web false failed", "one.example web false active", "x.wait.one.example api true pending")
	rows, _, err = db.ListHostnames(ctx, store.HostnameQuery{ProjectID: "p1", Hostname: "up.one.example"})
	must(t, err)
	if len(rows) != 1 || rows[0].Cert.Issuer != "CA up.one.example" || rows[0].Cert.Status != store.CertIssuing {
		t.Errorf("no uploads: up.one.example = %+v, want its record", rows)
	}

	sums := func(q store.ServiceQuery) ([]string, int) {
		t.Helper()
		q.ProjectID = "p1"
		ss, total, err := db.ListServiceSummaries(ctx, q)
		must(t, err)
		var out []string
		for _, s := range ss {
			if s.ProjectID != "p1" || len(s.Upstreams) != 1 {
				t.Errorf("summary %+v", s)
			}
			out = append(out, fmt.Sprintf("%s %d/%d %v", s.Name, s.ActiveCount, s.HostnameCount, s.Hostnames))
		}
		return out, total
	}
	for _, c := range []struct {
		name  string
		q     store.ServiceQuery
		want  []string
		total int
	}{
		{"all", store.ServiceQuery{Hostnames: 2, Counts: true, Unserved: unserved}, []string{"api 1/3 [api.one.example up.one.example]", "web 2/4 [web.one.example a.one.example]"}, 2},
		{"no hostnames, all served", store.ServiceQuery{Counts: true}, []string{"api 2/3 []", "web 2/4 []"}, 2},
		{"no counts", store.ServiceQuery{}, []string{"api 0/0 []", "web 0/0 []"}, 2},
		{"by hostname, matching first", store.ServiceQuery{Search: "wait", Hostnames: 1, Counts: true}, []string{"api 2/3 [x.wait.one.example]"}, 1},
		{"by name", store.ServiceQuery{Search: "we", Hostnames: 1, Counts: true}, []string{"web 2/4 [web.one.example]"}, 1},
		{"page 2", store.ServiceQuery{Offset: 1, Limit: 1, Counts: true}, []string{"web 2/4 []"}, 2},
		{"past the end", store.ServiceQuery{Offset: 5, Limit: 1}, nil, 2},
		{"after a name, every hostname", store.ServiceQuery{After: "api", Hostnames: store.AllHostnames}, []string{"web 0/0 [web.one.example a.one.example b_x.one.example one.example]"}, 2},
		{"after a name not there", store.ServiceQuery{After: "b", Limit: 1}, []string{"web 0/0 []"}, 2},
		{"after the last", store.ServiceQuery{After: "web"}, nil, 2},
		{"after and a search", store.ServiceQuery{After: "a", Search: "we"}, []string{"web 0/0 []"}, 1},
		{"nothing", store.ServiceQuery{Search: "two"}, nil, 0},
	} {
		got, total := sums(c.q)
		if !slices.Equal(got, c.want) || total != c.total {
			t.Errorf("%s: ListServiceSummaries = %q (of %d), want %q (of %d)", c.name, got, total, c.want, c.total)
		}
	}
}
