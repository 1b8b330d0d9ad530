package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// flakyStore answers service and token reads from maps, or fails them all
// with store.ErrUnavailable while down. Its other methods are not used.
type flakyStore struct {
	platform.Store
	down     bool
	services map[string]store.Service
	tokens   map[string]store.Credential
}

func (f *flakyStore) GetService(_ context.Context, projectID, name string) (store.Service, error) {
	if f.down {
		return store.Service{}, fmt.Errorf("reading service: %w", store.ErrUnavailable)
	}
	s, ok := f.services[projectID+"/"+name]
	if !ok {
		return s, fmt.Errorf("service %s: %w", name, store.ErrNotFound)
	}
	return s, nil
}

func (f *flakyStore) TokenByHash(_ context.Context, hash string) (store.Credential, error) {
	if f.down {
		return store.Credential{}, fmt.Errorf("reading token: %w", store.ErrUnavailable)
	}
	p, ok := f.tokens[hash]
	if !ok {
		return p, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	return p, nil
}

func (f *flakyStore) ListServices(_ context.Context, projectID string) ([]store.Service, error) {
	if f.down {
		return nil, fmt.Errorf("listing services: %w", store.ErrUnavailable)
	}
	var out []store.Service
	for _, s := range f.services {
		if s.ProjectID == projectID {
			out = append(out, s)
		}
	}
	return out, nil
}

// request returns the context of an API request, and whether its answer
// was marked stale.
func request() (context.Context, *atomic.Bool) {
	flag := new(atomic.Bool)
	return context.WithValue(context.Background(), staleKey{}, flag), flag
}

// A read the store answered is answered again, marked stale, while the
// store is away; one the store said is gone, or never read, is not.
func TestStaleReadsAnswerWhileStoreIsAway(t *testing.T) {
	st := &flakyStore{
		services: map[string]store.Service{"p/a": {ProjectID: "p", Name: "a"}, "p/b": {ProjectID: "p", Name: "b"}},
		tokens:   map[string]store.Credential{"h1": {Project: store.Project{ID: "p"}}, "h2": {Project: store.Project{ID: "p"}}},
	}
	s := NewStaleReads(st)
	ctx, stale := request()
	for _, name := range []string{"a", "b"} {
		if _, err := s.GetService(ctx, "p", name); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"h1", "h2"} {
		if _, err := s.TokenByHash(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if stale.Load() {
		t.Fatal("an answer of the store was marked stale")
	}
	// b and h2 are gone from the store: forgotten at their next read.
	delete(st.services, "p/b")
	delete(st.tokens, "h2")
	if _, err := s.GetService(ctx, "p", "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted service: %v, want ErrNotFound", err)
	}
	v := s.TokensVersion()
	if _, err := s.TokenByHash(ctx, "h2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoked token: %v, want ErrNotFound", err)
	}
	if s.TokensVersion() == v || len(s.Tokens()) != 1 {
		t.Errorf("a revoked token is still remembered: %v", s.Tokens())
	}

	st.down = true
	ctx, stale = request()
	if sv, err := s.GetService(ctx, "p", "a"); err != nil || sv.Name != "a" || !stale.Load() {
		t.Errorf("service a while the store is away: %+v, %v, stale %v; want the last answer, marked stale", sv, err, stale.Load())
	}
	ctx, stale = request()
	if c, err := s.TokenByHash(ctx, "h1"); err != nil || c.Project.ID != "p" || !stale.Load() {
		t.Errorf("token h1 while the store is away: %+v, %v, stale %v; want the last answer, marked stale", c, err, stale.Load())
	}
	for _, read := range []func(ctx context.Context) error{
		func(ctx context.Context) error { _, err := s.GetService(ctx, "p", "b"); return err },
		func(ctx context.Context) error { _, err := s.GetService(ctx, "p", "never-read"); return err },
		func(ctx context.Context) error { _, err := s.TokenByHash(ctx, "h2"); return err },
	} {
		ctx, stale = request()
		if err := read(ctx); !errors.Is(err, store.ErrUnavailable) || stale.Load() {
			t.Errorf("a forgotten or never read answer while the store is away: %v, stale %v; want ErrUnavailable", err, stale.Load())
		}
	}
}

// Seeded services answer while the store is away; a full memo is emptied,
// so it never holds more than its bound.
func TestStaleReadsSeedAndBound(t *testing.T) {
	st := &flakyStore{down: true}
	s := NewStaleReads(st)
	s.Seed([]store.Service{{ProjectID: "p", Name: "a"}})
	ctx, stale := request()
	if sv, err := s.GetService(ctx, "p", "a"); err != nil || sv.Name != "a" || !stale.Load() {
		t.Errorf("seeded service: %+v, %v, stale %v", sv, err, stale.Load())
	}
	// A project with no service lists none, once SeedEmpty said so; one
	// that has services keeps them.
	s.SeedEmpty([]string{"empty", "p"})
	ctx, stale = request()
	if ss, err := s.ListServices(ctx, "empty"); err != nil || len(ss) != 0 || !stale.Load() {
		t.Errorf("a project without services: %+v, %v, stale %v", ss, err, stale.Load())
	}
	if ss, err := s.ListServices(ctx, "p"); err != nil || len(ss) != 1 {
		t.Errorf("SeedEmpty replaced a seeded project's services: %+v, %v", ss, err)
	}
	for i := range maxStaleReads + 1 {
		s.remember(fmt.Sprint("k", i), i)
	}
	if n := len(s.memo); n > maxStaleReads {
		t.Errorf("memo holds %d answers, bound %d", n, maxStaleReads)
	}
	// Pages of a thousand rows: the rows they hold together are bounded
	// too, and counted right when a page is remembered again.
	rows := make([]store.ServiceSummary, 1000)
	for i := range maxStaleRows/1000 + 5 {
		s.remember(fmt.Sprint("page", i), page[store.ServiceSummary]{rows: rows, total: 1_000_000})
		s.remember("page0", page[store.ServiceSummary]{rows: rows[:10]})
		sum := 0
		for _, e := range s.memo {
			sum += e.rows
		}
		if sum != s.rows || s.rows > maxStaleRows {
			t.Fatalf("after page %d: %d rows remembered, counted %d, bound %d", i, sum, s.rows, maxStaleRows)
		}
	}
	for i := range maxStaleTokens + 1 {
		s.RememberToken(fmt.Sprint("h", i), store.Credential{Project: store.Project{ID: "p"}})
	}
	if n := len(s.Tokens()); n > maxStaleTokens {
		t.Errorf("%d token look-ups remembered, bound %d", n, maxStaleTokens)
	}
}

// SetTokens, at each sync, forgets a token revoked since the last one
// even if it was never read again, and keeps, while the store is away,
// what each remembered token may do and until when.
func TestStaleReadsSetTokens(t *testing.T) {
	st := &flakyStore{}
	s := NewStaleReads(st)
	p := store.Project{ID: "p", Name: "p"}
	exp := time.Unix(1000, 0).UTC()
	s.SetTokens([]store.Project{p}, []store.Token{
		{ID: "t1", ProjectID: "p", Name: "ci", Hash: "h1", Scopes: []string{"read"}, ExpiresAt: exp},
		{ID: "t2", ProjectID: "p", Name: "old", Hash: "h2"},
		{ID: "t3", ProjectID: "gone", Name: "x", Hash: "h3"}, // its project is not in the list
	})
	if got := s.Tokens(); len(got) != 2 || got["h1"].Token.Name != "ci" || !got["h1"].Token.ExpiresAt.Equal(exp) {
		t.Fatalf("after a sync: %+v", got)
	}
	v := s.TokensVersion()
	s.SetTokens([]store.Project{p}, []store.Token{{ID: "t1", ProjectID: "p", Name: "ci", Hash: "h1", Scopes: []string{"read"}, ExpiresAt: exp}})
	if s.TokensVersion() == v {
		t.Error("a revocation did not change the version (the snapshot would keep the token)")
	}
	if !s.TokensComplete() {
		t.Error("a sync's whole list is not complete")
	}
	st.down = true
	ctx, stale := request()
	// The list is every token as of the last sync: a hash it lacks is no
	// token (401), not a failure of the store (503).
	if _, err := s.TokenByHash(ctx, "h2"); !errors.Is(err, store.ErrNotFound) || !stale.Load() {
		t.Errorf("a token revoked before the store went away: %v, stale %v; want ErrNotFound, marked stale", err, stale.Load())
	}
	// Without a whole list (a look-up memo only), the store's failure stands.
	partial := NewStaleReads(&flakyStore{down: true})
	partial.SeedTokens(map[string]store.Credential{"h1": {Project: p}}, false)
	if _, err := partial.TokenByHash(context.Background(), "h2"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("an unknown token without a whole list: %v, want ErrUnavailable", err)
	}
	ctx, stale = request()
	if c, err := s.TokenByHash(ctx, "h1"); err != nil || !stale.Load() || c.Token.Name != "ci" || !c.Token.ExpiresAt.Equal(exp) {
		t.Errorf("a remembered token while the store is away: %+v, %v", c, err)
	}
	v = s.TokensVersion()
	s.SetTokens([]store.Project{p}, []store.Token{{ID: "t1", ProjectID: "p", Name: "ci", Hash: "h1", Scopes: []string{"read"}, ExpiresAt: exp, LastUsedAt: exp}})
	if s.TokensVersion() != v {
		t.Error("a new last use alone changed the version (the snapshot would be rewritten for it)")
	}
}

func (f *flakyStore) ListServiceSummaries(context.Context, store.ServiceQuery) ([]store.ServiceSummary, int, error) {
	return nil, 0, fmt.Errorf("listing services: %w", store.ErrUnavailable) // only read with the store away here
}

func (f *flakyStore) ListHostnames(_ context.Context, q store.HostnameQuery) ([]store.HostnameRow, int, error) {
	if f.down {
		return nil, 0, fmt.Errorf("listing hostnames: %w", store.ErrUnavailable)
	}
	return []store.HostnameRow{{Service: "web", Cert: store.CertStatus{Hostname: "a." + q.Search, Status: store.CertActive}}}, 7, nil
}

// A dashboard page read while the store answered is answered again, marked
// stale, while it does not, whatever "now" its query carries; one never
// read fails.
func TestStaleReadsHostnamePages(t *testing.T) {
	f := &flakyStore{}
	s := NewStaleReads(f)
	now := time.Now()
	q := store.HostnameQuery{ProjectID: "p1", Search: "one", Problems: &store.Problems{Now: now}, Limit: 50}
	rows, total, err := s.ListHostnames(context.Background(), q)
	if err != nil || total != 7 || len(rows) != 1 {
		t.Fatalf("store up: %v %d %v", rows, total, err)
	}
	f.down = true
	q.Problems = &store.Problems{Now: now.Add(time.Second)}
	ctx, stale := request()
	rows, total, err = s.ListHostnames(ctx, q)
	if err != nil || total != 7 || len(rows) != 1 || rows[0].Cert.Hostname != "a.one" || !stale.Load() {
		t.Fatalf("store down: %v %d %v, stale %v; want the last answer, marked stale", rows, total, err, stale.Load())
	}
	q.Search = "two"
	if _, _, err := s.ListHostnames(context.Background(), q); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a page never read, store down: %v, want ErrUnavailable", err)
	}
}

