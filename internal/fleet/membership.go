package fleet

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// Heartbeat timings.
const (
	// HeartbeatInterval is how often a node records itself in the node list.
	HeartbeatInterval = 5 * time.Second
	// ConnectedWithin: a node whose last heartbeat is older is shown as not
	// connected to the store (it would have written one otherwise).
	ConnectedWithin = 3 * HeartbeatInterval
)

// NodeID returns the ID kept in <dir>/node-id, creating it (the host name
// and a random suffix) on first start.
func NodeID(dir string) (string, error) {
	path := filepath.Join(dir, "node-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("fleet: reading the node ID: %w", err)
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "node"
	}
	id := host + "-" + strings.ToLower(rand.Text()[:8])
	if err := platform.WriteSecretFile(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("fleet: writing the node ID: %w", err)
	}
	return id, nil
}

// MemberStore is the part of the store that Membership needs.
type MemberStore interface {
	Heartbeat(ctx context.Context, n store.Node) error
	ListNodes(ctx context.Context) ([]store.Node, error)
}

// Membership is this node's place in the fleet's node list: Run writes its
// heartbeat, Nodes lists the fleet. The node list as last read is kept (one
// list, replaced by each read), so that a node cut off from the store still
// lists the whole fleet.
type Membership struct {
	store  MemberStore
	self   store.Node
	health *StoreHealth
	last   atomic.Pointer[nodeList]
}

// nodeList is the node list as last read from the store.
type nodeList struct {
	nodes  []client.Node
	readAt time.Time
}

// NewMembership returns the membership of the node self (ID, version,
// addresses and start time; the heartbeat time is the store's). health,
// if not nil, is told of each heartbeat's outcome.
func NewMembership(st MemberStore, self store.Node, health *StoreHealth) *Membership {
	return &Membership{store: st, self: self, health: health}
}

// Run writes a heartbeat every HeartbeatInterval until ctx ends.
func (m *Membership) Run(ctx context.Context) {
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		hctx, cancel := context.WithTimeout(ctx, HeartbeatInterval)
		err := m.store.Heartbeat(hctx, m.self)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if m.health != nil {
			m.health.Note(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Nodes is the fleet's node list (api.Config.Nodes). With the store
// unreachable it still answers, with the error: the list as last read (or,
// if none was, this node alone), every node shown as not connected, since
// none can be seen to reach the store.
func (m *Membership) Nodes(ctx context.Context) ([]client.Node, error) {
	nodes, err := m.store.ListNodes(ctx)
	if err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			return nil, err
		}
		return m.lastNodes(), err
	}
	out := make([]client.Node, 0, len(nodes))
	for _, s := range nodes {
		hb := s.Heartbeat
		out = append(out, client.Node{
			ID: s.ID, Version: s.Version, HTTPSAddr: s.HTTPSAddr, HTTPAddr: s.HTTPAddr, APIAddr: s.APIAddr,
			StartedAt: s.StartedAt, LastHeartbeat: &hb, SinceHeartbeat: s.Age.Round(time.Millisecond).String(),
			StoreConnected: s.Age < ConnectedWithin, Self: s.ID == m.self.ID,
		})
	}
	m.last.Store(&nodeList{nodes: out, readAt: time.Now()})
	return out, nil
}

// lastNodes is the node list as last read, aged and marked not connected.
func (m *Membership) lastNodes() []client.Node {
	self := client.Node{
		ID: m.self.ID, Version: m.self.Version, HTTPSAddr: m.self.HTTPSAddr, HTTPAddr: m.self.HTTPAddr, APIAddr: m.self.APIAddr,
		StartedAt: m.self.StartedAt, Self: true,
	}
	last := m.last.Load()
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

// Metrics is the node list for metrics.Sources.Fleet: each node's time
// since its last heartbeat and whether it is connected; false if the list
// cannot be read (one query, bounded by 5 s).
func (m *Membership) Metrics() ([]metrics.Node, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nodes, err := m.Nodes(ctx)
	if err != nil {
		return nil, false
	}
	out := make([]metrics.Node, 0, len(nodes))
	for _, nd := range nodes {
		age, _ := time.ParseDuration(nd.SinceHeartbeat)
		out = append(out, metrics.Node{ID: nd.ID, SinceHeartbeat: age, Connected: nd.StoreConnected})
	}
	return out, true
}
