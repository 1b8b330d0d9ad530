package platform

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// clock is a settable time for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// caller authenticates tok on p, failing the test on error.
func authAs(t *testing.T, p *Platform, tok string) Caller {
	t.Helper()
	c, err := p.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatalf("authenticating: %v", err)
	}
	return c
}

func TestEffectiveScopes(t *testing.T) {
	all := []string{ScopeRead, ScopeServicesWrite, ScopeDomainsWrite, ScopeTokensWrite, ScopeWebhooksWrite, ScopeCertificatesWrite}
	for _, tc := range []struct {
		stored, want []string
	}{
		{nil, all},
		{[]string{ScopeRead}, []string{ScopeRead}},
		{[]string{ScopeOperator}, append(slices.Clone(all), ScopeOperator)},
		{[]string{ScopeOperator, ScopeRead}, []string{ScopeRead, ScopeOperator}},
		{[]string{ScopeTokensWrite, ScopeServicesWrite}, []string{ScopeServicesWrite, ScopeTokensWrite}},
	} {
		if got := EffectiveScopes(tc.stored); !slices.Equal(got, tc.want) {
			t.Errorf("EffectiveScopes(%v) = %v, want %v", tc.stored, got, tc.want)
		}
	}
}

func TestParseLifetime(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "12h": 12 * time.Hour, "90m": 90 * time.Minute, "10s": 10 * time.Second, "3650d": MaxTokenLifetime} {
		if got, err := ParseLifetime(in); err != nil || got != want {
			t.Errorf("ParseLifetime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0d", "-1d", "9s", "3651d", "1.5d", "d", "soon", "1y", "30 days"} {
		if _, err := ParseLifetime(in); err == nil {
			t.Errorf("ParseLifetime(%q) accepted", in)
		} else {
			wantCode(t, err, "invalid_expiry", "lifetime")
		}
	}
}

// A token gets what its maker has, never more; its value carries the
// prefix; only its hash is stored.
func TestCreateTokenNeverExceedsItsMaker(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	p := newTestPlatform(t, Options{Now: clk.now})
	ctx := context.Background()
	_, initial, err := p.CreateProject(ctx, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(initial, "spine_") || len(initial) != len("spine_")+43 {
		t.Fatalf("token %q: want spine_ and 43 base64url characters", initial)
	}
	owner := authAs(t, p, initial)
	if !slices.Equal(EffectiveScopes(owner.Token.Scopes), ProjectScopes()) || owner.Has(ScopeOperator) {
		t.Fatalf("a new project's initial token: scopes %v, operator %v", owner.Token.Scopes, owner.Has(ScopeOperator))
	}

	ro, roTok, err := p.CreateToken(ctx, owner, TokenSpec{Name: "ro", Scopes: []string{"read", "read"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ro.Scopes, []string{"read"}) || ro.ProjectID != owner.Project.ID {
		t.Errorf("read-only token %+v", ro)
	}
	if c := authAs(t, p, roTok); c.Token.Hash != HashToken(roTok) || c.Token.Name != "ro" {
		t.Errorf("stored as %+v, want its hash only", c.Token)
	}
	_, _, err = p.CreateToken(ctx, owner, TokenSpec{Name: "op", Scopes: []string{ScopeOperator}})
	wantCode(t, err, "missing_scope", `"operator"`)
	_, _, err = p.CreateToken(ctx, owner, TokenSpec{Name: "x", Scopes: []string{"admin"}})
	wantCode(t, err, "invalid_scope", `"admin"`)
	_, _, err = p.CreateToken(ctx, owner, TokenSpec{Name: "ro", Scopes: []string{"read"}})
	wantCode(t, err, "conflict", `"ro"`)
	_, _, err = p.CreateToken(ctx, owner, TokenSpec{Name: "Bad Name"})
	wantCode(t, err, "invalid_name", "lower-case")

	// A tokens:write token with few scopes passes on only those.
	tw, twTok, err := p.CreateToken(ctx, owner, TokenSpec{Name: "tw", Scopes: []string{ScopeTokensWrite, ScopeRead}, ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	twc := authAs(t, p, twTok)
	_, _, err = p.CreateToken(ctx, twc, TokenSpec{Name: "svc", Scopes: []string{ScopeServicesWrite}})
	wantCode(t, err, "missing_scope", `"services:write"`)
	child, _, err := p.CreateToken(ctx, twc, TokenSpec{Name: "child", ExpiresIn: "30m"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(child.Scopes, tw.Scopes) {
		t.Errorf("a token made without scopes by %v got %v", tw.Scopes, child.Scopes)
	}
	// ... and none that outlives it.
	_, _, err = p.CreateToken(ctx, twc, TokenSpec{Name: "forever"})
	wantCode(t, err, "invalid_expiry", "cannot outlive")
	_, _, err = p.CreateToken(ctx, twc, TokenSpec{Name: "longer", ExpiresIn: "2h"})
	wantCode(t, err, "invalid_expiry", "cannot outlive")
	// It cannot revoke a token with more scopes than it has.
	wantCode(t, p.RevokeToken(ctx, twc, "initial"), "missing_scope", `"services:write"`)
	if err := p.RevokeToken(ctx, twc, "ro"); err != nil {
		t.Errorf("revoking a read-only token with a tokens:write one: %v", err)
	}
	wantCode(t, p.RevokeToken(ctx, twc, "ro"), "not_found", `"ro"`)
	if _, err := p.Authenticate(ctx, roTok); err == nil {
		t.Error("a revoked token still authenticates")
	} else {
		wantCode(t, err, "unauthorized", "not valid")
	}
	// Nothing refused was stored.
	ts, err := p.ListTokens(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tk := range ts {
		names = append(names, tk.Name)
	}
	if !slices.Equal(names, []string{"child", "initial", "tw"}) {
		t.Errorf("tokens = %v", names)
	}
}

// An expired token is refused from its stored expiry on, with a message
// that says when it expired.
func TestExpiredTokenRefused(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	p := newTestPlatform(t, Options{Now: clk.now})
	ctx := context.Background()
	_, initial, _ := p.CreateProject(ctx, "tenant")
	_, tok, err := p.CreateToken(ctx, authAs(t, p, initial), TokenSpec{Name: "short", ExpiresIn: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	clk.add(time.Hour - time.Second)
	authAs(t, p, tok)
	clk.add(time.Second)
	_, err = p.Authenticate(ctx, tok)
	wantCode(t, err, "token_expired", "2026-01-02T04:04:05Z")
}

// Scope checks name the scope; a suspended project's token reads but
// changes nothing.
func TestRequire(t *testing.T) {
	c := Caller{Project: store.Project{ID: "p", Name: "p"}, Token: store.Token{Name: "ci", Scopes: []string{ScopeRead}}}
	if err := c.Require(ScopeRead); err != nil {
		t.Error(err)
	}
	wantCode(t, c.Require(ScopeServicesWrite), "missing_scope", `"services:write"`)
	c.Token.Scopes = nil
	c.Project.SuspendedAt = time.Unix(1, 0)
	if err := c.Require(ScopeRead); err != nil {
		t.Errorf("reading in a suspended project: %v", err)
	}
	wantCode(t, c.Require(ScopeDomainsWrite), "project_suspended", "suspended")
}

// Last use is written in batches, at most once a minute per token, and
// never on the request path; a failed flush keeps its uses; the book is
// bounded.
func TestTokenUsage(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	p := newTestPlatform(t, Options{Now: clk.now})
	ctx := context.Background()
	_, tok, _ := p.CreateProject(ctx, "tenant")
	lastUsed := func() time.Time {
		t.Helper()
		ts, err := p.ListTokens(ctx, authAs(t, p, tok))
		if err != nil {
			t.Fatal(err)
		}
		return ts[0].LastUsedAt
	}
	first := clk.now()
	authAs(t, p, tok)
	if u := lastUsed(); !u.IsZero() {
		t.Fatalf("last use written before a flush: %v", u)
	}
	if n, err := p.FlushUsage(ctx); err != nil || n != 1 {
		t.Fatalf("FlushUsage = %d, %v; want 1", n, err)
	}
	if u := lastUsed(); !u.Equal(first) {
		t.Errorf("last used %v, want %v", u, first)
	}
	clk.add(30 * time.Second)
	authAs(t, p, tok)
	if n, _ := p.FlushUsage(ctx); n != 0 {
		t.Errorf("%d writes for a use within the minute", n)
	}
	clk.add(31 * time.Second)
	authAs(t, p, tok)
	if n, _ := p.FlushUsage(ctx); n != 1 {
		t.Errorf("%d writes for a use a minute later", n)
	}
	if u := lastUsed(); !u.Equal(first.Add(61 * time.Second)) {
		t.Errorf("last used %v, want %v", u, first.Add(61*time.Second))
	}

	// Bounded: beyond maxPendingUses, uses wait for the next flush's room.
	var b usageBook
	for i := range maxPendingUses + 5 {
		b.note(string(rune('a'+i%26))+strings.Repeat("x", i/26), first)
	}
	uses, dropped := b.take()
	if len(uses) != maxPendingUses || dropped != 5 {
		t.Errorf("book of %d+5 uses: took %d, dropped %d", maxPendingUses, len(uses), dropped)
	}
	b.putBack(uses[:3])
	if again, _ := b.take(); len(again) != 3 {
		t.Errorf("put back 3 uses, took %d", len(again))
	}
}

// Only an operator reads another project's audit trail; an operator reads
// every project's by default.
func TestAuditScope(t *testing.T) {
	p := newTestPlatform(t, Options{})
	ctx := context.Background()
	for _, e := range []store.AuditEntry{{ProjectID: "p1", Action: "a"}, {ProjectID: "p2", Action: "b"}} {
		if err := p.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	tenant := Caller{Project: store.Project{ID: "p1", Name: "p1"}, Token: store.Token{Name: "t"}}
	es, err := p.Audit(ctx, tenant, AuditQuery{})
	if err != nil || len(es) != 1 || es[0].ProjectID != "p1" {
		t.Errorf("a tenant's own audit: %+v, %v", es, err)
	}
	_, err = p.Audit(ctx, tenant, AuditQuery{Project: "p2"})
	wantCode(t, err, "missing_scope", `"operator"`)
	op := Caller{Project: store.Project{ID: DefaultProjectID, Name: "default"}, Token: store.Token{Name: "admin", Scopes: []string{ScopeOperator}}}
	if es, err := p.Audit(ctx, op, AuditQuery{}); err != nil || len(es) != 2 {
		t.Errorf("the operator's audit: %+v, %v", es, err)
	}
	if es, err := p.Audit(ctx, op, AuditQuery{Project: "p2"}); err != nil || len(es) != 1 || es[0].ProjectID != "p2" {
		t.Errorf("the operator's audit of p2: %+v, %v", es, err)
	}
	_, err = p.Audit(ctx, op, AuditQuery{Project: "ghost"})
	wantCode(t, err, "not_found", `"ghost"`)
}

// The default project can be neither suspended nor deleted; others can,
// by name or ID, and resumed.
func TestProjectLifecycle(t *testing.T) {
	p := newTestPlatform(t, Options{})
	ctx := context.Background()
	if _, err := p.Bootstrap(ctx, t.TempDir()+"/admin.token"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{
		func() error { _, err := p.SuspendProject(ctx, DefaultProjectID, true); return err },
		func() error { _, err := p.DeleteProject(ctx, "default"); return err },
	} {
		wantCode(t, f(), "default_project", "cannot be suspended or deleted")
	}
	pr, _, err := p.CreateProject(ctx, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.SuspendProject(ctx, "tenant", true); err != nil || got.SuspendedAt.IsZero() {
		t.Errorf("suspend by name: %+v, %v", got, err)
	}
	if got, err := p.SuspendProject(ctx, pr.ID, false); err != nil || !got.SuspendedAt.IsZero() {
		t.Errorf("resume by ID: %+v, %v", got, err)
	}
	if _, err := p.DeleteProject(ctx, "tenant"); err != nil {
		t.Fatal(err)
	}
	_, err = p.DeleteProject(ctx, "tenant")
	wantCode(t, err, "not_found", `"tenant"`)
	_, err = p.SuspendProject(ctx, "Bad Name", true)
	wantCode(t, err, "invalid_name", "lower-case")
}
