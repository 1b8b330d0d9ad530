// Reads while the store is away: the API answers from the node's last known
// state, marked stale, instead of failing.

package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// Bounds of a StaleReads: the remembered answers and the remembered token
// look-ups. When one is full, it is emptied (and refilled by the reads that
// follow while the store answers).
const (
	maxStaleReads  = 20000
	maxStaleTokens = 50000
	// maxStaleRows bounds the rows the remembered answers hold together
	// (a list's services, a page's rows; 1 for any other answer): a
	// client that read every page of a project of a million services, a
	// thousand a page, took the node from 0.5 to 1.3 GiB when only the
	// answers were counted.
	maxStaleRows = 100_000
)

// StaleReads is a platform.Store for a Platform whose API answers reads
// from the last known state while the store is unreachable. Every method
// is its store's; the reads the API makes (projects, token look-ups,
// domains, services, certificate status) remember their last answer, and
// when the store fails with store.ErrUnavailable they return that answer
// instead and mark the request's answer stale (MarkStale: header Warning:
// 110). Writes are untouched: they fail with store.ErrUnavailable, which
// the API answers with 503.
//
// Its contract, as a cache:
//   - bound: maxStaleReads answers holding maxStaleRows rows together, and
//     maxStaleTokens tokens; a full map is emptied whole (SetTokens keeps
//     the most recently used);
//   - staleness: an answer is never returned while the store answers; when
//     it does not, the answer may be as old as the last read of that key
//     or, for the service reads, the last sync or delta (Seed,
//     SeedServices), whichever came last, and is marked stale;
//   - invalidation: each successful read replaces its answer; a read the
//     store answers with store.ErrNotFound forgets it (a revoked token, a
//     deleted service), the seeded services' answer too; writes do not
//     invalidate (the next read does); SetTokens, at each sync, replaces
//     every token, so that a revoked one is forgotten within the
//     propagation time even if never read; each sync and delta replaces
//     the seeded services.
//
// The seeded services cost nothing until the store is away: SeedServices
// keeps a store.ServiceFinder over the applied services, which indexes
// them by project and name at the first read that needs it (8 bytes a
// service), so a node's sync of a million services does no per-service
// work here, and a read copies only the services it answers.
//
// It is safe for concurrent use.
type StaleReads struct {
	platform.Store

	mu   sync.Mutex
	memo map[string]memoEntry
	rows int             // of memo's entries (memoEntry.rows), at most maxStaleRows
	seq  uint64          // orders memo entries and seeds: the later one answers
	seed *seededServices // nil before the first seed
	// tokens are the token look-ups answered, by token hash (SHA-256 of
	// the token, as the store keeps it; never a token), kept apart from
	// memo so that a node's snapshot can keep them (Tokens).
	tokens    map[string]store.Credential
	tokensGen uint64 // counts the changes of tokens
	// complete: tokens holds every token of the store as of the last
	// SetTokens (or the snapshot's such list), so a hash it lacks is no
	// token at all, not merely one never looked up.
	complete bool
}

// NewStaleReads returns st with its reads remembered.
func NewStaleReads(st platform.Store) *StaleReads {
	return &StaleReads{Store: st, memo: make(map[string]memoEntry), tokens: make(map[string]store.Credential)}
}

// memoEntry is a remembered answer; gone marks one the store said is gone
// (kept so that the seeded services do not answer for it).
type memoEntry struct {
	v    any
	seq  uint64
	rows int // rowsOf(v)
	gone bool
}

func (s *StaleReads) remember(key string, v any) { s.put(key, memoEntry{v: v, rows: rowsOf(v)}) }

// rowsOf is the weight of an answer in maxStaleRows: its rows for a list
// or a page, else 1.
func rowsOf(v any) int {
	switch v := v.(type) {
	case []store.Service:
		return max(1, len(v))
	case page[store.ServiceSummary]:
		return max(1, len(v.rows))
	case page[store.HostnameRow]:
		return max(1, len(v.rows))
	case []store.Domain:
		return max(1, len(v))
	case []store.CertStatus:
		return max(1, len(v))
	}
	return 1
}

