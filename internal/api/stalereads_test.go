package api

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// flakyStore answers service and token reads from maps, or fails them all
// with store.ErrUnavailable while down. Its other methods are not used.
type flakyStore struct {
	platform.Store
	down     bool
	services map[string]store.Service
	tokens   map[string]store.Project
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

func (f *flakyStore) ProjectByTokenHash(_ context.Context, hash string) (store.Project, error) {
	if f.down {
		return store.Project{}, fmt.Errorf("reading token: %w", store.ErrUnavailable)
	}
	p, ok := f.tokens[hash]
	if !ok {
		return p, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	return p, nil
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
		tokens:   map[string]store.Project{"h1": {ID: "p"}, "h2": {ID: "p"}},
	}
	s := NewStaleReads(st)
	ctx, stale := request()
	for _, name := range []string{"a", "b"} {
		if _, err := s.GetService(ctx, "p", name); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"h1", "h2"} {
		if _, err := s.ProjectByTokenHash(ctx, h); err != nil {
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
	if _, err := s.ProjectByTokenHash(ctx, "h2"); !errors.Is(err, store.ErrNotFound) {
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
	if p, err := s.ProjectByTokenHash(ctx, "h1"); err != nil || p.ID != "p" || !stale.Load() {
		t.Errorf("token h1 while the store is away: %+v, %v, stale %v; want the last answer, marked stale", p, err, stale.Load())
	}
	for _, read := range []func(ctx context.Context) error{
		func(ctx context.Context) error { _, err := s.GetService(ctx, "p", "b"); return err },
		func(ctx context.Context) error { _, err := s.GetService(ctx, "p", "never-read"); return err },
		func(ctx context.Context) error { _, err := s.ProjectByTokenHash(ctx, "h2"); return err },
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
	for i := range maxStaleReads + 1 {
		s.remember(fmt.Sprint("k", i), i)
	}
	if n := len(s.memo); n > maxStaleReads {
		t.Errorf("memo holds %d answers, bound %d", n, maxStaleReads)
	}
	for i := range maxStaleTokens + 1 {
		s.RememberToken(fmt.Sprint("h", i), store.Project{ID: "p"})
	}
	if n := len(s.Tokens()); n > maxStaleTokens {
		t.Errorf("%d token look-ups remembered, bound %d", n, maxStaleTokens)
	}
}
