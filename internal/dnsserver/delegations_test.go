package dnsserver_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spine-platform/spine/internal/dnsserver"
	"github.com/spine-platform/spine/internal/pebbletest"
	"github.com/spine-platform/spine/internal/store"
)

// Two nodes over one store share one delegation key; a CNAME one node sees
// is known to the other after its Refresh; a CNAME that goes away (or
// points elsewhere) is forgotten at the next Check.
func TestDelegationsSharedByAFleet(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	resolver := pebbletest.StartDNS(t)
	const zone = "acme.spine.test"
	a := dnsserver.NewDelegations(db, zone, resolver.Addr)
	b := dnsserver.NewDelegations(db, zone, resolver.Addr)
	dom := store.Domain{Name: "example.test", ProjectID: "p1", Status: store.DomainVerified}

	if got := a.Target("p1", dom.Name); got != "" {
		t.Errorf("target before the key is loaded: %q, want none", got)
	}
	if changed, err := a.Check(ctx, []store.Domain{dom}); changed || err != nil {
		t.Errorf("check before the key is loaded: %v, %v; want nothing done", changed, err)
	}
	var wg sync.WaitGroup
	for _, d := range []*dnsserver.Delegations{a, b} {
		wg.Go(func() {
			if err := d.LoadKey(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	target := a.Target("p1", dom.Name)
	if target == "" || target != b.Target("p1", dom.Name) || target == a.Target("p2", dom.Name) {
		t.Fatalf("targets: a %q, b %q, another project %q; want one per project, the same on both nodes", target, b.Target("p1", dom.Name), a.Target("p2", dom.Name))
	}

	resolver.SetCNAME("_acme-challenge."+dom.Name, target)
	if changed, err := a.Check(ctx, []store.Domain{dom}); !changed || err != nil {
		t.Fatalf("check with the CNAME in place: %v, %v; want a change", changed, err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !b.Delegated(dom.Name, "p1") || b.Delegated(dom.Name, "p2") {
		t.Errorf("the other node: delegated to p1 %v, to p2 %v; want p1 only", b.Delegated(dom.Name, "p1"), b.Delegated(dom.Name, "p2"))
	}
	if got, ok := b.SolverTarget(dom.Name); !ok || got != target {
		t.Errorf("solver target %q, %v; want %q", got, ok, target)
	}
	if changed, _ := a.Check(ctx, []store.Domain{dom}); changed {
		t.Error("a second check with nothing new reports a change")
	}

	resolver.SetCNAME("_acme-challenge."+dom.Name, "elsewhere.example.net")
	if changed, err := a.Check(ctx, []store.Domain{dom}); !changed || err != nil {
		t.Fatalf("check with the CNAME pointing elsewhere: %v, %v; want a change", changed, err)
	}
	b.Refresh(ctx)
	if b.Delegated(dom.Name, "p1") {
		t.Error("a CNAME that points elsewhere is still counted as delegated")
	}
	if _, ok := b.SolverTarget(dom.Name); ok {
		t.Error("the solver still has a target for a domain no longer delegated")
	}
}
