package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// testTokens: a token is found by its hash with its project; names are
// unique within a project, not across projects; a conflict never names
// the hash; deleting by name makes the hash unknown.
func testTokens(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	must(t, db.CreateToken(ctx, store.Token{ID: "t1", ProjectID: "p1", Name: "ci", Hash: "h1"}))
	must(t, db.CreateToken(ctx, store.Token{ID: "t2", ProjectID: "p2", Name: "ci", Hash: "h2"}))

	c, err := db.TokenByHash(ctx, "h2")
	must(t, err)
	if c.Project.ID != "p2" || c.Project.Name != "name-p2" || c.Token.ID != "t2" || c.Token.Name != "ci" {
		t.Errorf("TokenByHash(h2) = %+v, want t2 of p2", c)
	}
	_, err = db.TokenByHash(ctx, "nope")
	wantErr(t, err, store.ErrNotFound, "token")

	err = db.CreateToken(ctx, store.Token{ID: "t3", ProjectID: "p1", Name: "dup", Hash: "h1"})
	wantErr(t, err, store.ErrConflict, "token")
	if strings.Contains(err.Error(), "h1") {
		t.Errorf("error %q shows the token hash", err)
	}
	wantErr(t, db.CreateToken(ctx, store.Token{ID: "t3", ProjectID: "p1", Name: "ci", Hash: "h3"}), store.ErrConflict, `token "ci"`)
	wantErr(t, db.CreateToken(ctx, store.Token{ID: "t4", ProjectID: "ghost", Name: "x", Hash: "h4"}), store.ErrNotFound, `project "ghost"`)

	wantErr(t, db.DeleteToken(ctx, "p1", "nope"), store.ErrNotFound, `token "nope"`)
	wantErr(t, db.DeleteToken(ctx, "p2", "dup"), store.ErrNotFound, `token "dup"`) // another project's name
	must(t, db.DeleteToken(ctx, "p1", "ci"))
	if _, err := db.TokenByHash(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a deleted token's hash: %v, want ErrNotFound", err)
	}
	if c, err := db.TokenByHash(ctx, "h2"); err != nil || c.Token.ID != "t2" {
		t.Errorf("deleting p1's ci touched p2's: %+v, %v", c, err)
	}
	// The name is free again.
	must(t, db.CreateToken(ctx, store.Token{ID: "t5", ProjectID: "p1", Name: "ci", Hash: "h5"}))

	// Each creation and revocation is an event of its project, naming the
	// token and never its hash.
	es, err := db.ListEvents(ctx, "p1", 0, 100)
	must(t, err)
	var got []string
	for _, e := range es {
		got = append(got, e.Type+" "+e.Subject)
		if strings.Contains(string(e.Data), "h1") || strings.Contains(string(e.Data), "h5") {
			t.Errorf("event %+v shows a token hash", e)
		}
	}
	if want := []string{"token.created ci", "token.revoked ci", "token.created ci"}; !slices.Equal(got, want) {
		t.Errorf("p1's events = %v, want %v", got, want)
	}
}

// testTokenScopesExpiry: scopes, expiry and creation time round-trip; the
// list is per project (or all), sorted by project and name.
func testTokenScopesExpiry(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	want := store.Token{ID: "t1", ProjectID: "p1", Name: "deploy", Hash: "h1", Scopes: []string{"read", "services:write"},
		CreatedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
	must(t, db.CreateToken(ctx, want))
	must(t, db.CreateToken(ctx, store.Token{ID: "t2", ProjectID: "p1", Name: "all", Hash: "h2", CreatedAt: t0}))
	must(t, db.CreateToken(ctx, store.Token{ID: "t3", ProjectID: "p2", Name: "b", Hash: "h3", CreatedAt: t0}))

	c, err := db.TokenByHash(ctx, "h1")
	must(t, err)
	if !tokenEqual(c.Token, want) {
		t.Errorf("TokenByHash = %+v, want %+v", c.Token, want)
	}
	ts, err := db.ListTokens(ctx, "p1")
	must(t, err)
	if names := tokenNames(ts); !slices.Equal(names, []string{"p1/all", "p1/deploy"}) {
		t.Errorf("ListTokens(p1) = %v", names)
	}
	if len(ts) == 2 && (ts[0].Scopes != nil || !ts[0].ExpiresAt.IsZero() || !tokenEqual(ts[1], want)) {
		t.Errorf("ListTokens(p1) = %+v", ts)
	}
	ts, err = db.ListTokens(ctx, "")
	must(t, err)
	if names := tokenNames(ts); !slices.Equal(names, []string{"p1/all", "p1/deploy", "p2/b"}) {
		t.Errorf("ListTokens(\"\") = %v", names)
	}
	if ts, err := db.ListTokens(ctx, "ghost"); err != nil || len(ts) != 0 {
		t.Errorf("ListTokens(ghost) = %v, %v", ts, err)
	}
}

func tokenEqual(a, b store.Token) bool {
	return a.ID == b.ID && a.ProjectID == b.ProjectID && a.Name == b.Name && a.Hash == b.Hash &&
		slices.Equal(a.Scopes, b.Scopes) && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.LastUsedAt.Equal(b.LastUsedAt)
}

func tokenNames(ts []store.Token) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ProjectID+"/"+t.Name)
	}
	return out
}

