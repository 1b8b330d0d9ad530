package dnsserver

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spine-platform/spine/internal/store"
)

var _ KV = (*store.DB)(nil)

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Two nodes over one SQLite store: what one writes, the other serves once
// its cached read (1s) has expired.
func TestKVStoreSharedBetweenNodes(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	nodeA := &KVStore{KV: db, Now: clk.Now}
	nodeB := &KVStore{KV: db, Now: clk.Now}
	name := "Label." + testZone

	if v, err := nodeB.TXT(ctx, name); err != nil || len(v) != 0 {
		t.Fatalf("empty store: %q, %v", v, err)
	}
	if err := nodeA.AddTXT(ctx, name, "digest-apex"); err != nil {
		t.Fatal(err)
	}
	if err := nodeA.AddTXT(ctx, name, "digest-wildcard"); err != nil {
		t.Fatal(err)
	}
	if err := nodeA.AddTXT(ctx, name, "digest-apex"); err != nil { // again: no duplicate
		t.Fatal(err)
	}
	want := []string{"digest-apex", "digest-wildcard"}
	if v, _ := nodeA.TXT(ctx, name); !slices.Equal(v, want) {
		t.Errorf("writer reads %q, want %q at once", v, want)
	}
	if v, _ := nodeB.TXT(ctx, name); len(v) != 0 {
		t.Errorf("other node read %q within its cache time, want the cached empty answer", v)
	}
	clk.Add(time.Second)
	if v, _ := nodeB.TXT(ctx, name); !slices.Equal(v, want) {
		t.Errorf("other node reads %q after 1s, want %q", v, want)
	}

	all, err := nodeB.ListTXT(ctx)
	if err != nil || !slices.Equal(all["label."+testZone], want) || len(all) != 1 {
		t.Errorf("ListTXT = %v, %v", all, err)
	}

	if err := nodeB.DeleteTXT(ctx, name, "digest-apex"); err != nil {
		t.Fatal(err)
	}
	if err := nodeB.DeleteTXT(ctx, name, "never-there"); err != nil {
		t.Errorf("deleting a missing value: %v", err)
	}
	clk.Add(time.Second)
	if v, _ := nodeA.TXT(ctx, name); !slices.Equal(v, []string{"digest-wildcard"}) {
		t.Errorf("after delete: %q", v)
	}
	if err := nodeA.DeleteTXT(ctx, name, ""); err != nil {
		t.Fatal(err)
	}
	if v, _ := nodeA.TXT(ctx, name); len(v) != 0 {
		t.Errorf("after deleting all: %q", v)
	}
}

// A server answering from the KV store serves what another node wrote.
func TestServerFromKVStore(t *testing.T) {
	db := openDB(t)
	writer := &KVStore{KV: db}
	udp, _ := startServer(t, Config{Records: &KVStore{KV: db, CacheTTL: -1}})
	if err := writer.AddTXT(context.Background(), "k."+testZone, "from-node-2"); err != nil {
		t.Fatal(err)
	}
	r := exchange(t, "udp", udp, new(dns.Msg).SetQuestion("k."+testZone, dns.TypeTXT))
	if got := txtAnswers(r); !slices.Equal(got, []string{"from-node-2"}) {
		t.Errorf("TXT = %q (rcode %s)", got, dns.RcodeToString[r.Rcode])
	}
}

func TestKVStoreBounds(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	s := &KVStore{KV: db, CacheSize: 2}
	for _, n := range []string{"a.", "b.", "c.", "d."} {
		if _, err := s.TXT(ctx, n+testZone); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.cache) > 2 {
		t.Errorf("cache holds %d names, bound is 2", len(s.cache))
	}
	for i := range maxTXTPerName {
		if err := s.AddTXT(ctx, "many."+testZone, string(rune('A'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddTXT(ctx, "many."+testZone, "one too many"); err == nil {
		t.Error("33rd value accepted")
	}
	if err := s.AddTXT(ctx, "bad/name."+testZone, "x"); err == nil {
		t.Error("name with '/' accepted")
	}
}

// duringRead is a KV whose next listing of a name's records runs during()
// after it has listed: a write that ends while a read is under way.
type duringRead struct {
	KV
	during func()
}

func (d *duringRead) ListKeys(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	keys, err := d.KV.ListKeys(ctx, prefix, recursive)
	if f := d.during; f != nil {
		d.during = nil
		f()
	}
	return keys, err
}

// A read that misses a write made while it was under way is cached for
// CacheTTL from when it began: another node's write is served CacheTTL
// after it ended at the latest (what Solver.Wait waits), and a write
// through the same KVStore is served at once.
func TestKVStoreReadDuringWrite(t *testing.T) {
	ctx := context.Background()
	name := "race." + testZone
	for _, writer := range []string{"another node", "the same node"} {
		t.Run(writer, func(t *testing.T) {
			db := openDB(t)
			clk := &clock{t: time.Unix(1_700_000_000, 0)}
			kv := &duringRead{KV: db}
			reader := &KVStore{KV: kv, Now: clk.Now}
			other := &KVStore{KV: db, Now: clk.Now}
			var wrote time.Time
			kv.during = func() {
				w := other
				if writer == "the same node" {
					w = reader
				}
				if err := w.AddTXT(ctx, name, "digest"); err != nil {
					t.Error(err)
				}
				wrote = clk.Now()
				clk.Add(300 * time.Millisecond) // the read ends later
			}
			if v, err := reader.TXT(ctx, name); err != nil || len(v) != 0 {
				t.Fatalf("the read under way: %q, %v; want nothing yet", v, err)
			}
			if writer == "another node" {
				clk.Add(wrote.Add(time.Second).Sub(clk.Now()))
			}
			if v, _ := reader.TXT(ctx, name); !slices.Equal(v, []string{"digest"}) {
				t.Errorf("%v after %s's write: %q, want the record", clk.Now().Sub(wrote), writer, v)
			}
		})
	}
}
