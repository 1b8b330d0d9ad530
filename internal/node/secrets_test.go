package node

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

// keyNeedles returns the raw bytes of every secret the store holds, opened
// with the node's keyring: each private key's DER and its scalar (or RSA
// prime), each other secret whole.
func keyNeedles(t *testing.T, db *store.DB) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	keys, err := db.ListKeys(ctx, "", true)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, k := range keys {
		if !store.SecretKey(k) || strings.HasPrefix(k, "spine/secrets/") {
			continue
		}
		v, err := db.GetKey(ctx, k)
		if err != nil {
			t.Fatalf("GetKey(%s): %v", k, err)
		}
		block, _ := pem.Decode(v)
		if block == nil {
			if k == "spine/tls/ticket-keys" {
				var ring struct {
					Keys []struct {
						Key []byte `json:"key"`
					} `json:"keys"`
				}
				if err := json.Unmarshal(v, &ring); err != nil {
					t.Fatalf("ticket keys: %v", err)
				}
				for i, r := range ring.Keys {
					out[k+"#"+string(rune('0'+i))] = r.Key
				}
				continue
			}
			out[k] = v
			continue
		}
		out[k+" DER"] = block.Bytes
		var key any
		if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			if key, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
				key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
			}
		}
		if err != nil {
			t.Fatalf("%s holds no key I can parse: %v", k, err)
		}
		switch key := key.(type) {
		case *ecdsa.PrivateKey:
			out[k+" scalar"] = key.D.Bytes()
		case *rsa.PrivateKey:
			out[k+" prime"] = key.Primes[0].Bytes()
		case ed25519.PrivateKey:
			out[k+" seed"] = key.Seed()
		}
	}
	return out
}

