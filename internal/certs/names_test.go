package certs

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
)

// nameState is what a Manager serves and manages.
type nameState struct {
	Served, Managed []string
	Covers          map[string][]string
}

func (m *Manager) nameState() nameState {
	s := nameState{Covers: map[string][]string{}}
	s.Served = slices.Sorted(func(yield func(string) bool) {
		for n := range m.served.Load().all() {
			if !yield(n) {
				return
			}
		}
	})
	s.Managed = slices.Sorted(func(yield func(string) bool) {
		for n := range m.managed.Load().all() {
			if !yield(n) {
				return
			}
		}
	})
	maps.Insert(s.Covers, m.covers.Load().all())
	return s
}

// UpdateShared leaves a Manager serving and managing exactly what
// SyncShared of the resulting names would, wildcard coverage included.
func TestUpdateSharedMatchesSyncShared(t *testing.T) {
	ctx := context.Background()
	wild := []string{"w.test"}
	before := []string{"a.test", "b.test", "x.w.test", "y.w.test", "only.v.test", "deep.x.w.test", "keep.test"}
	add := []string{"c.test", "z.w.test", "n.v.test", "B.test", "new.u.test"}
	remove := []string{"a.test", "b.test", "x.w.test", "y.w.test", "only.v.test", "deep.x.w.test", "missing.test"}
	after := []string{"keep.test", "b.test", "c.test", "z.w.test", "n.v.test", "new.u.test"}

	e := newEnv(t, envOptions{})
	e.m.SyncShared(ctx, before, wild)
	e.m.UpdateShared(ctx, add, remove)
	full := newEnv(t, envOptions{})
	full.m.SyncShared(ctx, after, wild)
	got, want := e.m.nameState(), full.m.nameState()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after UpdateShared:\n%+v\nafter SyncShared of the same names:\n%+v", got, want)
	}
	// A wildcard subject keeps serving the hostnames it still covers
	// while it loses others; every name added gets a certificate.
	for _, name := range []string{"c.test", "z.w.test", "b.test", "new.u.test", "keep.test"} {
		poll.Until(t, "a certificate for "+name, time.Minute, func() error { _, err := e.dial(name); return err })
	}
	for _, name := range []string{"a.test", "x.w.test", "only.v.test"} {
		if _, err := e.dial(name); err == nil {
			t.Errorf("a handshake for %s, removed, succeeded", name)
		}
	}

	// Removing every hostname a wildcard covers drops the wildcard.
	e.m.UpdateShared(ctx, nil, []string{"z.w.test"})
	if e.m.managed.Load().has("*.w.test") || e.m.Manages("z.w.test") {
		t.Error("*.w.test is still managed after its last hostname left")
	}
	if !e.m.Manages("keep.test") || e.m.served.Load().len() != 5 {
		t.Errorf("served %v after removing z.w.test, want the 5 others", e.m.nameState().Served)
	}
}
