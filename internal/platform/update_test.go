package platform

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

func TestUpdateService(t *testing.T) {
	p := newTestPlatform(t, Options{OwnAddrs: []string{"127.0.0.1:8443"}})
	ctx := context.Background()
	for _, d := range []struct{ project, name string }{{"p1", "example.com"}, {"p1", "other.example"}, {"p2", "theirs.example"}} {
		if _, err := p.AddDomain(ctx, d.project, d.name, true); err != nil {
			t.Fatal(err)
		}
	}
	created, err := p.CreateService(ctx, "p1", ServiceSpec{Name: "web", Hosts: []string{"www.example.com"},
		Upstreams: []string{"http://10.0.0.1:80"}, HealthPath: "/healthz", HealthInterval: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if created.HealthPath != "/healthz" || created.HealthInterval != 5*time.Second {
		t.Fatalf("create kept health %q %s", created.HealthPath, created.HealthInterval)
	}
	if _, err := p.CreateService(ctx, "p2", ServiceSpec{Name: "api", Upstreams: []string{"http://10.0.0.2:80"}}); err != nil {
		t.Fatal(err)
	}

	hsts, path, every := 600, "/ready?full=1", 30*time.Second
	svc, err := p.UpdateService(ctx, "p1", "WEB", ServiceUpdate{
		Upstreams:   []string{"http://10.0.0.3:8080/", "http://10.0.0.3:8080", "https://10.0.0.4"},
		AddHosts:    []string{"B.Other.Example.", "a.example.com", "web.example.com"},
		RemoveHosts: []string{"www.example.com"},
		HSTSMaxAge:  &hsts, HealthPath: &path, HealthInterval: &every,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"web.example.com", "a.example.com", "b.other.example"}
	if !slices.Equal(svc.Hostnames, want) || !slices.Equal(svc.Upstreams, []string{"http://10.0.0.3:8080", "https://10.0.0.4"}) ||
		svc.HSTSMaxAge != 600 || svc.HealthPath != path || svc.HealthInterval != every || svc.ID != created.ID ||
		!svc.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("after update: %+v", svc)
	}
	// One field at a time leaves the others; "/" and 0 go back to the defaults.
	root, zero := "/", time.Duration(0)
	svc, err = p.UpdateService(ctx, "p1", "web", ServiceUpdate{HealthPath: &root, HealthInterval: &zero})
	if err != nil {
		t.Fatal(err)
	}
	if svc.HealthPath != "" || svc.HealthInterval != 0 || svc.HSTSMaxAge != 600 || !slices.Equal(svc.Hostnames, want) || len(svc.Upstreams) != 2 {
		t.Fatalf("after resetting health: %+v", svc)
	}
	// The removed hostname is free for another project's service under its domain... and
	// for this project's other services.
	if _, err := p.CreateService(ctx, "p1", ServiceSpec{Name: "old", Hosts: []string{"www.example.com"}, Upstreams: []string{"http://10.0.0.1:80"}}); err != nil {
		t.Fatalf("the removed hostname is not free: %v", err)
	}

	neg, big := -1, 2*DefaultHSTSMaxAge+1
	short, long := 500*time.Millisecond, 2*time.Hour
	rel, sp, frag, abs := "health", "/a b", "/x#y", "//evil.example/x"
	for _, tc := range []struct {
		name       string
		project    string
		svc        string
		u          ServiceUpdate
		code, text string
	}{
		{"nothing", "p1", "web", ServiceUpdate{}, "nothing_to_update", "nothing to change"},
		{"another project", "p2", "web", ServiceUpdate{HSTSMaxAge: &hsts}, "not_found", `service "web" does not exist in this project`},
		{"missing", "p1", "nope", ServiceUpdate{HSTSMaxAge: &hsts}, "not_found", `service "nope"`},
		{"bad name", "p1", "we b", ServiceUpdate{HSTSMaxAge: &hsts}, "invalid_name", "service name"},
		{"empty upstreams", "p1", "web", ServiceUpdate{Upstreams: []string{}}, "no_upstream", "at least one upstream"},
		{"bad upstream", "p1", "web", ServiceUpdate{Upstreams: []string{"ftp://x"}}, "invalid_upstream", `scheme "ftp"`},
		{"own listener", "p1", "web", ServiceUpdate{Upstreams: []string{"https://127.0.0.1:8443"}}, "proxy_loop", "proxy loop"},
		{"served name", "p1", "web", ServiceUpdate{Upstreams: []string{"https://api.theirs.example:8443"}}, "proxy_loop", "proxy loop"},
		{"added name looped", "p1", "web", ServiceUpdate{AddHosts: []string{"loop.example.com"}, Upstreams: []string{"http://loop.example.com:8443"}}, "proxy_loop", "proxy loop"},
		{"host outside", "p1", "web", ServiceUpdate{AddHosts: []string{"x.elsewhere.example"}}, "host_outside_domains", `"x.elsewhere.example" is not under any of this project's domains`},
		{"another project's domain", "p1", "web", ServiceUpdate{AddHosts: []string{"x.theirs.example"}}, "host_outside_domains", "x.theirs.example"},
		{"another project's name", "p2", "api", ServiceUpdate{AddHosts: []string{"web.example.com"}}, "host_outside_domains", "web.example.com"},
		{"taken in project", "p1", "web", ServiceUpdate{AddHosts: []string{"www.example.com"}}, "conflict", `hostname "www.example.com" is already taken`},
		{"bad host", "p1", "web", ServiceUpdate{AddHosts: []string{"-x.example.com"}}, "invalid_hostname", ""},
		{"bad removed host", "p1", "web", ServiceUpdate{RemoveHosts: []string{"a..example.com"}}, "invalid_hostname", ""},
		{"remove own name", "p1", "web", ServiceUpdate{RemoveHosts: []string{"web.example.com"}}, "cannot_remove_primary", "delete the service instead"},
		{"remove absent", "p1", "web", ServiceUpdate{RemoveHosts: []string{"zzz.example.com"}}, "not_a_host", `"zzz.example.com" is not one of the service's hostnames`},
		{"add and remove", "p1", "web", ServiceUpdate{AddHosts: []string{"a.example.com"}, RemoveHosts: []string{"A.example.com"}}, "host_added_and_removed", "a.example.com"},
		{"hsts negative", "p1", "web", ServiceUpdate{HSTSMaxAge: &neg}, "invalid_hsts", "between 0"},
		{"hsts too big", "p1", "web", ServiceUpdate{HSTSMaxAge: &big}, "invalid_hsts", "two years"},
		{"relative path", "p1", "web", ServiceUpdate{HealthPath: &rel}, "invalid_health_path", "must start with /"},
		{"space in path", "p1", "web", ServiceUpdate{HealthPath: &sp}, "invalid_health_path", "printable ASCII"},
		{"fragment", "p1", "web", ServiceUpdate{HealthPath: &frag}, "invalid_health_path", "fragment"},
		{"authority", "p1", "web", ServiceUpdate{HealthPath: &abs}, "invalid_health_path", "not a path"},
		{"interval short", "p1", "web", ServiceUpdate{HealthInterval: &short}, "invalid_health_interval", "between 1s and 1h0m0s"},
		{"interval long", "p1", "web", ServiceUpdate{HealthInterval: &long}, "invalid_health_interval", "between 1s and 1h0m0s"},
		// One bad part refuses the whole update.
		{"good and bad", "p1", "web", ServiceUpdate{Upstreams: []string{"http://10.9.9.9"}, AddHosts: []string{"c.example.com"}, HealthInterval: &short}, "invalid_health_interval", "between"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := p.store.(*store.DB).GetService(ctx, "p1", "web")
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.UpdateService(ctx, tc.project, tc.svc, tc.u)
			wantCode(t, err, tc.code, tc.text)
			after, err := p.store.(*store.DB).GetService(ctx, "p1", "web")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(before.Hostnames, after.Hostnames) || !slices.Equal(before.Upstreams, after.Upstreams) ||
				before.HSTSMaxAge != after.HSTSMaxAge || before.HealthPath != after.HealthPath ||
				before.HealthInterval != after.HealthInterval || !before.UpdatedAt.Equal(after.UpdatedAt) {
				t.Errorf("refused update changed the service:\n%+v\n%+v", before, after)
			}
		})
	}
}

func TestCreateServiceHealth(t *testing.T) {
	p := newTestPlatform(t, Options{})
	ctx := context.Background()
	if _, err := p.AddDomain(ctx, "p1", "example.com", true); err != nil {
		t.Fatal(err)
	}
	_, err := p.CreateService(ctx, "p1", ServiceSpec{Name: "a", Upstreams: []string{"http://10.0.0.1"}, HealthPath: "up"})
	wantCode(t, err, "invalid_health_path", "must start with /")
	_, err = p.CreateService(ctx, "p1", ServiceSpec{Name: "a", Upstreams: []string{"http://10.0.0.1"}, HealthInterval: time.Millisecond})
	wantCode(t, err, "invalid_health_interval", "between 1s and 1h0m0s")
	if ss, _ := p.ListServices(ctx, "p1"); len(ss) != 0 {
		t.Fatalf("a refused create stored %v", ss)
	}
	s, err := p.CreateService(ctx, "p1", ServiceSpec{Name: "a", Upstreams: []string{"http://10.0.0.1"}, HealthPath: "/"})
	if err != nil || s.HealthPath != "" || s.HealthInterval != 0 {
		t.Fatalf("default health: %+v, %v", s, err)
	}
}