// dump returns the store's bytes as an attacker with a copy would have
// them: pg_dump of the node's schema, or a copy of the SQLite file (with
// its WAL, checkpointed by the close).
func dump(t *testing.T, dir, dsn string) []byte {
	t.Helper()
	if dsn == "" {
		b, err := os.ReadFile(filepath.Join(dir, "spine.db"))
		if err != nil {
			t.Fatal(err)
		}
		wal, _ := os.ReadFile(filepath.Join(dir, "spine.db-wal"))
		return append(b, wal...)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	schema := strings.ToLower(q.Get("search_path")) // unquoted in CREATE SCHEMA
	q.Del("search_path")
	u.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pg_dump", "--dbname="+u.String(), "--schema="+schema, "--no-owner").Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !bytes.Contains(out, []byte("COPY "+schema+".kv")) {
		t.Fatalf("pg_dump holds no kv table:\n%.3000s", out)
	}
	// bytea is dumped in hex: what a reader of the dump decodes, too.
	for _, m := range byteaHex.FindAllSubmatch(out, -1) {
		b, err := hex.DecodeString(string(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

var byteaHex = regexp.MustCompile(`\\x([0-9a-f]+)`)

// found returns what of needles data holds: a PEM private key block, a
// needle's raw bytes, or their base64 as a PEM body begins with it.
func found(data []byte, needles map[string][]byte) []string {
	var out []string
	if bytes.Contains(data, []byte("PRIVATE KEY")) {
		out = append(out, "a PEM private key block")
	}
	for name, n := range needles {
		if len(n) >= 16 && bytes.Contains(data, n) {
			out = append(out, "the raw bytes of "+name)
		}
		if len(n) >= 48 && bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(n[:48]))) {
			out = append(out, "the base64 of "+name)
		}
	}
	return out
}

// checkNoKeys fails if data holds a PEM private key block or any needle.
func checkNoKeys(t *testing.T, what string, data []byte, needles map[string][]byte) {
	t.Helper()
	for _, f := range found(data, needles) {
		t.Errorf("%s holds %s", what, f)
	}
}

// No private key at rest: a store upgraded from plaintext (a certificate
// key stored before sealing) is sealed in place;
// a dump of PostgreSQL, a copy of the SQLite file and the snapshot file
// then hold no PEM key block and none of the keys in use, raw; real
// handshakes succeed after a restart; a wrong or missing key file is
// refused with a message naming it, and nothing is overwritten.
func TestNoPrivateKeyAtRest(t *testing.T) {
	for _, sc := range storeCases(t) {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			dsn := sc.dsn
			if dsn == "" {
				dsn = "sqlite:" + filepath.Join(dir, "spine.db")
			}
			// What an older release left: secrets in the clear.
			legacyKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			legacyDER, _ := x509.MarshalECPrivateKey(legacyKey)
			legacyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: legacyDER})
			old, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			if err := old.PutKey(ctx, "certificates/old/legacy.example/legacy.example.key", legacyPEM); err != nil {
				t.Fatal(err)
			}
			old.Close()
			// The check below can fail: it finds the key stored in the clear.
			if f := found(dump(t, dir, sc.dsn), map[string][]byte{"legacy": legacyDER}); len(f) != 2 {
				t.Fatal("the dump of a store with a plaintext key does not show it: the check would prove nothing")
			}

			n := startNode(t, dir, sc.dsn)
			keyFile := filepath.Join(dir, config.DefaultSecretKeyFile)
			if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file: %v, %v; want one made 0600", fi, err)
			}
			if _, _, err := httpsGet(t, n, "hello.localhost", "/"); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, "plaintext secrets sealed", waitTimeout, func() error {
				counts, err := n.db.SealedKeys(ctx)
				if err != nil {
					return err
				}
				if counts[""] > 0 {
					return errors.New("some still in the clear")
				}
				return nil
			})
			if v, err := n.db.GetKey(ctx, "certificates/old/legacy.example/legacy.example.key"); err != nil || !bytes.Equal(v, legacyPEM) {
				t.Errorf("the legacy key after the migration: %q, %v", v, err)
			}
			poll.Until(t, "session-ticket keys stored", waitTimeout, func() error {
				_, err := n.db.GetKey(ctx, "spine/tls/ticket-keys")
				return err
			})
			needles := keyNeedles(t, n.db)
			for _, want := range []string{"spine/ca/root.key scalar", "spine/ca/intermediate.key scalar", "spine/tls/ticket-keys#0"} {
				if _, ok := needles[want]; !ok {
					t.Errorf("no %s among the keys in use: %v", want, keys(needles))
				}
			}
			if c := n.certs.CachedCertificate("hello.localhost"); c != nil {
				der, _ := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
				needles["served key DER"] = der
				needles["served key scalar"] = c.PrivateKey.(*ecdsa.PrivateKey).D.Bytes()
			} else {
				t.Error("hello.localhost has no certificate in memory")
			}
			snapDir := t.TempDir()
			if err := fleet.NewSnapshotWriter(snapDir, n.fleet.Source, n.log).Write(); err != nil {
				t.Fatal(err)
			}
			snapFile := snapshotBytes(t, snapDir)
			n.Close(ctx)

			checkNoKeys(t, "the store ("+sc.name+")", dump(t, dir, sc.dsn), needles)
			checkNoKeys(t, "the snapshot file", snapFile, needles)
			if !bytes.Contains(snapFile, []byte(secrets.Prefix)) {
				t.Error("the snapshot holds no sealed key: the test proves nothing")
			}

			// Restarted with its key file: real handshakes still succeed.
			n = startNode(t, dir, sc.dsn)
			if _, _, err := httpsGet(t, n, "hello.localhost", "/"); err != nil {
				t.Fatalf("handshake after restart: %v", err)
			}
			n.Close(ctx)

			// A wrong key file: refused, naming the file; the file stays as it was.
			wrong, _ := secrets.Generate()
			if err := os.WriteFile(keyFile, wrong, 0o600); err != nil {
				t.Fatal(err)
			}
			err = tryStart(t, dir, sc.dsn)
			if err == nil || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "does not hold key") {
				t.Errorf("start with a wrong key file: %v", err)
			}
			if b, _ := os.ReadFile(keyFile); !bytes.Equal(b, wrong) {
				t.Error("the refused key file was changed")
			}
			// No key file: refused, naming it and what to do; none made.
			os.Remove(keyFile)
			err = tryStart(t, dir, sc.dsn)
			if err == nil || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "copy the secret key file") {
				t.Errorf("start without a key file: %v", err)
			}
			if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
				t.Error("a key file was made for a store sealed with another")
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// tryStart starts a node on dir and dsn and returns the error; a node that
// starts is closed.
func tryStart(t *testing.T, dir, dsn string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := Start(ctx, config.Config{DataDir: dir, Store: dsn, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		n.Close(context.Background())
	}
	return err
}