// SeedSnapshot: a snapshot's services, its token look-ups, and no services
// for a token's project that has none, all answered while the store is away.
func TestStaleReadsSeedSnapshot(t *testing.T) {
	s := NewStaleReads(&flakyStore{down: true})
	s.SeedSnapshot([]store.Service{{ProjectID: "p", Name: "a"}},
		map[string]store.Credential{"h1": {Project: store.Project{ID: "p"}}, "h2": {Project: store.Project{ID: "empty"}}}, true)
	ctx, stale := request()
	if sv, err := s.GetService(ctx, "p", "a"); err != nil || sv.Name != "a" || !stale.Load() {
		t.Errorf("the snapshot's service: %+v, %v, stale %v", sv, err, stale.Load())
	}
	if ss, err := s.ListServices(ctx, "empty"); err != nil || len(ss) != 0 {
		t.Errorf("a token's project without services: %+v, %v", ss, err)
	}
	if c, err := s.TokenByHash(ctx, "h2"); err != nil || c.Project.ID != "empty" || !s.TokensComplete() {
		t.Errorf("the snapshot's token: %+v, %v, complete %v", c, err, s.TokensComplete())
	}
}

// countingFinder counts the questions asked of a store.ServiceFinder.
type countingFinder struct {
	store.ServiceFinder
	n *int
}

