// Where GET /metrics is served: on the API's listener, nowhere, or on a
// listener of its own.

package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
)

// Values of where (config.Config.Metrics, --metrics) besides a listen address.
const (
	OnAPI = "api" // the API's listener, as Caddy serves its metrics on its admin port
	Off   = "off"
)

// ValidWhere reports whether where is OnAPI, Off or a listen address
// (HOST:PORT or :PORT).
func ValidWhere(where string) bool {
	return where == OnAPI || where == Off || hostname.ValidListenAddr(where)
}

// CheckWhere returns nil for a ValidWhere, else an error saying what to
// write instead.
func CheckWhere(where string) error {
	if ValidWhere(where) {
		return nil
	}
	return errors.New("write api (the API's listener), off, or HOST:PORT of a listener of its own, e.g. 127.0.0.1:9180")
}

// Endpoint is where a Registry is served.
type Endpoint struct {
	where string
	ln    net.Listener // nil unless where is an address
	srv   *http.Server
}

// Listen opens the listener of where when it is an address; OnAPI and Off
// open nothing. A listener that cannot be had is an error that says to
// pick another address.
func Listen(where string) (*Endpoint, error) {
	e := &Endpoint{where: where}
	if where == OnAPI || where == Off {
		return e, nil
	}
	ln, err := net.Listen("tcp", where)
	if err != nil {
		return nil, errors.Join(err, errors.New("pick another address for the metrics"))
	}
	e.ln = ln
	e.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	return e, nil
}

// Addr is the address of the endpoint's own listener, "" without one.
func (e *Endpoint) Addr() string {
	if e == nil || e.ln == nil {
		return ""
	}
	return e.ln.Addr().String()
}

// APIHandler is the API's GET /metrics: r's handler when the endpoint is
// OnAPI, else nil (the API answers 404).
func (e *Endpoint) APIHandler(r *Registry) http.Handler {
	if e.where != OnAPI {
		return nil
	}
	return r.Handler()
}

// Serve serves r's GET /metrics on the endpoint's own listener until
// Shutdown. Without one it returns http.ErrServerClosed at once. Call it
// once, before Shutdown.
func (e *Endpoint) Serve(r *Registry) error {
	if e.ln == nil {
		return http.ErrServerClosed
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", r.Handler())
	e.srv.Handler = mux // Shutdown reads only the server's own state
	return e.srv.Serve(e.ln)
}

// Shutdown stops serving, open scrapes get until ctx ends, and closes the
// listener. A nil Endpoint has nothing to stop.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	if e == nil || e.ln == nil {
		return nil
	}
	err := e.srv.Shutdown(ctx)
	e.ln.Close()
	return err
}
