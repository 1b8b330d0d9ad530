package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/poll"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Three nodes are asked for one new hostname at once: the service is
// created through all three APIs concurrently (one wins, two get 409), every
// node starts managing the name on the same change notice, and clients
// knock on all three. The internal CA signs one certificate and the store
// holds one. The issuance is held a second under its lock, so that the
// nodes' logs show the others waiting for the lock and then finding the
// certificate stored.
func TestOneIssuancePerName(t *testing.T) {
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	f := newFleetArgs(t, dsn, 3, []string{"--test-issue-delay", "1s"})
	up := upstream(t, "once-upstream")
	host := "once." + Domain

	var created, conflicts atomic.Int32
	var wg sync.WaitGroup
	for _, nd := range f.nodes {
		c := nd.client()
		wg.Go(func() {
			_, err := c.CreateService(ctx, client.ServiceCreate{Name: "once", Upstreams: []string{up}})
			switch {
			case err == nil:
				created.Add(1)
			case client.IsCode(err, "conflict"):
				conflicts.Add(1)
			default:
				t.Errorf("creating the service: %v", err)
			}
		})
		wg.Go(func() { nd.get(f.root, host) }) // a client that arrives before the certificate
	}
	wg.Wait()
	if created.Load() != 1 || conflicts.Load() != 2 {
		t.Fatalf("created %d, conflicts %d; want 1 and 2", created.Load(), conflicts.Load())
	}
	for _, nd := range f.nodes {
		poll.Until(t, "served by "+nd.name, time.Minute, func() error { return nd.serves(f.root, host, "once-upstream") })
	}
	if n := issuedFor(t, dsn, host); n != 1 {
		t.Errorf("the internal CA signed %d certificates for %s, want 1", n, host)
	}
	if n := query[int](t, dsn, `SELECT count(*) FROM kv WHERE key LIKE 'certificates/%/`+host+`/`+host+`.crt'`); n != 1 {
		t.Errorf("the store holds %d certificates for %s, want 1", n, host)
	}

	// The lock did the work: several nodes asked for it, one issued, and
	// each other one, once it got the lock, found the certificate stored.
	var asked, issued []string
	for _, nd := range f.nodes {
		if len(logLines(nd.logs(), `"msg":"acquiring lock"`, `"`+host+`"`)) > 0 {
			asked = append(asked, nd.name)
		}
		if len(logLines(nd.logs(), `"msg":"obtaining certificate"`, `"`+host+`"`)) > 0 {
			issued = append(issued, nd.name)
		}
	}
	t.Logf("asked for the lock: %v; issued: %v", asked, issued)
	if len(asked) < 2 {
		t.Errorf("only %v asked for the issuance lock: the test did not make nodes compete", asked)
	}
	if len(issued) != 1 {
		t.Errorf("%v went through the issuance, want one node", issued)
	}
	for _, nd := range f.nodes {
		if !slices.Contains(asked, nd.name) || slices.Contains(issued, nd.name) {
			continue
		}
		poll.Until(t, nd.name+" finds the certificate stored once it has the lock", time.Minute, func() error {
			if len(logLines(nd.logs(), "certificate already exists in storage", `"`+host+`"`)) == 0 {
				return errors.New("not logged yet")
			}
			return nil
		})
	}
}

