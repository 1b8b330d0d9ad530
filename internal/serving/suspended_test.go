package serving

import (
	"slices"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/store"
)

func TestSuspend(t *testing.T) {
	projects := []store.Project{{ID: "p1"}, {ID: "p2", SuspendedAt: time.Unix(1, 0)}}
	suspended := SuspendedProjects(projects)
	if len(suspended) != 1 || !suspended["p2"] {
		t.Fatalf("SuspendedProjects = %v, want p2 only", suspended)
	}
	routes := []edge.Route{{Host: "a.test", Project: "p1"}, {Host: "b.test", Project: "p2"}}
	routes, hosts := Suspend(routes, []string{"a.test", "b.test"}, suspended)
	if !slices.Equal(hosts, []string{"a.test"}) {
		t.Errorf("managed names %v, want a.test only (a suspended name is not renewed)", hosts)
	}
	if routes[0].Suspended || !routes[1].Suspended {
		t.Errorf("routes %+v: want b.test alone suspended", routes)
	}
	if got := SuspendedHosts(routes); len(got) != 1 || !got["b.test"] {
		t.Errorf("SuspendedHosts = %v, want b.test", got)
	}
	var sum [32]byte
	if WithSuspended(sum, nil) != sum {
		t.Error("no suspension changed the fingerprint")
	}
	if WithSuspended(sum, suspended) == sum || WithSuspended(sum, suspended) == WithSuspended(sum, map[string]bool{"p1": true}) {
		t.Error("a suspension alone does not change the fingerprint")
	}
}
