// Reads while the store is away: the API answers from the node's last known
// state, marked stale, instead of failing.

package node

import (
	"context"
	"errors"
	"maps"
	"sync"

	"github.com/spine-platform/spine/internal/api"
	"github.com/spine-platform/spine/internal/store"
)

// maxStaleReads bounds the remembered answers, and maxStaleTokens the
// remembered token look-ups; when one is full, it is emptied.
const (
	maxStaleReads  = 20000
	maxStaleTokens = 10000
)

// staleReads is the store as the platform sees it: every method of
// *store.DB, with the reads of the API remembering their last answer and
// returning it, marked stale (api.MarkStale), when the store is
// unreachable. Writes are not touched: they fail with store.ErrUnavailable,
// which the API answers with 503.
type staleReads struct {
	*store.DB

	mu   sync.Mutex
	memo map[string]any
	// tokens are the token look-ups answered, by token hash (SHA-256 of
	// the token, as the store keeps it; never a token). The snapshot keeps
	// them, so that a node started from it answers reads too.
	tokenMemo map[string]store.Project
	tokensGen uint64 // counts the changes of tokens
}

func newStaleReads(db *store.DB) *staleReads {
	return &staleReads{DB: db, memo: make(map[string]any), tokenMemo: make(map[string]store.Project)}
}

func (s *staleReads) remember(key string, v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.memo[key]; !ok && len(s.memo) >= maxStaleReads {
		clear(s.memo)
	}
	s.memo[key] = v
}

// staleRead runs f, remembering its answer under key; if the store is
// unreachable, it returns the remembered answer instead, if any. An answer
// that the store says is gone is forgotten.
func staleRead[T any](s *staleReads, ctx context.Context, key string, f func() (T, error)) (T, error) {
	v, err := f()
	if err == nil {
		s.remember(key, v)
		return v, nil
	}
	if !errors.Is(err, store.ErrUnavailable) {
		if errors.Is(err, store.ErrNotFound) {
			s.mu.Lock()
			delete(s.memo, key)
			s.mu.Unlock()
		}
		return v, err
	}
	s.mu.Lock()
	old, ok := s.memo[key]
	s.mu.Unlock()
	if !ok {
		return v, err
	}
	api.MarkStale(ctx)
	return old.(T), nil
}

// seed remembers svcs, read whole by a sync, as the answers of the service reads.
func (s *staleReads) seed(svcs []store.Service) {
	byProject := map[string][]store.Service{}
	for _, sv := range svcs {
		byProject[sv.ProjectID] = append(byProject[sv.ProjectID], sv)
		s.remember("GetService\x00"+sv.ProjectID+"\x00"+sv.Name, sv)
	}
	s.remember("ListServices\x00", svcs)
	for p, ss := range byProject {
		s.remember("ListServices\x00"+p, ss)
	}
}

// ProjectByTokenHash remembers its answers in tokens, not in memo: a
// revoked token is forgotten at its next look-up.
func (s *staleReads) ProjectByTokenHash(ctx context.Context, hash string) (store.Project, error) {
	p, err := s.DB.ProjectByTokenHash(ctx, hash)
	switch {
	case err == nil:
		s.rememberToken(hash, p)
		return p, nil
	case errors.Is(err, store.ErrUnavailable):
		s.mu.Lock()
		old, ok := s.tokenMemo[hash]
		s.mu.Unlock()
		if !ok {
			return p, err
		}
		api.MarkStale(ctx)
		return old, nil
	case errors.Is(err, store.ErrNotFound):
		s.mu.Lock()
		if _, ok := s.tokenMemo[hash]; ok {
			delete(s.tokenMemo, hash)
			s.tokensGen++
		}
		s.mu.Unlock()
	}
	return p, err
}

// rememberToken records that the token with hash authenticates p.
func (s *staleReads) rememberToken(hash string, p store.Project) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.tokenMemo[hash]
	if ok && old.ID == p.ID && old.Name == p.Name && old.CreatedAt.Equal(p.CreatedAt) {
		return
	}
	if !ok && len(s.tokenMemo) >= maxStaleTokens {
		clear(s.tokenMemo)
	}
	s.tokenMemo[hash] = p
	s.tokensGen++
}

// tokensChanged counts the changes of the remembered token look-ups.
func (s *staleReads) tokensChanged() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokensGen
}

// tokens returns a copy of the remembered token look-ups: token hash ->
// project.
func (s *staleReads) tokens() map[string]store.Project {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.tokenMemo)
}

func (s *staleReads) GetProject(ctx context.Context, id string) (store.Project, error) {
	return staleRead(s, ctx, "GetProject\x00"+id, func() (store.Project, error) { return s.DB.GetProject(ctx, id) })
}

func (s *staleReads) GetDomain(ctx context.Context, name string) (store.Domain, error) {
	return staleRead(s, ctx, "GetDomain\x00"+name, func() (store.Domain, error) { return s.DB.GetDomain(ctx, name) })
}

func (s *staleReads) ListDomains(ctx context.Context, projectID string) ([]store.Domain, error) {
	return staleRead(s, ctx, "ListDomains\x00"+projectID, func() ([]store.Domain, error) { return s.DB.ListDomains(ctx, projectID) })
}

func (s *staleReads) GetService(ctx context.Context, projectID, name string) (store.Service, error) {
	return staleRead(s, ctx, "GetService\x00"+projectID+"\x00"+name, func() (store.Service, error) { return s.DB.GetService(ctx, projectID, name) })
}

func (s *staleReads) ListServices(ctx context.Context, projectID string) ([]store.Service, error) {
	return staleRead(s, ctx, "ListServices\x00"+projectID, func() ([]store.Service, error) { return s.DB.ListServices(ctx, projectID) })
}

func (s *staleReads) GetCertStatus(ctx context.Context, hostname string) (store.CertStatus, error) {
	return staleRead(s, ctx, "GetCertStatus\x00"+hostname, func() (store.CertStatus, error) { return s.DB.GetCertStatus(ctx, hostname) })
}
