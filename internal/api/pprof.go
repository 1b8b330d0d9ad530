package api

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	rpprof "runtime/pprof"
	"slices"
	"strconv"
	"strings"

	"github.com/spine-platform/spine/internal/store"
)

// debugProfiles are the profiles GET /debug/pprof/{name} serves beyond the
// runtime's named ones (heap, allocs, goroutine, block, mutex,
// threadcreate): a CPU profile and an execution trace for ?seconds= (at
// most maxProfileSeconds), and symbol look-ups. cmdline is
// left out on purpose: the node's command line may hold a database URL
// with its password, and no answer of the API shows a secret.
var debugProfiles = map[string]http.HandlerFunc{
	"profile": pprof.Profile,
	"trace":   pprof.Trace,
	"symbol":  pprof.Symbol,
}

// maxProfileSeconds bounds a CPU profile or a trace: the profile and its
// answer fit in the API server's 60 s write timeout (NewServer), past which
// net/http/pprof refuses with a text answer of its own.
const maxProfileSeconds = 50

// pprof serves Go's runtime profiles (net/http/pprof) to the operator's
// token only: a profile names no secret, but it shows the node's code paths,
// its memory by call site and its goroutines' stacks, which are the
// operator's view of the node, as `go tool pprof` reads it.
func (s *server) pprof(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	name := r.PathValue("name")
	if h, ok := debugProfiles[name]; ok {
		if v := r.URL.Query().Get("seconds"); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > maxProfileSeconds {
				return &apiError{status: http.StatusBadRequest, code: "invalid_seconds", msg: fmt.Sprintf("seconds must be a whole number from 1 to %d (the profile is sent in the API's 60 s write timeout)", maxProfileSeconds)}
			}
		}
		h(w, r)
		return nil
	}
	if rpprof.Lookup(name) == nil {
		var names []string
		for _, p := range rpprof.Profiles() {
			names = append(names, p.Name())
		}
		for n := range debugProfiles {
			names = append(names, n)
		}
		slices.Sort(names)
		return &apiError{status: http.StatusNotFound, code: "no_such_profile", msg: "no profile " + name + "; the profiles are " + strings.Join(names, ", ")}
	}
	pprof.Handler(name).ServeHTTP(w, r)
	return nil
}
