package platform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/spine-platform/spine/internal/store"
)

// A round hands CheckDelegations the verified domains only (none under
// localhost, at most maxChecksPerRound), and reports its change and error.
func TestCheckDomainsHandsVerifiedDomainsToDelegations(t *testing.T) {
	var got []string
	var answer error
	p := newTestPlatform(t, Options{CheckDelegations: func(_ context.Context, verified []store.Domain) (bool, error) {
		got = got[:0]
		for _, d := range verified {
			got = append(got, d.Name)
		}
		return len(verified) > 0, answer
	}})
	ctx := context.Background()
	if _, err := p.AddDomain(ctx, "p1", "pending.test", false); err != nil {
		t.Fatal(err)
	}
	if changed, err := p.CheckDomains(ctx); changed || err != nil || len(got) != 0 {
		t.Fatalf("no verified domain: changed %v, err %v, checked %v", changed, err, got)
	}
	for _, name := range []string{"app.localhost", "a.test", "a.xlocalhost"} {
		if _, err := p.AddDomain(ctx, "p1", name, true); err != nil {
			t.Fatal(err)
		}
	}
	for i := range maxChecksPerRound {
		if _, err := p.AddDomain(ctx, "p2", fmt.Sprintf("b%03d.test", i), true); err != nil {
			t.Fatal(err)
		}
	}
	changed, err := p.CheckDomains(ctx)
	if !changed || err != nil {
		t.Fatalf("changed %v, err %v; want a change", changed, err)
	}
	if len(got) != maxChecksPerRound || got[0] != "a.test" {
		t.Errorf("checked %d domains starting with %q, want %d starting with a.test (no pending one, none under localhost)", len(got), got[0], maxChecksPerRound)
	}
	for _, name := range got {
		if name == "pending.test" || name == "app.localhost" {
			t.Errorf("checked %s", name)
		}
	}
	if !slices.Contains(got, "a.xlocalhost") {
		t.Errorf("a.xlocalhost, which is not under localhost, was not checked: %v", got)
	}
	answer = errors.New("resolver down")
	if _, err := p.CheckDomains(ctx); !errors.Is(err, answer) {
		t.Errorf("error %v, want the delegation check's", err)
	}
}
