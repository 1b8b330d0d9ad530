package syncer

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/store"
)

// routesParts are parts that keep the routes last set.
type routesParts struct {
	parts
	routes []edge.Route
}

func (p *routesParts) SetRouteSeq(r edge.RouteSeq) error {
	var routes []edge.Route
	for rt := range r.All() {
		routes = append(routes, *rt) // r reuses *rt
	}
	p.routes = routes
	return nil
}

// The snapshot written from a sync's record after a delta of one service
// differs from the one before by that service's shard alone (the others'
// parts are the same files), and a node started from it with the store
// away routes every hostname the sync served, the change included.
func TestSnapshotAfterDelta(t *testing.T) {
	ctx := t.Context()
	st := &benchStore{}
	for i := range 1000 {
		name := fmt.Sprintf("s%04d", i)
		st.svcs = append(st.svcs, store.Service{ID: "id-" + name, ProjectID: "p", Name: name, Domain: "customers.test",
			Hostnames: []string{name + ".customers.test"}, Upstreams: []string{"http://10.0.0.1:8080"}})
	}
	changed := st.svcs[500]
	changed.Hostnames = []string{"renamed.customers.test"}
	st.changed = []store.Service{changed}
	p := &routesParts{}
	l := New(Config{Store: st, Edge: p, Certs: p, Reads: p, Suspended: p, Uploaded: p, Health: p, Snapshots: p,
		Prepare: func(context.Context) error { return nil }, Wildcard: func(store.Domain) bool { return false },
		Interval: 1, Logger: slog.New(slog.DiscardHandler)})
	if err := l.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w := fleet.NewSnapshotWriter(dir, func() *fleet.SnapshotSource {
		return snapshotSource(l.Last(), func(string) *tls.Certificate { return nil })
	}, slog.New(slog.DiscardHandler))
	shards := func() []string {
		t.Helper()
		if err := w.Write(); err != nil {
			t.Fatal(err)
		}
		var m struct{ Shards []string }
		b, err := os.ReadFile(filepath.Join(dir, fleet.SnapshotDir, "manifest.json"))
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil {
			t.Fatal(err)
		}
		return m.Shards
	}
	before := shards()
	if ok, err := l.SyncChanges(ctx); !ok || err != nil {
		t.Fatalf("SyncChanges = %v, %v", ok, err)
	}
	after := shards()
	var gone, came []string
	for _, s := range before {
		if !slices.Contains(after, s) {
			gone = append(gone, s)
		}
	}
	for _, s := range after {
		if !slices.Contains(before, s) {
			came = append(came, s)
		}
	}
	if len(before) != len(after) || len(gone) != 1 || len(came) != 1 || gone[0][:len("services-xx")] != came[0][:len("services-xx")] {
		t.Errorf("after a change of one service, the shards %v left and %v came (of %d)", gone, came, len(after))
	}

	// A restart from the snapshot with the store away.
	snap, err := fleet.ReadSnapshot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	p2 := &routesParts{}
	l2 := New(Config{Store: &fakeStore{fail: store.ErrUnavailable}, Edge: p2, Certs: p2, Reads: p2, Suspended: p2, Uploaded: p2,
		Health: p2, Snapshots: p2, Prepare: func(context.Context) error { return nil }, Wildcard: func(store.Domain) bool { return false },
		Interval: 1, Logger: slog.New(slog.DiscardHandler)})
	if err := l2.ServeSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	routed := map[string]bool{}
	for _, r := range p2.routes {
		routed[r.Host] = true
	}
	for _, sv := range append(slices.Clone(st.svcs[:500]), append(st.svcs[501:], changed)...) {
		if !routed[sv.Hostnames[0]] {
			t.Fatalf("%s is not routed after a restart from the snapshot (%d routed)", sv.Hostnames[0], len(routed))
		}
	}
	if len(routed) != len(st.svcs) || routed["s0500.customers.test"] {
		t.Errorf("%d hostnames routed after a restart, want %d; the old name routed: %v", len(routed), len(st.svcs), routed["s0500.customers.test"])
	}
	// Served from the snapshot, the store not reached: the work that waits
	// for a sync of the store still waits.
	select {
	case <-l2.StoreSynced():
		t.Error("StoreSynced closed by a start from the snapshot")
	default:
	}
}

// hotParts is routesParts with the edge's warm-up, whose SetRoutes waits
// for release, and which counts the services the API's reads were seeded
// with (-1: never seeded).
type hotParts struct {
	routesParts
	lookup  edge.WarmLookup
	setting chan struct{} // closed when SetRoutes begins
	release chan struct{}
	seeded  atomic.Int64
}

func (p *hotParts) Warm(l edge.WarmLookup) { p.lookup = l }
func (p *hotParts) SetRouteSeq(r edge.RouteSeq) error {
	close(p.setting)
	<-p.release
	return p.routesParts.SetRouteSeq(r)
}
func (p *hotParts) SeedSnapshot(svcs []store.Service, _ map[string]store.Credential, _ bool) {
	p.seeded.Store(int64(len(svcs)))
}

