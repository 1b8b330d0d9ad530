package node

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/poll"
)

// A write made behind Spine's back (an operator's UPDATE, which moves no
// revision and sends no change notice) is found by the periodic check of
// every service against what the node applied, one service at a time,
// and applied: the service answers from its new upstream. The checks
// that found the store as applied read nothing more; the metrics count
// both kinds.
func TestStoreCheckFindsAWriteBehindSpinesBack(t *testing.T) {
	for _, sc := range storeCases(t) {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			n, err := Start(ctx, config.Config{
				DataDir: dir, Store: sc.dsn, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
				Domain: "localhost", Demo: true, Version: "test",
				ResyncInterval: 20 * time.Millisecond, // a check every 200 ms
				Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatalf("starting node: %v", err)
			}
			t.Cleanup(func() { n.Close(context.Background()) })
			named := func(name string) string {
				return upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
			}
			upA, upB := named("A"), named("B")
			c := adminClient(t, n, dir)
			if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "web", Upstreams: []string{upA}}); err != nil {
				t.Fatal(err)
			}
			answers := func(want string) func() error {
				return func() error {
					resp, body, err := httpsGet(t, n, "web.localhost", "/")
					if err != nil {
						return err
					}
					if resp.StatusCode != http.StatusOK || body != want {
						return fmt.Errorf("web.localhost: %d %q, want %q", resp.StatusCode, body, want)
					}
					return nil
				}
			}
			poll.Until(t, "web answered by A", waitTimeout, answers("A"))
			poll.Until(t, "a check that finds the store as applied", waitTimeout, func() error {
				if made, _ := n.syncer.Checks(); made == 0 {
					return fmt.Errorf("no check yet")
				}
				return nil
			})
			if _, differed := n.syncer.Checks(); differed != 0 {
				t.Fatalf("%d checks differed before any write behind Spine's back", differed)
			}

			// An operator's client waits for the node's writer like any
			// other (busy_timeout); without, an UPDATE that met the node's
			// write lock failed at once with SQLITE_BUSY (once in CI).
			driver, dsn := "sqlite", filepath.Join(dir, "spine.db")+"?_pragma=busy_timeout(10000)"
			if sc.dsn != "" {
				driver, dsn = "pgx", sc.dsn
			}
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			res, err := db.ExecContext(ctx, `UPDATE services SET upstreams = $1 WHERE name = 'web'`, `["`+upB+`"]`)
			if err != nil {
				t.Fatal(err)
			}
			if k, _ := res.RowsAffected(); k != 1 {
				t.Fatalf("the UPDATE changed %d rows", k)
			}
			poll.Until(t, "web answered by B after the write behind Spine's back", waitTimeout, answers("B"))
			m := scrape(t, n.APIAddr())
			if m["spine_store_checks_differed_total"] < 1 || m["spine_store_checks_total"] < 2 {
				t.Errorf("spine_store_checks_total %v, _differed_total %v; want at least 2 and 1", m["spine_store_checks_total"], m["spine_store_checks_differed_total"])
			}
		})
	}
}
