package node

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/poll"
)

// A node restarted from a snapshot of the warm-up's size with the store
// away serves the names the snapshot has certificates for before its
// route table is built (through the edge's warm-up), then builds the
// table and lets go of the snapshot's services.
func TestSnapshotServedBeforeItsTable(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	poll.Until(t, "the demo service over HTTPS", waitTimeout, func() error {
		_, body, err := httpsGet(t, n, "hello.localhost", "/")
		if err == nil && !strings.Contains(body, "Hello from Spine") {
			err = errors.New("not the demo's page")
		}
		return err
	})
	roots := x509.NewCertPool()
	roots.AddCert(n.CA().Root()) // the node from the snapshot loads its CA only once the store is back
	if err := fleet.NewSnapshotWriter(dir, n.fleet.Source, n.log).Write(); err != nil {
		t.Fatal(err)
	}
	n.Close(context.Background())

	var logs lockedBuffer
	m := startFromSnapshot(t, dir, &logs, warmUpHook{above: 1}) // every snapshot is of the warm-up's size
	if !m.fleet.Static() || !strings.Contains(logs.String(), "serving the snapshot's names with a certificate while its route table is built") {
		t.Fatalf("the node did not start from its snapshot, before its table:\n%s", logs.String())
	}
	// The demo's upstream went with the first node: any answer will do,
	// the handshake (verified against the CA) is what counts.
	if _, _, err := echGetWith(m, roots, "hello.localhost", nil); err != nil {
		t.Fatalf("a name of the snapshot, right after the start: %v", err)
	}
	poll.Until(t, "the snapshot's route table", waitTimeout, func() error {
		if !m.edge.Has("hello.localhost") || m.edge.WarmStats().Active {
			return errors.New("not built yet")
		}
		return nil
	})
	m.syncer.Resync(t.Context()) // waits for the build (Loop.full); fails, the store is away
	if l := m.fleet.Loaded; l.Services != nil || l.Certificates != nil {
		t.Errorf("the node holds the snapshot's %d services and %d certificates besides serving them", len(l.Services), len(l.Certificates))
	}
	if _, _, err := echGetWith(m, roots, "hello.localhost", nil); err != nil {
		t.Fatalf("a name of the snapshot, once the table is built: %v", err)
	}
}

// startFromSnapshot starts a node on data folder dir with its store away
// (a PostgreSQL address nothing listens on), so it serves dir's snapshot;
// its log goes to log.
func startFromSnapshot(t *testing.T, dir string, log io.Writer, warmUp warmUpHook) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := start(ctx, config.Config{
		DataDir:  dir,
		Store:    "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", // nothing listens: the store is away
		Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		APIAddr:  "127.0.0.1:0",
		Domain:   "localhost",
		Version:  "test",
		Logger:   slog.New(slog.NewTextHandler(log, nil)),
	}, warmUp)
	if err != nil {
		t.Fatalf("starting the node from its snapshot: %v", err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}
