package platform

import (
	"slices"
	"testing"

	"github.com/spine-platform/spine/internal/store"
)

// ServedOnly filters its list in place: the services kept, with only
// their served hostnames, then nothing left alive behind them; a service
// that loses a hostname gets a list of its own, so the read's is intact.
func TestServedOnlyInPlace(t *testing.T) {
	domains := []store.Domain{
		{Name: "a.test", ProjectID: "p", Status: store.DomainVerified},
		{Name: "b.test", ProjectID: "p", Status: store.DomainPending},
	}
	mixed := []string{"m.a.test", "m.b.test", "n.a.test"}
	svcs := []store.Service{
		{ID: "1", ProjectID: "p", Name: "none", Hostnames: []string{"x.b.test"}},
		{ID: "2", ProjectID: "p", Name: "mixed", Hostnames: mixed},
		{ID: "3", ProjectID: "p", Name: "all", Hostnames: []string{"all.a.test"}},
		{ID: "4", ProjectID: "q", Name: "other", Hostnames: []string{"o.a.test"}}, // another project's domain
	}
	out := ServedOnly(svcs, domains)
	if len(out) != 2 || out[0].Name != "mixed" || out[1].Name != "all" {
		t.Fatalf("ServedOnly kept %+v, want mixed and all", out)
	}
	if &out[0] != &svcs[0] {
		t.Error("ServedOnly made a new list")
	}
	if !slices.Equal(out[0].Hostnames, []string{"m.a.test", "n.a.test"}) {
		t.Errorf("mixed keeps %q, want m.a.test and n.a.test", out[0].Hostnames)
	}
	if !slices.Equal(mixed, []string{"m.a.test", "m.b.test", "n.a.test"}) {
		t.Errorf("the read's hostnames became %q", mixed)
	}
	for i, s := range svcs[len(out):] {
		if s.ID != "" || s.Hostnames != nil {
			t.Errorf("element %d after the kept ones still holds %+v", len(out)+i, s)
		}
	}
}
