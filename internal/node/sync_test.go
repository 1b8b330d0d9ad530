package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// countingHandler counts the records with one message.
type countingHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// A sync that finds what was applied last leaves the edge alone; a change
// is applied.
func TestSyncAppliesOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	var applied atomic.Int64
	ctx := context.Background()
	n, err := Start(ctx, Config{
		DataDir: dir, HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Version: "test",
		Logger: slog.New(countingHandler{msg: "routes updated", n: &applied}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(ctx)
	before := applied.Load()
	for range 3 {
		if err := n.sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := applied.Load(); got != before {
		t.Errorf("routes rebuilt %d times by syncs that found nothing new", got-before)
	}

	admin := adminClient(t, n, dir)
	if _, err := admin.CreateService(ctx, client.ServiceCreate{Name: "more", Upstreams: []string{"http://127.0.0.1:9"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new service routed", func() error {
		if applied.Load() == before {
			return fmt.Errorf("routes not updated")
		}
		return nil
	})
	after := applied.Load()
	if err := n.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if applied.Load() != after {
		t.Error("routes rebuilt again with nothing new")
	}
}

func TestFingerprintCoversEveryField(t *testing.T) {
	base := store.Service{ID: "1", ProjectID: "p", Name: "a", Domain: "d.test", Hostnames: []string{"a.d.test"},
		Upstreams: []string{"http://127.0.0.1:1"}, HSTSMaxAge: 10, CreatedAt: time.Unix(1, 0), UpdatedAt: time.Unix(2, 0)}
	sum := fingerprint([]store.Service{base}, []string{"d.test"})
	if fingerprint([]store.Service{base}, []string{"d.test"}) != sum {
		t.Fatal("fingerprint is not stable")
	}
	for name, mod := range map[string]func(*store.Service){
		"id":        func(s *store.Service) { s.ID = "2" },
		"project":   func(s *store.Service) { s.ProjectID = "q" },
		"name":      func(s *store.Service) { s.Name = "b" },
		"domain":    func(s *store.Service) { s.Domain = "e.test" },
		"hostnames": func(s *store.Service) { s.Hostnames = []string{"a.d.test", "b.d.test"} },
		"upstreams": func(s *store.Service) { s.Upstreams = []string{"http://127.0.0.1:2"} },
		"hsts":      func(s *store.Service) { s.HSTSMaxAge = 11 },
		"created":   func(s *store.Service) { s.CreatedAt = time.Unix(3, 0) },
		"updated":   func(s *store.Service) { s.UpdatedAt = time.Unix(3, 0) },
		// Lengths are part of it: moving a boundary is a change.
		"boundary": func(s *store.Service) { s.Hostnames = []string{"a.d.tes", "t"} },
	} {
		s := base
		mod(&s)
		if fingerprint([]store.Service{s}, []string{"d.test"}) == sum {
			t.Errorf("a change of %s keeps the fingerprint", name)
		}
	}
	if fingerprint([]store.Service{base}, nil) == sum {
		t.Error("a change of the wildcard domains keeps the fingerprint")
	}
}

// encodeSnapshot writes what json.Marshal would, piece by piece.
func TestEncodeSnapshotMatchesJSON(t *testing.T) {
	for _, s := range []snapshot{
		{Version: 1, WrittenAt: time.Unix(5, 0).UTC()},
		{
			Version: 1, WrittenAt: time.Unix(5, 0).UTC(),
			Services: []store.Service{
				{ID: "1", ProjectID: "p", Name: "a", Domain: "d.test", Hostnames: []string{"a.d.test"}, Upstreams: []string{"http://127.0.0.1:1"}},
				{ID: "2", ProjectID: "p", Name: "b\"<>", Domain: "d.test", Hostnames: []string{"b.d.test", "c.d.test"}},
			},
			Certificates: []snapshotCert{{Names: []string{"a.d.test"}, ChainPEM: "-----BEGIN CERTIFICATE-----\nx\n", KeyPEM: "k"}},
			TicketKeys:   [][]byte{{1, 2, 3}},
			TokenHashes:  []snapshotToken{{Hash: "ab12", Project: store.Project{ID: "p", Name: "p", CreatedAt: time.Unix(7, 0).UTC()}}},
		},
	} {
		var buf bytes.Buffer
		err := encodeSnapshot(&buf, &s, func(yield func([]byte) error) error {
			for _, c := range s.Certificates {
				b, _ := json.Marshal(c)
				if err := yield(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got := buf.Bytes()
		var a, b any
		want, _ := json.Marshal(s)
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, got)
		}
		json.Unmarshal(want, &b)
		// json.Marshal writes null for empty slices, encodeSnapshot [];
		// both read back as empty.
		var back snapshot
		if err := json.Unmarshal(got, &back); err != nil || back.Version != s.Version || len(back.Services) != len(s.Services) || len(back.Certificates) != len(s.Certificates) {
			t.Errorf("read back %+v, %v", back, err)
		}
		if len(s.Services) > 0 && !reflect.DeepEqual(a, b) {
			t.Errorf("encodeSnapshot:\n%s\njson.Marshal:\n%s", got, want)
		}
	}
}

// The snapshot writer writes only when something changed, encodes only the
// certificates that are new since its last write, and what it writes reads
// back with every served certificate.
func TestSnapshotWriterEncodesOnlyNewCertificates(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	ctx := context.Background()
	eventually(t, "hello.localhost served", func() error {
		_, _, err := httpsGet(t, n, "hello.localhost", "/")
		return err
	})
	w := &snapshotWriter{path: filepath.Join(t.TempDir(), SnapshotFile)}
	if err := n.writeSnapshot(w); err != nil {
		t.Fatal(err)
	}
	first, err := readSnapshot(filepath.Dir(w.path))
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Certificates) != 1 || first.Certificates[0].Names[0] != "hello.localhost" || len(first.Services) != 1 {
		t.Fatalf("first snapshot: %d services, certificates %+v", len(first.Services), first.Certificates)
	}
	// The admin token's hash, never the token, for reads without the store.
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if len(first.TokenHashes) != 1 || first.TokenHashes[0].Hash != platform.HashToken(strings.TrimSpace(string(tok))) || first.TokenHashes[0].Project.ID != platform.DefaultProjectID {
		t.Errorf("snapshot token hashes %+v, want the admin token's", first.TokenHashes)
	}
	if raw, _ := os.ReadFile(w.path); bytes.Contains(raw, bytes.TrimSpace(tok)) {
		t.Error("the snapshot holds the admin token itself")
	}
	old := w.entries
	fi, _ := os.Stat(w.path)

	// Nothing new: no write.
	if err := n.writeSnapshot(w); err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(w.path); !fi2.ModTime().Equal(fi.ModTime()) || fi2.Size() != fi.Size() {
		t.Error("an unchanged snapshot was written again")
	}

	// A new service and its certificate: hello's entry is reused as it was.
	admin := adminClient(t, n, dir)
	if _, err := admin.CreateService(ctx, client.ServiceCreate{Name: "more", Upstreams: []string{"http://127.0.0.1:9"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "more.localhost served", func() error {
		_, _, err := httpsGet(t, n, "more.localhost", "/")
		return err
	})
	if err := n.writeSnapshot(w); err != nil {
		t.Fatal(err)
	}
	if len(w.entries) != 2 {
		t.Fatalf("%d entries after the second certificate, want 2", len(w.entries))
	}
	for leaf, e := range old {
		if &w.entries[leaf].json[0] != &e.json[0] {
			t.Error("hello's certificate was encoded again")
		}
	}
	second, err := readSnapshot(filepath.Dir(w.path))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range second.Certificates {
		if _, err := tls.X509KeyPair([]byte(c.ChainPEM), []byte(c.KeyPEM)); err != nil {
			t.Errorf("certificate of %v does not load: %v", c.Names, err)
		}
		for _, h := range c.Names {
			names[h] = true
		}
	}
	if !names["hello.localhost"] || !names["more.localhost"] || len(second.Services) != 2 {
		t.Errorf("second snapshot: %d services, names %v", len(second.Services), names)
	}
	if fi, _ := os.Stat(w.path); fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", fi.Mode().Perm())
	}
}
