package platform

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestCreateServicesChecksEachSpec: a batch is checked spec by spec as
// CreateService checks one, stores nothing if any spec fails, and stores
// every service of a valid batch with the hostnames and defaults
// CreateService gives.
func TestCreateServicesChecksEachSpec(t *testing.T) {
	p := newTestPlatform(t, Options{})
	ctx := context.Background()
	if _, err := p.CreateServices(ctx, "p1", []ServiceSpec{{Name: "a", Upstreams: []string{"http://127.0.0.1:9000"}}}); err == nil {
		t.Fatal("a batch in a project without a domain was accepted")
	}
	if _, err := p.AddDomain(ctx, "p1", "example.com", true); err != nil {
		t.Fatal(err)
	}
	up := []string{"http://127.0.0.1:9000"}
	for _, c := range []struct {
		bad        ServiceSpec
		code, text string
	}{
		{ServiceSpec{Name: "Bad_Name", Upstreams: up}, "invalid_name", "bad_name"},
		{ServiceSpec{Name: "noup"}, "no_upstream", "at least one upstream"},
		{ServiceSpec{Name: "other", Upstreams: up, Domain: "other.com"}, "unknown_domain", "other.com"},
	} {
		_, err := p.CreateServices(ctx, "p1", []ServiceSpec{{Name: "ok", Upstreams: up}, c.bad})
		wantCode(t, err, c.code, c.text)
		if want := fmt.Sprintf("service 1 of the batch (%q)", c.bad.Name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
		if _, err := p.GetService(ctx, "p1", "ok"); err == nil {
			t.Fatalf("%s: the batch's valid service was stored", c.code)
		}
	}

	var specs []ServiceSpec
	for i := range 50 {
		specs = append(specs, ServiceSpec{Name: fmt.Sprintf("S%02d", i), Upstreams: up})
	}
	specs[7].Hosts = []string{"WWW.example.com", "s07.example.com"}
	got, err := p.CreateServices(ctx, "p1", specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Fatalf("CreateServices returned %d services, want 50", len(got))
	}
	s, err := p.GetService(ctx, "p1", "s07")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Hostnames, []string{"s07.example.com", "www.example.com"}) || s.HSTSMaxAge != DefaultHSTSMaxAge {
		t.Errorf("s07 = hostnames %v, HSTS %d; want [s07.example.com www.example.com], %d", s.Hostnames, s.HSTSMaxAge, DefaultHSTSMaxAge)
	}
	_, err = p.CreateServices(ctx, "p1", []ServiceSpec{{Name: "new", Upstreams: up}, {Name: "s49", Upstreams: up}})
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != Conflict {
		t.Errorf("a batch naming an existing service: %v, want a Conflict", err)
	}
	if _, err := p.GetService(ctx, "p1", "new"); err == nil {
		t.Error("the refused batch's new service was stored")
	}
}
