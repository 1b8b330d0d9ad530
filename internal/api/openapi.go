package api

import (
	_ "embed"
	"net/http"

	"github.com/spine-platform/spine/internal/store"
)

// openAPIDoc is the OpenAPI 3.1 description of every route; a test holds it
// and the router to each other.
//
//go:embed openapi.json
var openAPIDoc []byte

func (s *server) openAPI(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openAPIDoc)
	return err
}