func (f countingFinder) FindService(projectID, name string) (store.Service, bool) {
	*f.n++
	return f.ServiceFinder.FindService(projectID, name)
}

func (f countingFinder) ProjectServices(projectID, after string, offset, limit int) ([]store.Service, int) {
	*f.n++
	return f.ServiceFinder.ProjectServices(projectID, after, offset, limit)
}

// The seeded services are asked only when a read needs them with the
// store away, and answer as the store did at the seed: every service
// sorted by project and name, a project's, none for a project without
// any. A read answered after the seed answers instead of it, until the
// next seed; a service the store said is gone is not answered from an
// older seed.
func TestStaleReadsSeedServicesLazily(t *testing.T) {
	st := &flakyStore{services: map[string]store.Service{"p/a": {ProjectID: "p", Name: "a", HSTSMaxAge: 1}}}
	s := NewStaleReads(st)
	listed := 0
	seed := func(svcs ...store.Service) {
		s.SeedServices(countingFinder{&listedServices{all: svcs}, &listed})
	}
	seed(store.Service{ProjectID: "q", Name: "z"}, store.Service{ProjectID: "p", Name: "b"}, store.Service{ProjectID: "p", Name: "a"})
	ctx := context.Background()
	if _, err := s.GetService(ctx, "p", "a"); err != nil { // answered by the store: newer than the seed
		t.Fatal(err)
	}
	if _, err := s.GetService(ctx, "p", "b"); !errors.Is(err, store.ErrNotFound) { // gone since the seed
		t.Fatalf("b: %v, want ErrNotFound", err)
	}
	if listed != 0 {
		t.Fatalf("the seeded services were asked %d times while the store answered", listed)
	}
	st.down = true
	ctx, stale := request()
	if sv, err := s.GetService(ctx, "p", "a"); err != nil || sv.HSTSMaxAge != 1 || !stale.Load() {
		t.Errorf("a, read after the seed: %+v, %v, stale %v; want the store's last answer", sv, err, stale.Load())
	}
	if _, err := s.GetService(ctx, "p", "b"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("b, gone since the seed: %v, want ErrUnavailable", err)
	}
	if sv, err := s.GetService(ctx, "q", "z"); err != nil || sv.Name != "z" {
		t.Errorf("z, seeded only: %+v, %v", sv, err)
	}
	var got []string
	all, err := s.ListServices(ctx, "")
	for _, sv := range all {
		got = append(got, sv.ProjectID+"/"+sv.Name)
	}
	if err != nil || fmt.Sprint(got) != "[p/a p/b q/z]" {
		t.Errorf("every service: %v, %v; want [p/a p/b q/z]", got, err)
	}
	if ss, err := s.ListServices(ctx, "p"); err != nil || len(ss) != 2 {
		t.Errorf("p's services: %+v, %v", ss, err)
	}
	if ss, err := s.ListServices(ctx, "none"); err != nil || len(ss) != 0 {
		t.Errorf("a project without services: %+v, %v", ss, err)
	}
	if listed != 4 {
		t.Errorf("the seeded services were asked %d times, want 4: z and the three lists, which no later answer covers", listed)
	}
	// GET /v1/services' pages: from the seed, by name; a query the seed
	// cannot answer (a search, counts, some hostnames only) is not.
	page := store.ServiceQuery{ProjectID: "p", Hostnames: store.AllHostnames, Offset: 1, Limit: 5}
	if rows, total, err := s.ListServiceSummaries(ctx, page); err != nil || total != 2 || len(rows) != 1 || rows[0].Name != "b" {
		t.Errorf("p's page from 1: %+v, total %d, %v; want b of 2", rows, total, err)
	}
	page = store.ServiceQuery{ProjectID: "p", Hostnames: store.AllHostnames, After: "a", Limit: 5}
	if rows, total, err := s.ListServiceSummaries(ctx, page); err != nil || total != 2 || len(rows) != 1 || rows[0].Name != "b" {
		t.Errorf("p's page after a: %+v, total %d, %v; want b of 2", rows, total, err)
	}
	for _, q := range []store.ServiceQuery{{ProjectID: "p", Hostnames: store.AllHostnames, Search: "a"}, {ProjectID: "p", Hostnames: 3}, {ProjectID: "p", Hostnames: store.AllHostnames, Counts: true}} {
		if _, _, err := s.ListServiceSummaries(ctx, q); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%+v from the seed: %v, want ErrUnavailable", q, err)
		}
	}
	// A later seed (a delta that changed a) answers over the older read.
	seed(store.Service{ProjectID: "p", Name: "a", HSTSMaxAge: 2})
	if sv, err := s.GetService(ctx, "p", "a"); err != nil || sv.HSTSMaxAge != 2 {
		t.Errorf("a after a newer seed: %+v, %v; want the seed's", sv, err)
	}
	if _, err := s.GetService(ctx, "q", "z"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("z, deleted by the newer seed and never read: %v, want ErrUnavailable", err)
	}
}

