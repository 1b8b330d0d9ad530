package serving

import (
	"crypto/sha256"
	"maps"
	"slices"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// Suspend marks the routes of suspended projects (503 page, no upstream)
// and leaves their hostnames out of hosts, those whose certificates are
// managed (so they are not renewed). routes and hosts are Routes' answer;
// routes is changed in place.
func Suspend(routes []edge.Route, hosts []string, suspended map[string]bool) ([]edge.Route, []string) {
	if len(suspended) == 0 {
		return routes, hosts
	}
	managed := hosts[:0:0]
	for i := range routes {
		if suspended[routes[i].Project] {
			routes[i].Suspended = true
			continue
		}
		managed = append(managed, routes[i].Host)
	}
	return routes, managed
}

// SuspendedHosts returns the hostnames routed to the suspended page.
func SuspendedHosts(routes []edge.Route) map[string]bool {
	out := map[string]bool{}
	var y sched.Yielder
	for i, r := range routes {
		if i%256 == 0 {
			y.Maybe()
		}
		if r.Suspended {
			out[r.Host] = true
		}
	}
	return out
}

// WithSuspended folds the suspended projects into a fingerprint (State.Sum),
// so that a suspension or a resumption alone is applied.
func WithSuspended(sum [sha256.Size]byte, suspended map[string]bool) [sha256.Size]byte {
	if len(suspended) == 0 {
		return sum
	}
	h := sha256.New()
	h.Write(sum[:])
	for _, id := range slices.Sorted(maps.Keys(suspended)) {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// SuspendedProjects returns the IDs of the suspended projects.
func SuspendedProjects(projects []store.Project) map[string]bool {
	out := map[string]bool{}
	for _, p := range projects {
		if !p.SuspendedAt.IsZero() {
			out[p.ID] = true
		}
	}
	return out
}
