package serving

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

func TestSuspend(t *testing.T) {
	projects := []store.Project{{ID: "p1"}, {ID: "p2", SuspendedAt: time.Unix(1, 0)}}
	suspended := SuspendedProjects(projects)
	if len(suspended) != 1 || !suspended["p2"] {
		t.Fatalf("SuspendedProjects = %v, want p2 only", suspended)
	}
	list := Routes([]store.Service{
		{ProjectID: "p1", Name: "a", Hostnames: []string{"a.test", "a2.test"}, Upstreams: []string{"http://127.0.0.1:1"}},
		{ProjectID: "p2", Name: "b", Hostnames: []string{"b.test", "b2.test"}, Upstreams: []string{"http://127.0.0.1:1"}},
	}, suspended)
	if hosts := list.Managed(); !slices.Equal(hosts, []string{"a.test", "a2.test"}) {
		t.Errorf("managed names %v, want a.test and a2.test only (a suspended name is not renewed)", hosts)
	}
	// A name managed besides (ECH's public name) is in the list as made,
	// which has no room left: an append of it copied a million names.
	if hosts := list.Managed("ech.test"); !slices.Equal(hosts, []string{"a.test", "a2.test", "ech.test"}) || cap(hosts) != len(hosts) {
		t.Errorf("managed names with an extra one %v (cap %d), want a.test, a2.test and ech.test at their size", hosts, cap(hosts))
	}
	if hosts := Routes(list.svcs, nil).Managed("ech.test"); len(hosts) != 5 || cap(hosts) != 5 || hosts[4] != "ech.test" {
		t.Errorf("managed names with none suspended and an extra one %v (cap %d)", hosts, cap(hosts))
	}
	routes := list.Slice()
	var got []string
	for _, r := range routes {
		got = append(got, fmt.Sprintf("%s %s/%s %v", r.Host, r.Project, r.Service, r.Suspended))
	}
	if want := []string{"a.test p1/a false", "a2.test p1/a false", "b.test p2/b true", "b2.test p2/b true"}; !slices.Equal(got, want) || list.Len() != 4 {
		t.Errorf("routes %q (Len %d), want %q", got, list.Len(), want)
	}
	if got := list.SuspendedHosts(); len(got) != 2 || !got["b.test"] || !got["b2.test"] {
		t.Errorf("SuspendedHosts = %v, want b.test and b2.test", got)
	}
	if got := Routes(list.svcs, nil).SuspendedHosts(); len(got) != 0 {
		t.Errorf("SuspendedHosts with no project suspended = %v", got)
	}
	var sum [32]byte
	if WithSuspended(sum, nil) != sum {
		t.Error("no suspension changed the fingerprint")
	}
	if WithSuspended(sum, suspended) == sum || WithSuspended(sum, suspended) == WithSuspended(sum, map[string]bool{"p1": true}) {
		t.Error("a suspension alone does not change the fingerprint")
	}
}
