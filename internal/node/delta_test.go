package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/poll"
)

// startCountingNode starts a node whose "routes updated" lines (a full
// route table set: edge.SetRoutes) are counted in full.
func startCountingNode(t *testing.T, dir, dsn string, full *atomic.Int64) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := Start(ctx, config.Config{
		DataDir: dir, Store: dsn, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Version: "test",
		ResyncInterval: time.Hour, // only change notices: a full sync here is a fallback
		Logger:         slog.New(teeHandler{countingHandler{msg: "routes updated", n: full}, slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})}),
	})
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

// A service created, updated or deleted while others are served reaches
// the edge and the certificate manager as a delta (no full route table
// rebuilt), each hostname served, changed or dropped exactly as a full
// sync would: a full sync afterwards finds nothing to change. On
// PostgreSQL a second node gets the change made through the first the
// same way, through its change notice.
func TestChangesAppliedAsDelta(t *testing.T) {
	for _, sc := range storeCases(t) {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			named := func(name string) string {
				return upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
			}
			upA, upB := named("A"), named("B")
			dirs := []string{t.TempDir()}
			if sc.dsn != "" {
				dirs = append(dirs, t.TempDir())
			}
			var nodes []*Node
			fulls := make([]*atomic.Int64, len(dirs))
			for i, dir := range dirs {
				fulls[i] = new(atomic.Int64)
				dsn := sc.dsn
				if dsn == "" {
					dsn = "sqlite:" + filepath.Join(dirs[0], "spine.db") // one store, one node
				}
				if i > 0 { // the fleet's secret key file, as an operator copies it
					key, err := os.ReadFile(filepath.Join(dirs[0], "secret.key"))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(dir, "secret.key"), key, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				nodes = append(nodes, startCountingNode(t, dir, dsn, fulls[i]))
			}
			c := adminClient(t, nodes[0], dirs[0])
			for i := range 4 {
				if _, err := c.CreateService(ctx, client.ServiceCreate{Name: fmt.Sprintf("keep%d", i), Upstreams: []string{upA}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "moving", Upstreams: []string{upA}}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "gone", Upstreams: []string{upA}}); err != nil {
				t.Fatal(err)
			}
			// served reports whether every node routes host and manages
			// its certificate (want true) or none does (want false).
			served := func(host string, want bool) func() error {
				return func() error {
					for i, n := range nodes {
						if n.edge.Has(host) != want || n.certs.Manages(host) != want {
							return fmt.Errorf("node %d: %s routed %v, managed %v; want %v", i, host, n.edge.Has(host), n.certs.Manages(host), want)
						}
					}
					return nil
				}
			}
			for _, h := range []string{"keep0.localhost", "keep3.localhost", "moving.localhost", "gone.localhost"} {
				poll.Until(t, h+" served", waitTimeout, served(h, true))
			}
			before := make([]int64, len(nodes))
			for i := range nodes {
				before[i] = fulls[i].Load()
			}

			if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "fresh", Upstreams: []string{upB}}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.UpdateService(ctx, "moving", client.ServiceUpdate{Upstreams: []string{upB}, AddHosts: []string{"alias.localhost"}}); err != nil {
				t.Fatal(err)
			}
			if err := c.DeleteService(ctx, "gone"); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, "fresh served", waitTimeout, served("fresh.localhost", true))
			poll.Until(t, "moving's new hostname served", waitTimeout, served("alias.localhost", true))
			poll.Until(t, "gone dropped", waitTimeout, served("gone.localhost", false))
			for i, n := range nodes {
				for _, h := range []string{"keep0.localhost", "keep1.localhost", "keep2.localhost", "keep3.localhost", "moving.localhost"} {
					if err := served(h, true)(); err != nil {
						t.Errorf("a service not changed: %v", err)
					}
				}
				// The changed service answers from its new upstream, on
				// its old hostname and its new one.
				for _, h := range []string{"moving.localhost", "alias.localhost", "fresh.localhost"} {
					poll.Until(t, h+" answered by B", waitTimeout, func() error {
						resp, body, err := httpsGet(t, n, h, "/")
						if err != nil {
							return err
						}
						if resp.StatusCode != http.StatusOK || body != "B" {
							return fmt.Errorf("node %d: %s answered %d %q, want 200 B", i, h, resp.StatusCode, body)
						}
						return nil
					})
				}
				if got := fulls[i].Load(); got != before[i] {
					t.Errorf("node %d: the route table was rebuilt whole %d times for a change of services", i, got-before[i])
				}
				// A full sync now finds what the deltas applied.
				if err := n.syncer.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				if got := fulls[i].Load(); got != before[i] {
					t.Errorf("node %d: a full sync after the deltas rebuilt the route table: the deltas left it otherwise", i)
				}
				// The fail-static snapshot's source lists the services as they are.
				names := map[string]bool{}
				for _, s := range n.syncer.Last().Applied.List() {
					names[s.Name] = true
				}
				if !names["fresh"] || names["gone"] || !names["moving"] || len(names) < 6 {
					t.Errorf("node %d: the snapshot's services are %v, want fresh and moving, not gone", i, names)
				}
			}
		})
	}
}

// teeHandler hands each record to both handlers.
type teeHandler struct{ a, b slog.Handler }

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.a.Enabled(ctx, l) || h.b.Enabled(ctx, l)
}
func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	h.a.Handle(ctx, r)
	return h.b.Handle(ctx, r.Clone())
}
func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{h.a.WithAttrs(as), h.b.WithAttrs(as)}
}
func (h teeHandler) WithGroup(g string) slog.Handler {
	return teeHandler{h.a.WithGroup(g), h.b.WithGroup(g)}
}
