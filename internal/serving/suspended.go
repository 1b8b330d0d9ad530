package serving

import (
	"crypto/sha256"
	"maps"
	"slices"

	"github.com/spine-platform/spine/internal/store"
)

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
