// Fleet mode: what a node does so that several nodes can share one
// PostgreSQL store, and keep serving while it is away (fail static).

package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// Fleet timings.
const (
	heartbeatInterval = 5 * time.Second
	// nodeConnectedWithin: a node whose last heartbeat is older is shown as
	// not connected to the store (it would have written one otherwise).
	nodeConnectedWithin = 3 * heartbeatInterval
	prepareTimeout      = 30 * time.Second
)

// fleetState is the fleet-mode part of a Node.
type fleetState struct {
	id        string    // stable node ID, kept in <data>/node-id
	startedAt time.Time // of this process
	storage   *certs.Storage
	issuer    *certs.CAIssuer

	// static is set when the node started from its snapshot because the
	// store was unreachable; snap is that snapshot's certificates, served
	// for names the certificate manager has no certificate for yet.
	static         bool
	loadedSnapshot *snapshot
	snapCerts      atomic.Pointer[snapshotCerts]

	prepared  atomic.Bool // bootstrap and CA done
	prepareMu sync.Mutex

	lastSync    atomic.Pointer[syncRecord]    // the last successful sync
	applied     [sha256.Size]byte             // fingerprint of what the last sync applied; under Node.syncMu
	snapshotDue chan struct{}                 // capacity 1: write the snapshot now
	ticketKeys  atomic.Pointer[ticketKeyRing] // as last read from the store
	storeOK     atomic.Bool                   // the last store operation succeeded
	nodes       atomic.Pointer[nodeList]      // the node list as last read, for reads while the store is away

	reads *staleReads
}

// syncRecord is what a successful sync read: the services it serves and
// their fingerprint.
type syncRecord struct {
	svcs []store.Service
	sum  [sha256.Size]byte
}

// openStore opens the store. If PostgreSQL cannot be reached and the data
// folder holds a snapshot, the node starts from the snapshot instead of
// failing, and connects to the store when it comes back.
func (n *Node) openStore(ctx context.Context) (*store.DB, error) {
	f := &n.fleet
	f.startedAt = time.Now().UTC()
	id, err := nodeID(n.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	f.id = id
	db, err := store.Open(ctx, n.cfg.Store)
	if err == nil {
		f.storeOK.Store(true)
		return db, nil
	}
	if !errors.Is(err, store.ErrUnavailable) {
		return nil, fmt.Errorf("opening the store: %w", err)
	}
	snap, serr := readSnapshot(n.cfg.DataDir)
	if serr != nil {
		return nil, fmt.Errorf("opening the store: %w (and no usable snapshot to serve from: %v)", err, serr)
	}
	db, lerr := store.OpenLazy(ctx, n.cfg.Store)
	if lerr != nil {
		return nil, fmt.Errorf("opening the store: %w", lerr)
	}
	n.log.Warn("the store is unreachable; serving the last known snapshot until it returns",
		"snapshot_written", snap.WrittenAt, "services", len(snap.Services), "err", err)
	f.static = true
	f.loadedSnapshot = snap
	return db, nil
}

// nodeID returns the ID kept in <data>/node-id, creating it on first start.
func nodeID(dir string) (string, error) {
	path := filepath.Join(dir, "node-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the node ID: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "node"
	}
	id := host + "-" + strings.ToLower(rand.Text()[:8])
	if err := platform.WriteSecretFile(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("writing the node ID: %w", err)
	}
	return id, nil
}

// prepare does the start-up work that needs the store: the default project
// and admin token, the configured domain, the internal CA. It is done once;
// a node that started from its snapshot retries it before each sync.
func (n *Node) prepare(ctx context.Context) error {
	f := &n.fleet
	if f.prepared.Load() {
		return nil
	}
	f.prepareMu.Lock()
	defer f.prepareMu.Unlock()
	if f.prepared.Load() {
		return nil
	}
	tokenFile := filepath.Join(n.cfg.DataDir, "admin.token")
	admin, err := n.platform.Bootstrap(ctx, tokenFile)
	if err != nil {
		return err
	}
	// The admin token's look-up goes into the snapshot before its first use.
	if tok, err := os.ReadFile(tokenFile); err == nil {
		f.reads.rememberToken(platform.HashToken(strings.TrimSpace(string(tok))), admin)
	}
	if n.cfg.Domain != "" {
		if _, err := n.platform.EnsureDomain(ctx, platform.DefaultProjectID, n.cfg.Domain, true); err != nil {
			return fmt.Errorf("configuring domain %s: %w", n.cfg.Domain, err)
		}
	}
	c, err := ca.Load(ctx, f.storage, ca.Options{LeafLifetime: n.cfg.LeafLifetime})
	if err != nil {
		return fmt.Errorf("loading the internal CA: %w", err)
	}
	if err := c.WriteRootPEM(filepath.Join(n.cfg.DataDir, "ca", "root.pem")); err != nil {
		return fmt.Errorf("writing the CA root: %w", err)
	}
	f.issuer.SetCA(c)
	f.prepared.Store(true)
	return nil
}

// caRoot is the API's CARoot: nil until the CA is loaded.
func (n *Node) caRoot() []byte {
	if c := n.fleet.issuer.CA(); c != nil {
		return c.RootPEM()
	}
	return nil
}

// startFleet starts the heartbeat, the ticket-key keeper and the snapshot
// writer; they stop when ctx ends.
func (n *Node) startFleet(ctx context.Context) {
	for _, loop := range []func(context.Context){n.heartbeats, n.ticketKeys, n.snapshots} {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			loop(ctx)
		}()
	}
}