// A snapshot's list (by project and name) is searched where it is, with
// no copy; a list in another order is sorted, a copy, and left as it was.
// Both answer alike.
func TestListedServices(t *testing.T) {
	var sorted []store.Service
	for _, p := range []string{"p1", "p2", "p3"} {
		for _, n := range []string{"a", "b", "c", "d"} {
			sorted = append(sorted, store.Service{ProjectID: p, Name: n})
		}
	}
	shuffled := slices.Clone(sorted)
	slices.Reverse(shuffled)
	before := slices.Clone(shuffled)
	for _, tc := range []struct {
		name    string
		list    []store.Service
		inPlace bool
	}{{"sorted", sorted, true}, {"reversed", shuffled, false}} {
		d := &listedServices{all: tc.list}
		if sv, ok := d.FindService("p2", "c"); !ok || sv.ProjectID != "p2" || sv.Name != "c" {
			t.Fatalf("%s: p2/c: %+v %v", tc.name, sv, ok)
		}
		for _, q := range [][2]string{{"p2", "e"}, {"p0", "a"}, {"p4", "a"}, {"", "a"}} {
			if sv, ok := d.FindService(q[0], q[1]); ok {
				t.Fatalf("%s: %s/%s found: %+v", tc.name, q[0], q[1], sv)
			}
		}
		if got := &d.all[0] == &tc.list[0]; got != tc.inPlace {
			t.Fatalf("%s: searched in place %v, want %v", tc.name, got, tc.inPlace)
		}
		names := func(ss []store.Service) string {
			var b strings.Builder
			for _, s := range ss {
				b.WriteString(s.ProjectID + "/" + s.Name + " ")
			}
			return b.String()
		}
		for _, q := range []struct {
			project, after string
			offset, limit  int
			want           string
			total          int
		}{
			{"p2", "", 0, 0, "p2/a p2/b p2/c p2/d ", 4},
			{"p2", "b", 0, 0, "p2/c p2/d ", 4},
			{"p2", "", 1, 2, "p2/b p2/c ", 4},
			{"p3", "d", 0, 0, "", 4},
			{"p9", "", 0, 0, "", 0},
			{"", "", 10, 5, "p3/c p3/d ", 12},
		} {
			ss, total := d.ProjectServices(q.project, q.after, q.offset, q.limit)
			if names(ss) != q.want || total != q.total {
				t.Fatalf("%s: %+v: %q, %d", tc.name, q, names(ss), total)
			}
		}
	}
	if !slices.EqualFunc(shuffled, before, func(a, b store.Service) bool { return a.ProjectID == b.ProjectID && a.Name == b.Name }) {
		t.Fatal("the caller's list was reordered")
	}
}