func (s *StaleReads) put(key string, e memoEntry) {
	e.rows = max(e.rows, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.memo[key]
	if !ok && len(s.memo) >= maxStaleReads || s.rows-old.rows+e.rows > maxStaleRows {
		clear(s.memo)
		s.rows, old = 0, memoEntry{}
	}
	s.seq++
	e.seq = s.seq
	s.memo[key] = e
	s.rows += e.rows - old.rows
}

// staleRead runs f, remembering its answer under key; if the store is
// unreachable, it returns the remembered answer instead, if any, or, when
// the seeded services are newer and seeded answers for key, theirs. An
// answer that the store says is gone is forgotten.
func staleRead[T any](s *StaleReads, ctx context.Context, key string, f func() (T, error), seeded func(*seededServices) (T, bool)) (T, error) {
	v, err := f()
	if err == nil {
		s.remember(key, v)
		return v, nil
	}
	if !errors.Is(err, store.ErrUnavailable) {
		if errors.Is(err, store.ErrNotFound) {
			s.put(key, memoEntry{gone: true})
		}
		return v, err
	}
	s.mu.Lock()
	old, ok := s.memo[key]
	seed := s.seed
	s.mu.Unlock()
	if seeded != nil && seed != nil && (!ok || seed.seq > old.seq) {
		if sv, found := seeded(seed); found {
			MarkStale(ctx)
			return sv, nil
		}
	}
	if !ok || old.gone {
		return v, err
	}
	MarkStale(ctx)
	return old.v.(T), nil
}

// seededServices are every served service as of a sync or delta (or the
// snapshot a node started from), and when they were seeded.
type seededServices struct {
	seq  uint64
	find store.ServiceFinder
}

func (d *seededServices) service(projectID, name string) (store.Service, bool) {
	return d.find.FindService(projectID, name)
}

// services answers ListServices as the store did at the seed: every
// service for "", else the project's (none for a project without any,
// as the store answers).
func (d *seededServices) services(projectID string) ([]store.Service, bool) {
	ss, _ := d.find.ProjectServices(projectID, "", 0, 0)
	return ss, true
}

// summaries answers a ListServiceSummaries page as the store did at the
// seed, for a query the seed can answer: a page of a project's services
// by name, every hostname of each, no search and no counts.
func (d *seededServices) summaries(q store.ServiceQuery) (page[store.ServiceSummary], bool) {
	if q.Search != "" || q.Counts || q.Hostnames < store.AllHostnames {
		return page[store.ServiceSummary]{}, false
	}
	ss, total := d.find.ProjectServices(q.ProjectID, q.After, q.Offset, q.Limit)
	p := page[store.ServiceSummary]{rows: make([]store.ServiceSummary, 0, len(ss)), total: total}
	for _, s := range ss {
		p.rows = append(p.rows, store.ServiceSummary{Service: s})
	}
	return p, true
}

// listedServices is a store.ServiceFinder over a list of services (a
// snapshot's), searched in place: a snapshot lists them by project and
// name already (the store's order), so a read at a million services costs
// a binary search, not a copy and a map of every one (about 400 MB). A list
// in another order is sorted once, a copy, at the first read.
type listedServices struct {
	once sync.Once
	all  []store.Service // by project, then name
}

func compareService(a, b store.Service) int {
	if c := cmp.Compare(a.ProjectID, b.ProjectID); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

func (d *listedServices) sorted() []store.Service {
	d.once.Do(func() {
		if !slices.IsSortedFunc(d.all, compareService) {
			d.all = slices.Clone(d.all) // the caller's list is its own
			slices.SortFunc(d.all, compareService)
		}
	})
	return d.all
}

// project returns the services of the project with ID id ("": every one).
func (d *listedServices) project(id string) []store.Service {
	all := d.sorted()
	if id == "" {
		return all
	}
	from := sort.Search(len(all), func(i int) bool { return all[i].ProjectID >= id })
	to := from + sort.Search(len(all)-from, func(i int) bool { return all[from+i].ProjectID > id })
	return all[from:to:to]
}

func (d *listedServices) FindService(projectID, name string) (store.Service, bool) {
	if projectID == "" {
		return store.Service{}, false
	}
	ss := d.project(projectID)
	i, ok := slices.BinarySearchFunc(ss, name, func(s store.Service, name string) int { return cmp.Compare(s.Name, name) })
	if !ok {
		return store.Service{}, false
	}
	return ss[i], true
}

func (d *listedServices) ProjectServices(projectID, after string, offset, limit int) ([]store.Service, int) {
	ss := d.project(projectID)
	total := len(ss)
	if after != "" {
		ss = ss[sort.Search(len(ss), func(i int) bool { return ss[i].Name > after }):]
	}
	from := min(max(offset, 0), len(ss))
	to := len(ss)
	if limit > 0 && limit < to-from {
		to = from + limit
	}
	if from == to {
		return nil, total
	}
	return slices.Clone(ss[from:to]), total
}

// Seed remembers svcs, every service of the store as a sync read them (or
// a snapshot held them), as the answers of the service reads: indexed at
// the first read that needs them; svcs must not be modified.
func (s *StaleReads) Seed(svcs []store.Service) {
	s.SeedServices(&listedServices{all: svcs})
}

// SeedServices is Seed of the services find answers for, asked only if the
// store is away at a service read that no later answer covers. A node
// calls it after each sync and each delta with the applied services
// (serving.AppliedServices), which it indexes by project and name only
// when first asked.
func (s *StaleReads) SeedServices(find store.ServiceFinder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.seed = &seededServices{seq: s.seq, find: find}
}

// SeedEmpty remembers, for each project of ids that Seed gave no service,
// that it has none: a node started from its snapshot then lists such a
// project's services (none, marked stale) instead of failing.
func (s *StaleReads) SeedEmpty(ids []string) {
	for _, id := range ids {
		key := "ListServices\x00" + id
		s.mu.Lock()
		_, ok := s.memo[key]
		seeded := s.seed != nil
		s.mu.Unlock()
		if !ok && !seeded {
			s.remember(key, []store.Service(nil))
		}
	}
}

// TokenByHash remembers its answers apart (see Tokens): a revoked token
// is forgotten at its next look-up, and at the next sync (SetTokens),
// whichever comes first. Expiry is the platform's to check, from the
// token's stored expiry, remembered or not.
func (s *StaleReads) TokenByHash(ctx context.Context, hash string) (store.Credential, error) {
	c, err := s.Store.TokenByHash(ctx, hash)
	switch {
	case err == nil:
		s.RememberToken(hash, c)
		return c, nil
	case errors.Is(err, store.ErrUnavailable):
		s.mu.Lock()
		old, ok := s.tokens[hash]
		complete := s.complete
		s.mu.Unlock()
		if !ok {
			if complete {
				// Revoked (or never made) as of the last sync: refused as the
				// store would refuse it, not with 503.
				MarkStale(ctx)
				return c, fmt.Errorf("token: %w (as of the last sync; the store is unreachable)", store.ErrNotFound)
			}
			return c, err
		}
		MarkStale(ctx)
		return old, nil
	case errors.Is(err, store.ErrNotFound):
		s.mu.Lock()
		if _, ok := s.tokens[hash]; ok {
			delete(s.tokens, hash)
			s.tokensGen++
		}
		s.mu.Unlock()
	}
	return c, err
}

// RememberToken records that the token whose SHA-256 hash is hash
// authenticates c (the admin token at start, or a snapshot's tokens).
func (s *StaleReads) RememberToken(hash string, c store.Credential) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.tokens[hash]
	if ok && sameCredential(old, c) {
		return
	}
	if !ok && len(s.tokens) >= maxStaleTokens {
		clear(s.tokens)
		s.complete = false
	}
	s.tokens[hash] = c
	s.tokensGen++
}

// sameCredential reports whether a and b differ in nothing a request's
// authentication uses (last use aside).
func sameCredential(a, b store.Credential) bool {
	return a.Project.ID == b.Project.ID && a.Project.Name == b.Project.Name && a.Project.CreatedAt.Equal(b.Project.CreatedAt) &&
		a.Project.SuspendedAt.Equal(b.Project.SuspendedAt) &&
		a.Token.ID == b.Token.ID && a.Token.Name == b.Token.Name && slices.Equal(a.Token.Scopes, b.Token.Scopes) &&
		a.Token.CreatedAt.Equal(b.Token.CreatedAt) && a.Token.ExpiresAt.Equal(b.Token.ExpiresAt)
}

// SetTokens replaces the remembered tokens with every token of the store,
// as a sync read them (with the projects, for their names and suspension):
// a token revoked, or of a project deleted, since the last sync is
// forgotten, so that a node answering from its last known state (or its
// snapshot) refuses it within the propagation time. Beyond maxStaleTokens,
// the most recently used are kept.
func (s *StaleReads) SetTokens(projects []store.Project, tokens []store.Token) {
	byID := make(map[string]store.Project, len(projects))
	for _, p := range projects {
		byID[p.ID] = p
	}
	complete := len(tokens) <= maxStaleTokens
	if !complete {
		tokens = slices.Clone(tokens)
		slices.SortFunc(tokens, func(a, b store.Token) int { return b.LastUsedAt.Compare(a.LastUsedAt) })
		tokens = tokens[:maxStaleTokens]
	}
	next := make(map[string]store.Credential, len(tokens))
	for _, t := range tokens {
		if p, ok := byID[t.ProjectID]; ok {
			next[t.Hash] = store.Credential{Token: t, Project: p}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	same := len(next) == len(s.tokens) && complete == s.complete
	for h, c := range next {
		if !same {
			break
		}
		old, ok := s.tokens[h]
		same = ok && sameCredential(old, c)
	}
	if same {
		return
	}
	s.tokens, s.complete = next, complete
	s.tokensGen++
}

// SeedSnapshot remembers what a snapshot holds, for a node started from
// it: its services (Seed), its token look-ups (SeedTokens) and, for the
// projects of those tokens that have no service, that they have none
// (SeedEmpty).
func (s *StaleReads) SeedSnapshot(svcs []store.Service, tokens map[string]store.Credential, complete bool) {
	s.Seed(svcs)
	s.SeedTokens(tokens, complete)
	projects := make([]string, 0, len(tokens))
	for _, c := range tokens {
		projects = append(projects, c.Project.ID)
	}
	s.SeedEmpty(projects)
}

// SeedTokens remembers tokens read from a snapshot; complete says the
// snapshot held every token of the store as of its last sync (see
// TokensComplete).
func (s *StaleReads) SeedTokens(tokens map[string]store.Credential, complete bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(tokens) > maxStaleTokens {
		complete = false
	}
	s.tokens = make(map[string]store.Credential, len(tokens))
	for h, c := range tokens {
		if len(s.tokens) >= maxStaleTokens {
			break
		}
		s.tokens[h] = c
	}
	s.complete = complete
	s.tokensGen++
}

// TokensComplete reports whether Tokens holds every token of the store as
// of the last sync: then a hash it lacks is refused while the store is
// away (401), instead of failing with the store (503).
func (s *StaleReads) TokensComplete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.complete
}

// Tokens returns a copy of the remembered tokens: token hash -> token and
// project (never a token's value).
func (s *StaleReads) Tokens() map[string]store.Credential {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.tokens)
}

// TokensVersion changes whenever Tokens' answer does.
func (s *StaleReads) TokensVersion() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokensGen
}

