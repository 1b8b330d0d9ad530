package api

import (
	"errors"
	"net/http"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// listNodes answers GET /v1/nodes. Nodes are operator information (their
// addresses and versions): the route needs the operator scope. With the
// store unreachable, the answering node still lists itself, marked stale.
func (s *server) listNodes(w http.ResponseWriter, r *http.Request, p store.Project) error {
	if s.cfg.Nodes == nil {
		writeJSON(w, http.StatusOK, map[string]any{"nodes": []client.Node{}})
		return nil
	}
	nodes, err := s.cfg.Nodes(r.Context())
	if err != nil {
		if !errors.Is(err, store.ErrUnavailable) || len(nodes) == 0 {
			return &platform.Error{Kind: platform.Unavailable, Code: "store_unavailable", Message: "the store cannot be reached right now, so the node list is unknown; retry in a moment", Err: err}
		}
		MarkStale(r.Context())
	}
	if nodes == nil {
		nodes = []client.Node{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes})
	return nil
}
