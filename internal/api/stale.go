package api

import (
	"context"
	"net/http"
	"sync/atomic"

	"github.com/spine-platform/spine/client"
)

type staleKey struct{}

// MarkStale records that the answer to the request whose context is ctx is
// read from a node's last known state, because the store is unreachable.
// The answer then carries the header Warning: client.StaleWarning. It does
// nothing outside an API request.
func MarkStale(ctx context.Context) {
	if f, ok := ctx.Value(staleKey{}).(*atomic.Bool); ok {
		f.Store(true)
	}
}

// staleAnswers lets handlers (and the layers below them) MarkStale a request.
func staleAnswers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		flag := new(atomic.Bool)
		h.ServeHTTP(&staleWriter{ResponseWriter: w, stale: flag}, r.WithContext(context.WithValue(r.Context(), staleKey{}, flag)))
	})
}

// staleWriter adds the Warning header when the status is written, if the
// request was marked stale by then.
type staleWriter struct {
	http.ResponseWriter
	stale *atomic.Bool
	wrote bool
}

func (w *staleWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if w.stale.Load() {
			w.Header().Set("Warning", client.StaleWarning)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *staleWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *staleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
