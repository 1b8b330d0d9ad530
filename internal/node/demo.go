package node

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

// DemoService is the name of the service `spine up` creates.
const DemoService = "hello"

// startDemo runs a tiny upstream on a loopback port and points the service
// "hello" at it, replacing the upstream a previous run left behind.
func (n *Node) startDemo(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("starting the demo upstream: %w", err)
	}
	n.demo = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintf(w, "Hello from Spine! You reached %s over HTTPS.\n", r.Header.Get("X-Forwarded-Host"))
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go n.demo.Serve(ln)
	upstream := "http://" + ln.Addr().String()

	if old, err := n.db.GetService(ctx, platform.DefaultProjectID, DemoService); err == nil {
		if len(old.Upstreams) == 1 && old.Upstreams[0] == upstream {
			return nil
		}
		if err := n.platform.DeleteService(ctx, platform.DefaultProjectID, DemoService); err != nil {
			return fmt.Errorf("replacing the demo service: %w", err)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("reading the demo service: %w", err)
	}
	_, err = n.platform.CreateService(ctx, platform.DefaultProjectID, platform.ServiceSpec{
		Name:      DemoService,
		Domain:    n.cfg.Domain,
		Upstreams: []string{upstream},
	})
	if err != nil {
		return fmt.Errorf("creating the demo service: %w", err)
	}
	return nil
}