func (s *StaleReads) GetProject(ctx context.Context, id string) (store.Project, error) {
	return staleRead(s, ctx, "GetProject\x00"+id, func() (store.Project, error) { return s.Store.GetProject(ctx, id) }, nil)
}

func (s *StaleReads) GetDomain(ctx context.Context, name string) (store.Domain, error) {
	return staleRead(s, ctx, "GetDomain\x00"+name, func() (store.Domain, error) { return s.Store.GetDomain(ctx, name) }, nil)
}

func (s *StaleReads) ListDomains(ctx context.Context, projectID string) ([]store.Domain, error) {
	return staleRead(s, ctx, "ListDomains\x00"+projectID, func() ([]store.Domain, error) { return s.Store.ListDomains(ctx, projectID) }, nil)
}

func (s *StaleReads) GetService(ctx context.Context, projectID, name string) (store.Service, error) {
	return staleRead(s, ctx, "GetService\x00"+projectID+"\x00"+name, func() (store.Service, error) { return s.Store.GetService(ctx, projectID, name) },
		func(d *seededServices) (store.Service, bool) { return d.service(projectID, name) })
}

func (s *StaleReads) ListServices(ctx context.Context, projectID string) ([]store.Service, error) {
	return staleRead(s, ctx, "ListServices\x00"+projectID, func() ([]store.Service, error) { return s.Store.ListServices(ctx, projectID) },
		func(d *seededServices) ([]store.Service, bool) { return d.services(projectID) })
}