// testTouchTokens: last use moves forward only, by at least the step, in
// one batch; unknown IDs are skipped.
func testTouchTokens(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	must(t, db.CreateToken(ctx, store.Token{ID: "t1", ProjectID: "p1", Name: "a", Hash: "h1", CreatedAt: t0}))
	must(t, db.CreateToken(ctx, store.Token{ID: "t2", ProjectID: "p1", Name: "b", Hash: "h2", CreatedAt: t0}))
	used := func(hash string) time.Time {
		t.Helper()
		c, err := db.TokenByHash(ctx, hash)
		must(t, err)
		return c.Token.LastUsedAt
	}
	if u := used("h1"); !u.IsZero() {
		t.Fatalf("a new token's last use = %v, want zero", u)
	}
	must(t, db.TouchTokens(ctx, nil, time.Minute))
	must(t, db.TouchTokens(ctx, []store.TokenUse{{ID: "t1", At: t0.Add(time.Hour)}, {ID: "ghost", At: t0}, {ID: "t2", At: t0.Add(2 * time.Hour)}}, time.Minute))
	if u := used("h1"); !u.Equal(t0.Add(time.Hour)) {
		t.Errorf("t1 last used %v, want %v", u, t0.Add(time.Hour))
	}
	if u := used("h2"); !u.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("t2 last used %v, want %v", u, t0.Add(2*time.Hour))
	}
	// Within the step, and backwards: unchanged.
	must(t, db.TouchTokens(ctx, []store.TokenUse{{ID: "t1", At: t0.Add(time.Hour + 30*time.Second)}, {ID: "t2", At: t0}}, time.Minute))
	if u := used("h1"); !u.Equal(t0.Add(time.Hour)) {
		t.Errorf("t1 moved within the step: %v", u)
	}
	if u := used("h2"); !u.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("t2 moved backwards: %v", u)
	}
	must(t, db.TouchTokens(ctx, []store.TokenUse{{ID: "t1", At: t0.Add(time.Hour + time.Minute)}}, time.Minute))
	if u := used("h1"); !u.Equal(t0.Add(time.Hour + time.Minute)) {
		t.Errorf("t1 a step later: %v", u)
	}
}

// testSuspendProject: suspension is recorded and shown by every read of
// the project, and lifted by a zero time.
func testSuspendProject(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	must(t, db.CreateToken(ctx, store.Token{ID: "t1", ProjectID: "p1", Name: "a", Hash: "h1"}))
	wantErr(t, db.SuspendProject(ctx, "ghost", t0), store.ErrNotFound, `project "ghost"`)
	must(t, db.SuspendProject(ctx, "p1", t0))
	p, err := db.GetProject(ctx, "p1")
	must(t, err)
	if !p.SuspendedAt.Equal(t0) {
		t.Errorf("GetProject after suspend: %+v", p)
	}
	c, err := db.TokenByHash(ctx, "h1")
	must(t, err)
	if !c.Project.SuspendedAt.Equal(t0) {
		t.Errorf("TokenByHash's project after suspend: %+v", c.Project)
	}
	ps, err := db.ListProjects(ctx)
	must(t, err)
	if len(ps) != 2 || !ps[0].SuspendedAt.Equal(t0) || !ps[1].SuspendedAt.IsZero() {
		t.Errorf("ListProjects after suspending p1: %+v", ps)
	}
	must(t, db.SuspendProject(ctx, "p1", time.Time{}))
	if p, err := db.GetProject(ctx, "p1"); err != nil || !p.SuspendedAt.IsZero() {
		t.Errorf("GetProject after resume: %+v, %v", p, err)
	}
}

