package fleet

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/secrets"
)

// Rotation while three nodes serve: `spine secrets rotate` reseals every
// secret of the store under a new key while each node answers HTTPS
// requests throughout, including for a service created (and its
// certificate issued, sealed, stored and loaded) mid-rotation; afterwards
// no secret in PostgreSQL is sealed with the old key, the old key alone is
// refused at start, and a node restarted with the new file serves.
func TestSecretRotationWhileServing(t *testing.T) {
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	f := newFleet(t, dsn, 3)
	keyFile := f.nodes[0].keyFile
	oldFile, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, oldRaw, err := secrets.Parse(oldFile)
	if err != nil {
		t.Fatal(err)
	}
	up := upstream(t, "rotate-upstream")
	c := f.nodes[0].client()
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "before", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	for _, nd := range f.nodes {
		poll.Until(t, "before served by "+nd.name, 2*time.Minute, func() error { return nd.serves(f.root, "before."+Domain, "rotate-upstream") })
	}

	// Every node is asked, in turn, over new connections, until the rotation is done.
	var (
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		requests atomic.Int64
		mu       sync.Mutex
		failures []string
	)
	for _, nd := range f.nodes {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := nd.serves(f.root, "before."+Domain, "rotate-upstream"); err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
				requests.Add(1)
			}
		})
	}

	newFile := filepath.Join(t.TempDir(), "new.key")
	rotate := exec.Command(spineBin, "secrets", "rotate", "--store", dsn, "--secret-key-file", keyFile,
		"--new-key-file", newFile, "--data", t.TempDir(), "--wait", "2m")
	var out bytes.Buffer
	rotate.Stdout, rotate.Stderr = &out, &out
	if err := rotate.Start(); err != nil {
		t.Fatal(err)
	}
	// A service created during the rotation: its certificate is sealed
	// with whichever key the issuing node holds first, and served by all.
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "during", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	err = rotate.Wait()
	close(stop)
	wg.Wait()
	t.Logf("spine secrets rotate:\n%s", out.String())
	if err != nil {
		t.Fatalf("spine secrets rotate: %v", err)
	}
	if !strings.Contains(out.String(), "done: every secret of the store is sealed with key") {
		t.Error("rotate did not say it was done")
	}
	if requests.Load() == 0 {
		t.Error("no request was made during the rotation")
	}
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during the rotation, first: %s", len(failures), requests.Load(), failures[0])
	}
	for _, nd := range f.nodes {
		poll.Until(t, "during served by "+nd.name, 2*time.Minute, func() error { return nd.serves(f.root, "during."+Domain, "rotate-upstream") })
	}
	_, newRaw, err := secrets.ReadFile(newFile)
	if err != nil {
		t.Fatal(err)
	}
	newID, oldID := secrets.KeyID(newRaw[0]), secrets.KeyID(oldRaw[0])
	// Nothing in the store is sealed with anything but the new key, or in the clear.
	notNew := query[int](t, dsn, `SELECT count(*) FROM kv WHERE (key LIKE '%.key' OR key LIKE 'spine/tls/%' OR key = 'spine/quic/keys')
		AND convert_from(value, 'UTF8') NOT LIKE $1`, secrets.Prefix+"v1:"+newID+":%")
	sealedNew := query[int](t, dsn, `SELECT count(*) FROM kv WHERE convert_from(value, 'UTF8') LIKE $1`, secrets.Prefix+"v1:"+newID+":%")
	if notNew != 0 || sealedNew < 4 {
		t.Errorf("after the rotation: %d secrets not sealed with the new key, %d sealed with it", notNew, sealedNew)
	}
	// The key file holds the new key first, the old one after it.
	_, ring, err := secrets.ReadFile(keyFile)
	if err != nil || len(ring) != 2 || secrets.KeyID(ring[0]) != newID || secrets.KeyID(ring[1]) != oldID {
		t.Fatalf("key file after the rotation: %d keys, %v", len(ring), err)
	}

	// The old key alone: refused at start, naming the file.
	oldOnly := filepath.Join(t.TempDir(), "old.key")
	if err := os.WriteFile(oldOnly, oldFile, 0o600); err != nil {
		t.Fatal(err)
	}
	refused := exec.Command(spineBin, "serve", "--data", t.TempDir(), "--store", dsn, "--secret-key-file", oldOnly,
		"--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0")
	msg, err := refused.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), oldOnly) || !strings.Contains(string(msg), "does not hold key "+newID) {
		t.Errorf("a node with the old key alone: %v\n%s", err, msg)
	}

	// The old key deleted from the file: a restarted node serves.
	if err := os.WriteFile(keyFile, secrets.FileContent(newRaw[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	nd := f.nodes[2]
	nd.stop()
	nd.start()
	nd.waitReady()
	if err := nd.serves(f.root, "during."+Domain, "rotate-upstream"); err != nil {
		t.Errorf("after a restart with the new key alone: %v", err)
	}
}
