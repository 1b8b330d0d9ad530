package serving

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

func TestFingerprintCoversEveryField(t *testing.T) {
	base := store.Service{ID: "1", ProjectID: "p", Name: "a", Domain: "d.test", Hostnames: []string{"a.d.test"},
		Upstreams: []string{"http://127.0.0.1:1"}, HSTSMaxAge: 10, CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(2, 0)}
	sum := fingerprint([]store.Service{base}, []string{"d.test"})
	if fingerprint([]store.Service{base}, []string{"d.test"}) != sum {
		t.Fatal("fingerprint is not stable")
	}
	for name, mod := range map[string]func(*store.Service){
		"id":        func(s *store.Service) { s.ID = "2" },
		"project":   func(s *store.Service) { s.ProjectID = "q" },
		"name":      func(s *store.Service) { s.Name = "b" },
		"domain":    func(s *store.Service) { s.Domain = "e.test" },
		"hostnames": func(s *store.Service) { s.Hostnames = []string{"a.d.test", "b.d.test"} },
		"upstreams": func(s *store.Service) { s.Upstreams = []string{"http://127.0.0.1:2"} },
		"hsts":      func(s *store.Service) { s.HSTSMaxAge = 11 },
		"health":    func(s *store.Service) { s.HealthPath = "/up" },
		"interval":  func(s *store.Service) { s.HealthInterval = time.Second },
		"created":   func(s *store.Service) { s.CreatedAt = time.Unix(3, 0) },
		"updated":   func(s *store.Service) { s.UpdatedAt = time.Unix(3, 0) },
		// Lengths are part of it: moving a boundary is a change.
		"boundary": func(s *store.Service) { s.Hostnames = []string{"a.d.tes", "t"} },
	} {
		s := base
		mod(&s)
		if fingerprint([]store.Service{s}, []string{"d.test"}) == sum {
			t.Errorf("a change of %s keeps the fingerprint", name)
		}
	}
	if fingerprint([]store.Service{base}, nil) == sum {
		t.Error("a change of the wildcard domains keeps the fingerprint")
	}
}

// Compute keeps the servable hostnames of the services the edge can route,
// and the verified domains DNS-01 can be solved for.
func TestCompute(t *testing.T) {
	domains := []store.Domain{
		{Name: "a.test", ProjectID: "p", Status: store.DomainVerified},
		{Name: "b.test", ProjectID: "p", Status: store.DomainPending},
		{Name: "c.test", ProjectID: "q", Status: store.DomainVerified},
	}
	svcs := []store.Service{
		{ProjectID: "p", Name: "ok", Hostnames: []string{"ok.a.test", "ok.b.test", "ok.c.test"}, Upstreams: []string{"http://127.0.0.1:1"}},
		{ProjectID: "p", Name: "bad", Hostnames: []string{"bad.a.test"}, Upstreams: []string{"http://127.0.0.1:99999"}},
		{ProjectID: "p", Name: "none", Hostnames: []string{"none.b.test"}, Upstreams: []string{"http://127.0.0.1:1"}},
	}
	st := Compute(slices.Clone(svcs), domains, func(d store.Domain) bool { return d.Name != "c.test" }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if len(st.Services) != 1 || st.Services[0].Name != "ok" || len(st.Services[0].Hostnames) != 1 || st.Services[0].Hostnames[0] != "ok.a.test" {
		t.Errorf("services %+v, want ok with ok.a.test only (b.test pending, c.test another project's; bad unroutable; none left with no hostname)", st.Services)
	}
	if len(st.Wildcards) != 1 || st.Wildcards[0] != "a.test" {
		t.Errorf("wildcards %v, want a.test (b.test pending, c.test not solvable)", st.Wildcards)
	}
	list := Routes(st.Services, nil)
	routes, hosts := list.Slice(), list.Managed()
	if list.Len() != 1 || len(routes) != 1 || routes[0].Host != "ok.a.test" || routes[0].Service != "ok" || len(hosts) != 1 {
		t.Errorf("routes %+v, hosts %v", routes, hosts)
	}
	if again := Compute(slices.Clone(svcs), domains, func(d store.Domain) bool { return d.Name != "c.test" }, slog.New(slog.DiscardHandler)); again.Sum != st.Sum {
		t.Error("the same read has another fingerprint")
	}
}