func (s *StaleReads) GetCertStatus(ctx context.Context, hostname string) (store.CertStatus, error) {
	return staleRead(s, ctx, "GetCertStatus\x00"+hostname, func() (store.CertStatus, error) { return s.Store.GetCertStatus(ctx, hostname) }, nil)
}

// ListCertStatus is the store's, if it has it; else an error wrapping
// errors.ErrUnsupported, on which the platform reads name by name.
func (s *StaleReads) ListCertStatus(ctx context.Context) ([]store.CertStatus, error) {
	l, ok := s.Store.(platform.CertStatusLister)
	if !ok {
		return nil, fmt.Errorf("listing certificate status: %w", errors.ErrUnsupported)
	}
	return staleRead(s, ctx, "ListCertStatus", func() ([]store.CertStatus, error) { return l.ListCertStatus(ctx) }, nil)
}

// The dashboard's counted and paged reads are remembered by their query,
// its times left out (they are "now" plus a span, different at each
// request), so that a page seen while the store answered is shown again,
// marked stale, while it does not.

func (s *StaleReads) HostnameZones(ctx context.Context, projectID string) ([]string, error) {
	return staleRead(s, ctx, "HostnameZones\x00"+projectID, func() ([]string, error) { return s.Store.HostnameZones(ctx, projectID) }, nil)
}