// heartbeats records this node in the store's node list every few seconds.
func (n *Node) heartbeats(ctx context.Context) {
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, heartbeatInterval)
		err := n.db.Heartbeat(hctx, store.Node{
			ID:        n.fleet.id,
			Version:   n.cfg.Version,
			HTTPSAddr: n.HTTPSAddr(),
			HTTPAddr:  n.HTTPAddr(),
			APIAddr:   n.APIAddr(),
			StartedAt: n.fleet.startedAt,
		})
		cancel()
		if ctx.Err() != nil {
			return
		}
		n.noteStore(err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// noteStore records whether the last store operation worked, and logs the
// moments the store goes away and comes back.
func (n *Node) noteStore(err error) {
	ok := err == nil
	if n.fleet.storeOK.Swap(ok) != ok {
		if ok {
			n.log.Info("the store is reachable again")
		} else {
			n.log.Warn("the store is unreachable; serving the last known routes and certificates", "err", err)
		}
	}
}

// listNodes is the API's node list. With the store unreachable it still
// answers, with the error: the list as last read (or, if none was, this
// node alone), every node shown as not connected, since none can be seen
// to reach the store.
func (n *Node) listNodes(ctx context.Context) ([]client.Node, error) {
	nodes, err := n.db.ListNodes(ctx)
	if err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			return nil, err
		}
		return n.lastNodes(), err
	}
	out := make([]client.Node, 0, len(nodes))
	for _, s := range nodes {
		hb := s.Heartbeat
		out = append(out, client.Node{
			ID: s.ID, Version: s.Version, HTTPSAddr: s.HTTPSAddr, HTTPAddr: s.HTTPAddr, APIAddr: s.APIAddr,
			StartedAt: s.StartedAt, LastHeartbeat: &hb, SinceHeartbeat: s.Age.Round(time.Millisecond).String(),
			StoreConnected: s.Age < nodeConnectedWithin, Self: s.ID == n.fleet.id,
		})
	}
	n.fleet.nodes.Store(&nodeList{nodes: out, readAt: time.Now()})
	return out, nil
}

// nodeList is the node list as last read from the store.
type nodeList struct {
	nodes  []client.Node
	readAt time.Time
}

// lastNodes is the node list as last read, aged and marked not connected.
func (n *Node) lastNodes() []client.Node {
	self := client.Node{
		ID: n.fleet.id, Version: n.cfg.Version, HTTPSAddr: n.HTTPSAddr(), HTTPAddr: n.HTTPAddr(), APIAddr: n.APIAddr(),
		StartedAt: n.fleet.startedAt, Self: true,
	}
	last := n.fleet.nodes.Load()
	if last == nil {
		return []client.Node{self}
	}
	out := make([]client.Node, 0, len(last.nodes)+1)
	found := false
	for _, nd := range last.nodes {
		nd.StoreConnected = false
		if nd.LastHeartbeat != nil {
			if age, err := time.ParseDuration(nd.SinceHeartbeat); err == nil {
				nd.SinceHeartbeat = (age + time.Since(last.readAt)).Round(time.Millisecond).String()
			}
		}
		if nd.Self {
			self.LastHeartbeat, self.SinceHeartbeat = nd.LastHeartbeat, nd.SinceHeartbeat
			nd, found = self, true
		}
		out = append(out, nd)
	}
	if !found {
		out = append(out, self)
	}
	return out
}