// testDeleteProject: one call removes the project's services, hostnames,
// their certificate status, domains and tokens, and nothing of another
// project's; the domains are free to add again.
func testDeleteProject(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	project(t, db, "p1")
	project(t, db, "p2")
	domain(t, db, "p1", "one.test")
	domain(t, db, "p1", "other.test")
	domain(t, db, "p2", "two.test")
	must(t, db.CreateService(ctx, service("p1", "web", "one.test", "web.one.test", "www.other.test")))
	must(t, db.CreateService(ctx, service("p2", "web", "two.test", "web.two.test")))
	must(t, db.CreateToken(ctx, store.Token{ID: "t1", ProjectID: "p1", Name: "a", Hash: "h1"}))
	must(t, db.CreateToken(ctx, store.Token{ID: "t2", ProjectID: "p2", Name: "a", Hash: "h2"}))
	for _, h := range []string{"web.one.test", "www.other.test", "web.two.test"} {
		must(t, db.PutCertStatus(ctx, store.CertStatus{Hostname: h, Status: store.CertActive}))
	}
	must(t, db.AppendAudit(ctx, store.AuditEntry{ProjectID: "p1", Action: "service.create", Result: "ok"}))

	wantErr(t, db.DeleteProject(ctx, "ghost"), store.ErrNotFound, `project "ghost"`)
	must(t, db.DeleteProject(ctx, "p1"))

	if _, err := db.GetProject(ctx, "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetProject after delete: %v", err)
	}
	for _, d := range []string{"one.test", "other.test"} {
		if _, err := db.GetDomain(ctx, d); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("domain %s after its project was deleted: %v", d, err)
		}
	}
	if _, err := db.TokenByHash(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token after its project was deleted: %v", err)
	}
	for _, h := range []string{"web.one.test", "www.other.test"} {
		if _, err := db.GetCertStatus(ctx, h); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("certificate status of %s after its project was deleted: %v", h, err)
		}
	}
	ss, err := db.ListServices(ctx, "")
	must(t, err)
	if len(ss) != 1 || ss[0].ProjectID != "p2" {
		t.Errorf("services after deleting p1: %+v", ss)
	}
	if _, err := db.TokenByHash(ctx, "h2"); err != nil {
		t.Errorf("p2's token after deleting p1: %v", err)
	}
	if _, err := db.GetCertStatus(ctx, "web.two.test"); err != nil {
		t.Errorf("p2's certificate status after deleting p1: %v", err)
	}
	// The audit trail stays; the domains and hostnames are free.
	if es, err := db.ListAudit(ctx, store.AuditQuery{ProjectID: "p1"}); err != nil || len(es) != 1 {
		t.Errorf("audit of the deleted project: %+v, %v", es, err)
	}
	domain(t, db, "p2", "one.test")
	must(t, db.CreateService(ctx, service("p2", "again", "one.test", "web.one.test")))
}

// testAudit: entries get increasing IDs, list newest first, per project or
// all, and page with Before and Limit.
func testAudit(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	if es, err := db.ListAudit(ctx, store.AuditQuery{}); err != nil || len(es) != 0 {
		t.Fatalf("ListAudit on an empty store: %v, %v", es, err)
	}
	for i := range 5 {
		p := []string{"p1", "p2", ""}[i%3]
		must(t, db.AppendAudit(ctx, store.AuditEntry{At: t0.Add(time.Duration(i) * time.Second), ProjectID: p, Token: "tok",
			Action: fmt.Sprintf("action-%d", i), Subject: "s", Result: "ok", Status: 200, Client: "127.0.0.1"}))
	}
	all, err := db.ListAudit(ctx, store.AuditQuery{})
	must(t, err)
	if len(all) != 5 || all[0].Action != "action-4" || all[4].Action != "action-0" {
		t.Fatalf("ListAudit = %+v", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Errorf("IDs not decreasing: %d then %d", all[i-1].ID, all[i].ID)
		}
	}
	e := all[4]
	if !e.At.Equal(t0) || e.ProjectID != "p1" || e.Token != "tok" || e.Subject != "s" || e.Result != "ok" || e.Status != 200 || e.Client != "127.0.0.1" {
		t.Errorf("entry = %+v", e)
	}
	p1, err := db.ListAudit(ctx, store.AuditQuery{ProjectID: "p1"})
	must(t, err)
	if len(p1) != 2 || p1[0].Action != "action-3" || p1[1].Action != "action-0" {
		t.Errorf("ListAudit(p1) = %+v", p1)
	}
	page, err := db.ListAudit(ctx, store.AuditQuery{Before: all[1].ID, Limit: 2})
	must(t, err)
	if len(page) != 2 || page[0].ID != all[2].ID || page[1].ID != all[3].ID {
		t.Errorf("ListAudit(before %d, limit 2) = %+v", all[1].ID, page)
	}
}

// testAuditPrune: entries older than the cut go, and of each project all
// but the newest keep.
func testAuditPrune(t *testing.T, db *store.DB) {
	ctx := ctxT(t)
	add := func(p string, at time.Time) {
		must(t, db.AppendAudit(ctx, store.AuditEntry{At: at, ProjectID: p, Action: "a", Result: "ok"}))
	}
	for i := range 4 {
		add("p1", t0.Add(time.Duration(i)*time.Hour))
	}
	for i := range 2 {
		add("p2", t0.Add(time.Duration(i)*time.Hour))
	}
	add("", t0.Add(3*time.Hour))
	n, err := db.PruneAudit(ctx, t0.Add(time.Hour), 2) // drops p1 0h, p2 0h by age; p1 1h by count
	must(t, err)
	if n != 3 {
		t.Errorf("PruneAudit deleted %d, want 3", n)
	}
	es, err := db.ListAudit(ctx, store.AuditQuery{})
	must(t, err)
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%s@%v", e.ProjectID, e.At.Sub(t0)))
	}
	if want := []string{"@3h0m0s", "p2@1h0m0s", "p1@3h0m0s", "p1@2h0m0s"}; !slices.Equal(got, want) {
		t.Errorf("after pruning: %v, want %v", got, want)
	}
}
