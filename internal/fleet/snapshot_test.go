package fleet

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// encodeSnapshot writes what json.Marshal would, piece by piece.
func TestEncodeSnapshotMatchesJSON(t *testing.T) {
	for _, s := range []Snapshot{
		{Version: 1, WrittenAt: time.Unix(5, 0).UTC()},
		{
			Version: 1, WrittenAt: time.Unix(5, 0).UTC(),
			Services: []store.Service{
				{ID: "1", ProjectID: "p", Name: "a", Domain: "d.test", Hostnames: []string{"a.d.test"}, Upstreams: []string{"http://127.0.0.1:1"}},
				{ID: "2", ProjectID: "p", Name: "b\"<>", Domain: "d.test", Hostnames: []string{"b.d.test", "c.d.test"}},
			},
			Certificates: []SnapshotCert{{Names: []string{"a.d.test"}, ChainPEM: "-----BEGIN CERTIFICATE-----\nx\n", KeyPEM: "k"}},
			TicketKeys:   [][]byte{{1, 2, 3}},
			TokenHashes: []TokenLookup{{Hash: "ab12", Project: store.Project{ID: "p", Name: "p", CreatedAt: time.Unix(7, 0).UTC()},
				Token: &TokenMeta{ID: "t", Name: "ci", Scopes: []string{"read"}, CreatedAt: time.Unix(7, 0).UTC(), ExpiresAt: time.Unix(9, 0).UTC()}}},
			Suspended: []string{"q"},
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
		var back Snapshot
		if err := json.Unmarshal(got, &back); err != nil || back.Version != s.Version || len(back.Services) != len(s.Services) || len(back.Certificates) != len(s.Certificates) {
			t.Errorf("read back %+v, %v", back, err)
		}
		if len(s.Services) > 0 && !reflect.DeepEqual(a, b) {
			t.Errorf("encodeSnapshot:\n%s\njson.Marshal:\n%s", got, want)
		}
	}
}

// selfSigned returns a certificate for name.
func selfSigned(t *testing.T, name string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// The snapshot writer writes only when something changed, encodes only the
// certificates that are new since its last write, and what it writes reads
// back with every certificate it was given.
func TestSnapshotWriterEncodesOnlyNewCertificates(t *testing.T) {
	dir := t.TempDir()
	svc := func(name string) store.Service {
		return store.Service{ID: name, ProjectID: "p", Name: name, Domain: "d.test", Hostnames: []string{name + ".d.test"}, Upstreams: []string{"http://127.0.0.1:9"}}
	}
	certs := map[string]*tls.Certificate{"a.d.test": selfSigned(t, "a.d.test")}
	src := &SnapshotSource{
		Services:    []store.Service{svc("a")},
		Sum:         [32]byte{1},
		Certificate: func(h string) *tls.Certificate { return certs[h] },
		Tokens: func() map[string]store.Credential {
			return map[string]store.Credential{"ab12": {Project: store.Project{ID: "p"}, Token: store.Token{ID: "t", Name: "ci", ExpiresAt: time.Unix(9, 0).UTC()}}}
		},
	}
	w := NewSnapshotWriter(dir, func() *SnapshotSource { return src }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	path := filepath.Join(dir, SnapshotFile)
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	first, err := ReadSnapshot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Certificates) != 1 || first.Certificates[0].Names[0] != "a.d.test" || len(first.Services) != 1 || len(first.TokenHashes) != 1 {
		t.Fatalf("first snapshot: %d services, certificates %+v, tokens %+v", len(first.Services), first.Certificates, first.TokenHashes)
	}
	// A token keeps its name and expiry (enforced from the snapshot).
	if c := first.TokenHashes[0].Credential(); c.Token.Name != "ci" || !c.Token.ExpiresAt.Equal(time.Unix(9, 0)) || c.Project.ID != "p" || c.Token.Hash != "ab12" {
		t.Errorf("token read back as %+v", c)
	}
	old := w.entries
	fi, _ := os.Stat(path)

	// Nothing new: no write.
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(path); !fi2.ModTime().Equal(fi.ModTime()) || fi2.Size() != fi.Size() {
		t.Error("an unchanged snapshot was written again")
	}

	// A new service and its certificate: a's entry is reused as it was.
	certs["b.d.test"] = selfSigned(t, "b.d.test")
	src = &SnapshotSource{Services: []store.Service{svc("a"), svc("b")}, Sum: [32]byte{2}, Certificate: src.Certificate, Tokens: src.Tokens}
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	if len(w.entries) != 2 {
		t.Fatalf("%d entries after the second certificate, want 2", len(w.entries))
	}
	for leaf, e := range old {
		if &w.entries[leaf].json[0] != &e.json[0] {
			t.Error("a's certificate was encoded again")
		}
	}
	second, err := ReadSnapshot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := second.CertificatesByName(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if byName["a.d.test"] == nil || byName["b.d.test"] == nil || len(second.Services) != 2 {
		t.Errorf("second snapshot: %d services, certificates for %v", len(second.Services), byName)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", fi.Mode().Perm())
	}
}
