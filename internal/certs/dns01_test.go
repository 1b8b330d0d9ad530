package certs

import (
	"context"
	"testing"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/spine-platform/spine/internal/store"
)

// namedSolver records the challenges it was handed.
type namedSolver struct {
	name string
	got  *[]string
}

func (s namedSolver) Present(_ context.Context, c acme.Challenge) error {
	*s.got = append(*s.got, s.name+":"+c.Identifier.Value)
	return nil
}
func (s namedSolver) CleanUp(context.Context, acme.Challenge) error { return nil }

// Each challenge goes to the solver of the longest zone holding its domain
// (wildcard or not), else to the delegated solver; with neither, it fails.
func TestDNS01MuxRoutesByZone(t *testing.T) {
	var got []string
	m := &DNS01Mux{
		zones: map[string]acmez.Solver{
			"example.com":     namedSolver{"outer", &got},
			"dev.example.com": namedSolver{"inner", &got},
		},
		delegated: namedSolver{"delegated", &got},
	}
	for _, name := range []string{"*.example.com", "api.dev.example.com", "*.dev.example.com", "example.com", "other.org", "notexample.com"} {
		if err := m.Present(context.Background(), acme.Challenge{Identifier: acme.Identifier{Type: "dns", Value: name}}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"outer:*.example.com", "inner:api.dev.example.com", "inner:*.dev.example.com", "outer:example.com", "delegated:other.org", "delegated:notexample.com"}
	if len(got) != len(want) {
		t.Fatalf("solved %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("challenge %d went to %s, want %s", i, got[i], want[i])
		}
	}
	if !m.InProviderZone("a.dev.example.com") || m.InProviderZone("other.org") || (*DNS01Mux)(nil).InProviderZone("example.com") {
		t.Error("InProviderZone is wrong")
	}
	m.delegated = nil
	if err := m.Present(context.Background(), acme.Challenge{Identifier: acme.Identifier{Value: "other.org"}}); err == nil {
		t.Error("a challenge no solver covers was presented")
	}
	if NewDNS01Mux(nil, 0, "", nil, nil) != nil {
		t.Error("a mux with no solver at all is not nil")
	}
}

// A provider's zone is matched in the form domains are stored in: an
// operator's "Bücher.Example." holds xn--bcher-kva.example and its names.
func TestDNS01MuxNormalisesZones(t *testing.T) {
	m := NewDNS01Mux(map[string]certmagic.DNSProvider{"Bücher.Example.": nil, "bad..zone": nil}, 0, "", nil, nil)
	if !m.InProviderZone("xn--bcher-kva.example") || !m.InProviderZone("a.xn--bcher-kva.example") {
		t.Errorf("zones %v do not hold xn--bcher-kva.example", m.zones)
	}
	if len(m.zones) != 1 {
		t.Errorf("zones %v: a zone no domain can be under was kept", m.zones)
	}
}

// NewDNS01 builds the parts the ACMEConfig asks for, and none otherwise;
// a domain can have wildcard certificates when a provider's zone holds it.
func TestNewDNS01(t *testing.T) {
	none := NewDNS01(ACMEConfig{}, nil, nil, nil)
	if none.Zone != nil || none.Mux != nil || none.Solver() != nil || none.Delegations() != nil {
		t.Errorf("NewDNS01 without DNS-01: %+v, solver %v; want no part", none, none.Solver())
	}
	if none.Wildcard(store.Domain{Name: "example.com", ProjectID: "p"}) {
		t.Error("a wildcard without DNS-01")
	}
	d := NewDNS01(ACMEConfig{DNSProviders: map[string]certmagic.DNSProvider{"example.com": nil}}, nil, nil, nil)
	if d.Zone != nil || d.Mux == nil || d.Solver() == nil {
		t.Fatalf("NewDNS01 with a provider: %+v; want its mux and no zone", d)
	}
	for name, want := range map[string]bool{"example.com": true, "shop.example.com": true, "example.org": false} {
		if got := d.Wildcard(store.Domain{Name: name, ProjectID: "p"}); got != want {
			t.Errorf("Wildcard(%s) = %v, want %v", name, got, want)
		}
	}
}
