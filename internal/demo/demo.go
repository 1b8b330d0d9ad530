// Package demo is what `spine up` shows first: a tiny upstream on a
// loopback port and the service "hello" pointed at it. It may import
// platform and store.
//
// Imports: never internal/node, internal/api, internal/edge, internal/certs.
package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// Service is the name of the demo service.
const Service = "hello"

// Start runs the demo upstream on a free loopback port and points the
// default project's service Service, under domain, at it, replacing the
// upstream a previous run left behind. Shut the returned server down to
// stop it.
func Start(ctx context.Context, p *platform.Platform, domain string) (*http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: starting the upstream: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintf(w, "Hello from Spine! You reached %s over HTTPS.\n", r.Header.Get("X-Forwarded-Host"))
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	if err := point(ctx, p, domain, "http://"+ln.Addr().String()); err != nil {
		srv.Close()
		return nil, err
	}
	return srv, nil
}

// point makes the demo service's upstream upstream.
func point(ctx context.Context, p *platform.Platform, domain, upstream string) error {
	if old, err := p.GetService(ctx, platform.DefaultProjectID, Service); err == nil {
		if len(old.Upstreams) == 1 && old.Upstreams[0] == upstream {
			return nil
		}
		if err := p.DeleteService(ctx, platform.DefaultProjectID, Service); err != nil {
			return fmt.Errorf("demo: replacing the service: %w", err)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("demo: reading the service: %w", err)
	}
	_, err := p.CreateService(ctx, platform.DefaultProjectID, platform.ServiceSpec{
		Name:      Service,
		Domain:    domain,
		Upstreams: []string{upstream},
	})
	if err != nil {
		return fmt.Errorf("demo: creating the service: %w", err)
	}
	return nil
}
