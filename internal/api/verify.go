package api

import (
	"context"
	"net/http"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// verifyTimeout bounds one ownership lookup, so a slow resolver cannot
// hold an API request.
const verifyTimeout = 15 * time.Second

// verifyDomain looks up the domain's ownership record now: the domain of
// the project moves to verified, or another project's domain moves to
// this one, or the answer says what was found instead.
func (s *server) verifyDomain(w http.ResponseWriter, r *http.Request, p store.Project) error {
	ctx, cancel := context.WithTimeout(r.Context(), verifyTimeout)
	defer cancel()
	v, err := s.cfg.Platform.VerifyDomain(ctx, p.ID, r.PathValue("name"))
	if err != nil {
		return err
	}
	out := s.domainOut(v.Domain)
	out.Moved = v.Moved
	out.CheckDetail = v.Detail
	writeJSON(w, http.StatusOK, out)
	return nil
}