// 200 new hostnames, created through the three nodes at once: exactly 200
// certificates are signed and stored, one per name, and every node serves
// every name.
func TestManyNewHostnames(t *testing.T) {
	const count = 200
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	f := newFleet(t, dsn, 3)
	up := upstream(t, "many-upstream")

	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := range 24 {
		c := f.nodes[w%3].client()
		wg.Go(func() {
			for i := range jobs {
				if _, err := c.CreateService(ctx, client.ServiceCreate{Name: fmt.Sprintf("h%03d", i), Upstreams: []string{up}}); err != nil {
					t.Errorf("creating h%03d: %v", i, err)
				}
			}
		})
	}
	for i := range count {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Every node serves every name.
	type check struct {
		nd   *node
		host string
	}
	checks := make(chan check)
	var failed atomic.Int32
	// The workers are not the test's goroutine: their waits fail with
	// Errorf, the first five of them.
	report := workerTB{t: t, failed: &failed}
	for range 12 {
		wg.Go(func() {
			for c := range checks {
				poll.Until(report, c.host+" served by "+c.nd.name, 3*time.Minute, func() error {
					return c.nd.serves(f.root, c.host, "many-upstream")
				})
			}
		})
	}
	for i := range count {
		for _, nd := range f.nodes {
			checks <- check{nd, fmt.Sprintf("h%03d.%s", i, Domain)}
		}
	}
	close(checks)
	wg.Wait()

	// The fleet's ECH public name (ech.<domain>) has a certificate of its
	// own: it is not one of the names counted here.
	echName := "ech." + Domain
	issued := query[int](t, dsn, `SELECT count(*) FROM kv WHERE key LIKE 'spine/ca/issued/%' AND NOT (convert_from(value, 'UTF8')::jsonb->'names') ? $1`, echName)
	names := query[int](t, dsn, `SELECT count(DISTINCT n) FROM kv, json_array_elements_text(convert_from(value, 'UTF8')::json->'names') n WHERE key LIKE 'spine/ca/issued/%' AND n <> $1`, echName)
	stored := query[int](t, dsn, `SELECT count(*) FROM kv WHERE key LIKE 'certificates/%.crt' AND key NOT LIKE $1`, "%/"+echName+"/%")
	if issued != count || names != count || stored != count {
		t.Errorf("signed %d certificates for %d distinct names, stored %d; want %d of each", issued, names, stored, count)
	}
}

// The node holding a name's issuance lock is killed (SIGKILL) in the middle
// of the issuance; another node takes the lock once its lease expires and
// completes the issuance. The dead node signed nothing.
func TestKilledLockHolderIsReplaced(t *testing.T) {
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	f := newFleetArgs(t, dsn, 3, []string{"--test-issue-delay", "3s"})
	up := upstream(t, "takeover-upstream")
	host := "takeover." + Domain

	if _, err := f.nodes[0].client().CreateService(ctx, client.ServiceCreate{Name: "takeover", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	const hook = "test hook: delaying issuance"
	holder := f.waitLog(hook, time.Minute)
	t.Logf("%s holds the issuance lock; killing it", holder.name)
	holder.kill()
	killed := time.Now()

	var rest []*node
	for _, nd := range f.nodes {
		if nd != holder {
			rest = append(rest, nd)
		}
	}
	// The lease (15 s) runs out at most 15 s after the kill; a waiter asks
	// at least every 1.25 s.
	poll.Until(t, "a surviving node takes the lock", time.Minute, func() error {
		for _, nd := range rest {
			if strings.Contains(nd.logs(), hook) {
				return nil
			}
		}
		return errors.New("no surviving node holds the lock yet")
	})
	takeover := time.Since(killed)
	t.Logf("takeover %.1f s after the kill", takeover.Seconds())
	if takeover > 20*time.Second {
		t.Errorf("the lock was taken over %v after its holder died, want within the 15 s lease and a few seconds", takeover.Round(100*time.Millisecond))
	}
	for _, nd := range rest {
		poll.Until(t, "served by "+nd.name+" after the lock holder died", 2*time.Minute, func() error {
			return nd.serves(f.root, host, "takeover-upstream")
		})
	}
	if n := issuedFor(t, dsn, host); n != 1 {
		t.Errorf("the internal CA signed %d certificates for %s, want 1", n, host)
	}
	took := 0
	for _, nd := range rest {
		if strings.Contains(nd.logs(), hook) {
			took++
		}
	}
	if took == 0 {
		t.Error("no surviving node went through the issuance")
	}
}

// A service created through node 1 is served by nodes 2 and 3; deleted
// through node 1, they stop serving it. The periodic resync is put off for
// an hour, far past the waits' bound (a guard against a hang sized for a
// loaded machine), so only the change notices (LISTEN/NOTIFY) can have
// carried the changes. How long they took is logged, not asserted: speed
// is for benchmarks (BenchmarkPropagation).
func TestChangesReachEveryNode(t *testing.T) {
	const within = 2 * time.Minute // ≪ the resync's hour
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	f := newFleetArgs(t, dsn, 3, []string{"--resync-interval", "1h"})
	up := upstream(t, "spread-upstream")
	host := "spread." + Domain
	c := f.nodes[0].client()

	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "spread", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	for _, nd := range f.nodes[1:] {
		poll.Until(t, "served by "+nd.name, within, func() error { return nd.serves(f.root, host, "spread-upstream") })
	}
	t.Logf("created: served by every node %v after the API answered", time.Since(created).Round(time.Millisecond))
	// `spine nodes` run against node 1 lists the three nodes, connected.
	poll.Until(t, "spine nodes lists three connected nodes", time.Minute, func() error {
		out, err := exec.Command(spineBin, "nodes", "--api", "http://"+f.nodes[0].api, "--data", f.nodes[0].dataDir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("spine nodes: %v: %s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) != 4 || strings.Count(string(out), " connected") != 3 || strings.Contains(string(out), "not connected") || !strings.Contains(string(out), f.nodes[2].https) || !strings.Contains(string(out), "(this)") {
			return fmt.Errorf("spine nodes printed:\n%s", out)
		}
		return nil
	})
	if err := c.DeleteService(ctx, "spread"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	for _, nd := range f.nodes[1:] {
		poll.Until(t, nd.name+" stops serving", within, func() error {
			_, _, err := nd.get(f.root, host)
			if err != nil && strings.Contains(err.Error(), "tls: unrecognized name") { // the edge's alert for names it does not serve
				return nil
			}
			return fmt.Errorf("%s still answers %s: %v", nd.name, host, err)
		})
	}
	t.Logf("deleted: no longer served by any node %v after the API answered", time.Since(deleted).Round(time.Millisecond))
}

// A change written to the database without a change notice (an operator's
// UPDATE, or a notice lost with the LISTEN connection) is repaired by the
// periodic resync: every node serves it within ten intervals (an UPDATE
// behind Spine's back moves no revision, so it waits for the full read,
// syncer.FullEvery; a lost notice would be read at the next interval).
func TestResyncRepairsMissedChange(t *testing.T) {
	const interval = 3 * time.Second
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	f := newFleetArgs(t, dsn, 2, []string{"--resync-interval", interval.String()})
	before, after := upstream(t, "before-upstream"), upstream(t, "after-upstream")
	host := "drift." + Domain
	if _, err := f.nodes[0].client().CreateService(ctx, client.ServiceCreate{Name: "drift", Upstreams: []string{before}}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range f.nodes {
		poll.Until(t, "served by "+nd.name, time.Minute, func() error { return nd.serves(f.root, host, "before-upstream") })
	}

	// Behind Spine's back: no NOTIFY.
	ups, _ := json.Marshal([]string{after})
	if n := query[int](t, dsn, `WITH u AS (UPDATE services SET upstreams = $1, updated_at = updated_at + 1 WHERE name = 'drift' RETURNING 1) SELECT count(*) FROM u`, string(ups)); n != 1 {
		t.Fatalf("updated %d services, want 1", n)
	}
	// Only a resync can carry it; how long that took is logged, not
	// asserted (a loaded machine delays it, and speed is for benchmarks).
	changed := time.Now()
	for _, nd := range f.nodes {
		poll.Until(t, "the change served by "+nd.name, 2*time.Minute, func() error { return nd.serves(f.root, host, "after-upstream") })
	}
	t.Logf("a change without a notice served by every node %v after it was written (resync every %v)", time.Since(changed).Round(time.Millisecond), interval)
}

// A TLS session established on node 1 resumes on node 2: the nodes share
// their session-ticket keys through the store.
func TestSessionResumesOnAnotherNode(t *testing.T) {
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	f := newFleet(t, dsn, 2)
	up := upstream(t, "resume-upstream")
	host := "resume." + Domain
	if _, err := f.nodes[0].client().CreateService(ctx, client.ServiceCreate{Name: "resume", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range f.nodes {
		poll.Until(t, "served by "+nd.name, time.Minute, func() error { return nd.serves(f.root, host, "resume-upstream") })
	}
	// The nodes read the shared keys within a second or so of their creation.
	poll.Until(t, "a session from node1 resumed on node2", time.Minute, func() error {
		cache := tls.NewLRUClientSessionCache(4)
		if _, err := handshake(f.nodes[0], f.root, host, cache); err != nil {
			return err
		}
		resumed, err := handshake(f.nodes[1], f.root, host, cache)
		if err != nil {
			return err
		}
		if !resumed {
			return errors.New("node2 did a full handshake")
		}
		return nil
	})
}

// handshake makes one request for host to nd over a new TLS connection
// that may resume a session from cache, and reports whether it did.
func handshake(nd *node, root *x509.CertPool, host string, cache tls.ClientSessionCache) (bool, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", nd.https, &tls.Config{
		ServerName: host, RootCAs: root, ClientSessionCache: cache, NextProtos: []string{"http/1.1"},
	})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n"); err != nil {
		return false, err
	}
	if _, err := io.ReadAll(conn); err != nil { // also reads the session ticket
		return false, err
	}
	return conn.ConnectionState().DidResume, nil
}

// snapshotManifest is what the tests read of a snapshot folder's manifest.
type snapshotManifest struct {
	KeyID     string `json:"key_id"`
	Shards    []string
	CertNames string `json:"cert_names"` // folder version 3: the hostnames' certificates, apart from the shards
	Tokens    string
	Keys      string
	CertPacks []string `json:"cert_packs"` // folder version 6: the certificates, many to a file
}

// readSnapshotPart reads the part name of nd's snapshot folder into v, as a
// reader of the disk would; a part that is not 0600 stops the poll.
func readSnapshotPart(nd *node, name string, v any) error {
	path := filepath.Join(nd.dataDir, "snapshot", name)
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() != 0o600 {
		return poll.Stop(fmt.Errorf("%s has mode %v, want 0600", path, fi.Mode().Perm()))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if raw, ok := v.(*[]byte); ok { // a certificate pack: binary
		*raw = b
		return nil
	}
	return json.Unmarshal(b, v)
}

// snapshotHas reports whether nd's snapshot holds a certificate for host:
// the certificate names part names its leaf, and a certificate pack holds it.
func snapshotHas(nd *node, host string) error {
	var m snapshotManifest
	if err := readSnapshotPart(nd, "manifest.json", &m); err != nil {
		return err
	}
	parts := m.Shards // version 2: each shard names its hostnames' certificates
	if m.CertNames != "" {
		parts = []string{m.CertNames}
	}
	for _, name := range parts {
		var shard struct{ Certs map[string]string }
		if err := readSnapshotPart(nd, name, &shard); err != nil {
			return err
		}
		leaf := shard.Certs[host]
		if leaf == "" {
			continue
		}
		// A pack lists the SHA-256 of each of its certificates' leaves,
		// then holds each one's chain in PEM.
		sum, err := hex.DecodeString(leaf)
		if err != nil {
			return poll.Stop(fmt.Errorf("%s's certificate is named %q", host, leaf))
		}
		for _, pack := range m.CertPacks {
			var b []byte
			if err := readSnapshotPart(nd, filepath.Join("certs", pack), &b); err != nil {
				return err
			}
			if bytes.Contains(b, sum) {
				if !bytes.Contains(b, []byte("BEGIN CERTIFICATE")) {
					return poll.Stop(fmt.Errorf("%s's certificate pack holds no chain", host))
				}
				return nil
			}
		}
		return poll.Stop(fmt.Errorf("%s's certificate %s is in none of the snapshot's packs %v", host, leaf, m.CertPacks))
	}
	return fmt.Errorf("%s's snapshot: no certificate for %s yet", nd.name, host)
}

// snapshotBytes returns every file of nd's snapshot folder, concatenated:
// what a reader of the disk finds.
func snapshotBytes(nd *node) ([]byte, error) {
	var all []byte
	err := filepath.WalkDir(filepath.Join(nd.dataDir, "snapshot"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) { // a part the writer just replaced
			return nil
		}
		all = append(all, b...)
		return err
	})
	return all, err
}

// apiGet does an authenticated GET on nd's API and returns the answer.
func apiGet(t *testing.T, nd *node, path string) (*http.Response, string) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(nd.dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+nd.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, nd.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// workerTB hands poll.Until's failures to t.Errorf, which any goroutine may
// call (Fatalf may only be called from the test's), the first five of them.
type workerTB struct {
	t      *testing.T
	failed *atomic.Int32
}

func (w workerTB) Helper() { w.t.Helper() }

func (w workerTB) Fatalf(format string, args ...any) {
	if w.failed.Add(1) <= 5 {
		w.t.Errorf(format, args...)
	}
}