// A large snapshot is served before its route table is built: the names
// it has certificates for (their own or their parent's wildcard) through
// the warm-up at once, every name once the table is built in the
// background; a sync from the store waits for that build (it must not be
// replaced by the older table), and the snapshot's services are let go.
// The same with the snapshot read hot first from its folder (its other
// services are read in the background, before the table; the API's reads
// are seeded with every service, never with the hot ones alone).
func TestServeSnapshotHotFirst(t *testing.T) {
	var svcs []store.Service
	for i := range 100 {
		name := fmt.Sprintf("s%03d", i)
		svcs = append(svcs, store.Service{ID: "id-" + name, ProjectID: "p", Name: name, Domain: "customers.test",
			Hostnames: []string{name + ".customers.test"}, Upstreams: []string{"http://10.0.0.1:8080"}})
	}
	svcs[7].Hostnames = append(svcs[7].Hostnames, "www.wild.test")
	ca := pkitest.NewRoot("test root")
	certs := map[string]*tls.Certificate{}
	for _, names := range [][]string{{"s001.customers.test", "s002.customers.test"}, {"*.wild.test"}} {
		c := ca.Issue(pkitest.Leaf{DNSNames: names}).TLS()
		for _, n := range names {
			certs[n] = &c
		}
	}
	inMemory := func() *fleet.Snapshot {
		return &fleet.Snapshot{Services: slices.Clone(svcs), Certificates: []fleet.SnapshotCert{
			{Names: []string{"s001.customers.test", "s002.customers.test"}}, {Names: []string{"*.wild.test"}}}}
	}
	fromFolder := func() *fleet.Snapshot {
		dir := t.TempDir()
		lookup := func(h string) *tls.Certificate {
			if c := certs[h]; c != nil {
				return c
			}
			if _, parent, ok := strings.Cut(h, "."); ok {
				return certs["*."+parent]
			}
			return nil
		}
		w := fleet.NewSnapshotWriter(dir, func() *fleet.SnapshotSource {
			return &fleet.SnapshotSource{Services: svcs, Sum: [32]byte{1}, Certificate: lookup}
		}, slog.New(slog.DiscardHandler))
		if err := w.Write(); err != nil {
			t.Fatal(err)
		}
		s, err := fleet.ReadSnapshotHotFirst(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Partial() || len(s.Services) != 3 || s.Len() != len(svcs) {
			t.Fatalf("read hot first: partial %v, %d services of %d", s.Partial(), len(s.Services), s.Len())
		}
		return s
	}
	for what, snapshot := range map[string]func() *fleet.Snapshot{"in memory": inMemory, "hot first": fromFolder} {
		snap := snapshot()
		partial := snap.Partial()
		p := &hotParts{setting: make(chan struct{}), release: make(chan struct{})}
		p.seeded.Store(-1)
		l := New(Config{Store: &fakeStore{fail: store.ErrUnavailable}, Edge: p, Certs: p, Reads: p, Suspended: p, Uploaded: p,
			Health: p, Snapshots: p, Prepare: func(context.Context) error { return nil }, Wildcard: func(store.Domain) bool { return false },
			Interval: 1, Logger: slog.New(slog.DiscardHandler), Warm: &WarmConfig{Above: 50}})
		if err := l.ServeSnapshot(snap); err != nil {
			t.Fatal(err)
		}
		if p.lookup == nil || !l.Synced() {
			t.Fatalf("%s: a snapshot of %d services: warm-up %v, synced %v", what, len(svcs), p.lookup != nil, l.Synced())
		}
		for host, want := range map[string]string{"s001.customers.test": "s001", "s002.customers.test": "s002", "www.wild.test": "s007",
			"s003.customers.test": "", "nowhere.test": ""} {
			r, _, err := p.lookup(t.Context(), host)
			if err != nil || (r == nil) != (want == "") || r != nil && (r.Host != host || r.Service != want) {
				t.Errorf("%s: %s: %+v, %v; want service %q", what, host, r, err, want)
			}
		}
		if n := p.seeded.Load(); partial && n != -1 && n != int64(len(svcs)) || !partial && n != int64(len(svcs)) {
			t.Errorf("%s: the API's reads seeded with %d services before the table", what, n)
		}
		<-p.setting // the build has begun, in the background
		if l.full.TryLock() {
			t.Fatalf("%s: a sync from the store could run while the snapshot's table is built", what)
		}
		if n := p.seeded.Load(); n != int64(len(svcs)) {
			t.Errorf("%s: the API's reads seeded with %d services, want %d", what, n, len(svcs))
		}
		close(p.release)
		l.full.Lock() // the build is over
		l.full.Unlock()
		if len(p.routes) != len(svcs)+1 || snap.Services != nil || snap.Certificates != nil {
			t.Errorf("%s: %d routes built, want %d; the snapshot's services let go: %v", what, len(p.routes), len(svcs)+1, snap.Services == nil)
		}
	}
}