func (s *StaleReads) CountHostnames(ctx context.Context, projectID string, endsBefore time.Time, unserved []string) ([]store.HostnameCount, error) {
	key := fmt.Sprintf("CountHostnames\x00%s\x00%q", projectID, unserved)
	return staleRead(s, ctx, key, func() ([]store.HostnameCount, error) {
		return s.Store.CountHostnames(ctx, projectID, endsBefore, unserved)
	}, nil)
}

// page is a page of rows and how many there are in all.
type page[T any] struct {
	rows  []T
	total int
}

func (s *StaleReads) ListHostnames(ctx context.Context, q store.HostnameQuery) ([]store.HostnameRow, int, error) {
	k := q
	k.EndsBefore, k.Problems = time.Time{}, nil
	key := fmt.Sprintf("ListHostnames\x00%q\x00%v\x00%v", fmt.Sprintf("%#v", k), !q.EndsBefore.IsZero(), q.Problems != nil)
	p, err := staleRead(s, ctx, key, func() (page[store.HostnameRow], error) {
		rows, total, err := s.Store.ListHostnames(ctx, q)
		return page[store.HostnameRow]{rows, total}, err
	}, nil)
	return p.rows, p.total, err
}

func (s *StaleReads) ListServiceSummaries(ctx context.Context, q store.ServiceQuery) ([]store.ServiceSummary, int, error) {
	p, err := staleRead(s, ctx, fmt.Sprintf("ListServiceSummaries\x00%#v", q), func() (page[store.ServiceSummary], error) {
		rows, total, err := s.Store.ListServiceSummaries(ctx, q)
		return page[store.ServiceSummary]{rows, total}, err
	}, func(d *seededServices) (page[store.ServiceSummary], bool) { return d.summaries(q) })
	return p.rows, p.total, err
}

var (
	_ platform.Store            = (*StaleReads)(nil)
	_ platform.CertStatusLister = (*StaleReads)(nil)
)
