package fleet

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// selfSigned returns a certificate for name.
func selfSigned(t testing.TB, name string) *tls.Certificate {
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

// snapshotBytes returns every file of dir's snapshot folder, concatenated,
// and fails t if one is not 0600 or a folder not 0700.
func snapshotBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	err := filepath.WalkDir(filepath.Join(dir, SnapshotDir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if want := fs.FileMode(0o600); d.IsDir() && fi.Mode().Perm() != 0o700 || !d.IsDir() && fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v", path, fi.Mode().Perm())
		}
		if !d.IsDir() {
			b, err := os.ReadFile(path)
			all = append(all, b...)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// snapshotFiles returns the files of dir's snapshot folder, relative to it.
func snapshotFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dir, SnapshotDir)
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return err
	})
	slices.Sort(out)
	return out
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testService(name string) store.Service {
	return store.Service{ID: "id-" + name, ProjectID: "p", Name: name, Domain: "d.test", Hostnames: []string{name + ".d.test"}, Upstreams: []string{"http://127.0.0.1:9"}}
}

// The snapshot writer writes only when something changed, and then only the
// parts that changed: a new service and its certificate cost their shard,
// their certificate and the manifest, not the other certificates; what it
// writes reads back with every certificate it was given.
func TestSnapshotWriterWritesOnlyWhatChanged(t *testing.T) {
	dir := t.TempDir()
	certs := map[string]*tls.Certificate{"a.d.test": selfSigned(t, "a.d.test")}
	src := &SnapshotSource{
		Services:    []store.Service{testService("a")},
		Sum:         [32]byte{1},
		Certificate: func(h string) *tls.Certificate { return certs[h] },
		Tokens: func() map[string]store.Credential {
			return map[string]store.Credential{"ab12": {Project: store.Project{ID: "p"}, Token: store.Token{ID: "t", Name: "ci", ExpiresAt: time.Unix(9, 0).UTC()}}}
		},
	}
	w := NewSnapshotWriter(dir, func() *SnapshotSource { return src }, discard())
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
	// manifest, one shard, tokens, keys, one certificate, the certificate
	// names, the hot part
	if got := snapshotFiles(t, dir); len(got) != 7 || w.wrote.files != 7 {
		t.Errorf("first write: %d files written, folder holds %v; want 7", w.wrote.files, got)
	}
	aFile := filepath.Join(dir, SnapshotDir, certsDir, readManifest(t, dir).CertPacks[0]) // a's certificate's pack
	aInfo, err := os.Stat(aFile)
	if err != nil {
		t.Fatal(err)
	}
	manifestInfo, _ := os.Stat(filepath.Join(dir, SnapshotDir, manifestFile))

	// Nothing new: no write.
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, SnapshotDir, manifestFile)); w.wrote.files != 0 || !os.SameFile(fi, manifestInfo) {
		t.Errorf("an unchanged snapshot was written again: %d files", w.wrote.files)
	}

	// A new service and its certificate: its shard, its certificate (a
	// pack), the certificate names, the hot part and the manifest; a's
	// certificate's pack stays as it was.
	certs["b.d.test"] = selfSigned(t, "b.d.test")
	src = &SnapshotSource{Services: []store.Service{testService("a"), testService("b")}, Sum: [32]byte{2}, Certificate: src.Certificate, Tokens: src.Tokens}
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	if w.wrote.files != 5 {
		t.Errorf("a new service and certificate: %d files written, want 5 (shard, certificate, names, hot, manifest)", w.wrote.files)
	}
	if fi, err := os.Stat(aFile); err != nil || !os.SameFile(fi, aInfo) {
		t.Errorf("a's certificate's pack was written again (%v)", err)
	}
	second, err := ReadSnapshot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := second.CertificatesByName(discard())
	if byName["a.d.test"] == nil || byName["b.d.test"] == nil || len(second.Services) != 2 {
		t.Errorf("second snapshot: %d services, certificates for %v", len(second.Services), byName)
	}

	// a's certificate renewed: the new certificate, the certificate names,
	// the manifest, no shard (a node's warm-up loads thousands of
	// certificates: they must not rewrite their services' shards) and no
	// hot part (the same services); the old certificate's pack, which
	// held it alone, is gone.
	shards := func() []string {
		var m manifest
		b, _ := os.ReadFile(filepath.Join(dir, SnapshotDir, manifestFile))
		json.Unmarshal(b, &m)
		return m.Shards
	}
	before := shards()
	certs["a.d.test"] = selfSigned(t, "a.d.test")
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	if w.wrote.files != 3 || !slices.Equal(shards(), before) {
		t.Errorf("a renewed certificate: %d files written, want 3; shards %v, before %v", w.wrote.files, shards(), before)
	}
	if _, err := os.Stat(aFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the replaced certificate's pack is still there (%v)", err)
	}
	third, err := ReadSnapshot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := third.CertificatesByName(discard())["a.d.test"]; got == nil || !bytes.Equal(got.Certificate[0], certs["a.d.test"].Certificate[0]) {
		t.Error("the renewed certificate was not read back")
	}
	snapshotBytes(t, dir) // modes

	// A new writer (a restart) with nothing changed writes nothing.
	w2 := NewSnapshotWriter(dir, func() *SnapshotSource { return src }, discard())
	if err := w2.Write(); err != nil {
		t.Fatal(err)
	}
	if w2.wrote.files != 2 { // the keys part (its name is random) and the manifest
		t.Errorf("the first write after a restart, nothing changed: %d files written, want 2", w2.wrote.files)
	}
}

// A data folder with only the snapshot file of an older release starts from
// it; the first write moves to the folder and removes the file.
func TestSnapshotReadsTheOlderFile(t *testing.T) {
	dir := t.TempDir()
	cert := selfSigned(t, "a.d.test")
	key, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	old := Snapshot{Version: 1, WrittenAt: time.Unix(5, 0).UTC(), Services: []store.Service{testService("a")},
		Certificates: []SnapshotCert{{Names: []string{"a.d.test"}, ChainPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})),
			KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))}},
		TicketKeys: [][]byte{make([]byte, 32)}, TokenHashes: []TokenLookup{{Hash: "ab12", Project: store.Project{ID: "p"}}}}
	b, _ := json.Marshal(old)
	if err := os.WriteFile(filepath.Join(dir, SnapshotFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ReadSnapshot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Services) != 1 || s.CertificatesByName(discard())["a.d.test"] == nil || len(s.Keys()) != 1 || len(s.TokenHashes) != 1 {
		t.Fatalf("the older file read as %+v", s)
	}
	src := &SnapshotSource{Services: s.Services, Sum: [32]byte{1}, Certificate: func(h string) *tls.Certificate { return s.CertificatesByName(discard())[h] },
		TicketKeys: s.Keys()}
	if err := NewSnapshotWriter(dir, func() *SnapshotSource { return src }, discard()).Write(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, SnapshotFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the older file is still there after a write (%v)", err)
	}
	s, err = ReadSnapshot(dir, nil)
	if err != nil || len(s.Services) != 1 || s.CertificatesByName(discard())["a.d.test"] == nil || len(s.Keys()) != 1 {
		t.Errorf("after the move: %+v, %v", s, err)
	}
	if _, err := ReadSnapshot(t.TempDir(), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no snapshot: %v, want fs.ErrNotExist", err)
	}
}

// summary is what a node serves from a snapshot, as text to compare.
func summary(t *testing.T, s *Snapshot) string {
	t.Helper()
	var b strings.Builder
	for _, sv := range s.Services {
		fmt.Fprintf(&b, "service %s %s %v %v\n", sv.ID, sv.Name, sv.Hostnames, sv.Upstreams)
	}
	certs := s.CertificatesByName(discard())
	for _, h := range slices.Sorted(maps.Keys(certs)) {
		fmt.Fprintf(&b, "cert %s %x\n", h, sha256Sum(certs[h].Certificate[0])[:8])
	}
	for _, tok := range s.TokenHashes {
		fmt.Fprintf(&b, "token %s\n", tok.Hash)
	}
	fmt.Fprintf(&b, "tickets %x suspended %v\n", s.Keys(), s.Suspended)
	return b.String()
}

// A write stopped after any of its files (a crash) leaves a snapshot that
// reads whole: the previous one until the manifest is in place, the new one
// from then on. The next write, by the same writer or after a restart,
// writes the new snapshot and leaves no file it does not name.
func TestSnapshotWriteCrashLeavesAWholeSnapshot(t *testing.T) {
	k, _ := testKeyring(t)
	var svcsA []store.Service
	certs := map[string]*tls.Certificate{}
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		svcsA = append(svcsA, testService(n))
		certs[n+".d.test"] = selfSigned(t, n+".d.test")
	}
	srcA := &SnapshotSource{Services: svcsA, Sum: [32]byte{1}, Certificate: func(h string) *tls.Certificate { return certs[h] },
		TicketKeys: [][32]byte{{1}}, Keyring: k, Suspended: []string{"q"},
		Tokens: func() map[string]store.Credential {
			return map[string]store.Credential{"aa": {Project: store.Project{ID: "p"}}}
		}}
	// B: a changed, b removed, g added, c's certificate renewed, a new
	// ticket key, another token.
	svcsB := slices.Clone(svcsA[2:])
	changed := testService("a")
	changed.Upstreams = []string{"http://127.0.0.1:10"}
	svcsB = append(svcsB, changed, testService("g"))
	certsB := maps.Clone(certs)
	certsB["c.d.test"] = selfSigned(t, "c.d.test")
	certsB["g.d.test"] = selfSigned(t, "g.d.test")
	srcB := &SnapshotSource{Services: svcsB, Sum: [32]byte{2}, Certificate: func(h string) *tls.Certificate { return certsB[h] },
		TicketKeys: [][32]byte{{2}, {1}}, Keyring: k, TokensVersion: 1,
		Tokens: func() map[string]store.Credential {
			return map[string]store.Credential{"bb": {Project: store.Project{ID: "p"}}}
		}}

	read := func(dir string) string {
		t.Helper()
		s, err := ReadSnapshot(dir, k)
		if err != nil {
			t.Fatal(err)
		}
		return summary(t, s)
	}
	crash := errors.New("crash")
	var wantA, wantB string
	for n := 1; ; n++ {
		dir := t.TempDir()
		src := srcA
		w := NewSnapshotWriter(dir, func() *SnapshotSource { return src }, discard())
		if err := w.Write(); err != nil {
			t.Fatal(err)
		}
		if wantA == "" {
			wantA = read(dir)
		}
		src = srcB
		steps, reached := 0, ""
		w.step = func(name string) error {
			if steps++; steps == n {
				reached = name
				return crash
			}
			return nil
		}
		err := w.Write()
		if err == nil { // no step n: every crash point was tried
			if n < 5 {
				t.Fatalf("a write of B took %d steps", n-1)
			}
			break
		}
		if !errors.Is(err, crash) {
			t.Fatalf("step %d: %v", n, err)
		}
		got := read(dir)
		afterManifest := reached == manifestFile || reached == "remove"
		if want := map[bool]string{false: wantA, true: wantB}[afterManifest]; want != "" && got != want {
			t.Errorf("crash after %s: read\n%s\nwant\n%s", reached, got, want)
		}
		if !afterManifest && got != wantA {
			t.Errorf("crash after %s: not the previous snapshot:\n%s", reached, got)
		}
		// Then the same writer again, or a restarted one.
		if n%2 == 0 {
			w = NewSnapshotWriter(dir, func() *SnapshotSource { return src }, discard())
		}
		w.step = nil
		if err := w.Write(); err != nil {
			t.Fatal(err)
		}
		got = read(dir)
		if wantB == "" {
			wantB = got
			if wantB == wantA || !strings.Contains(wantB, "service id-g") || strings.Contains(wantB, "service id-b") {
				t.Fatalf("B read back as\n%s", wantB)
			}
		} else if got != wantB {
			t.Errorf("crash after %s, then a write: read\n%s\nwant\n%s", reached, got, wantB)
		}
		// Only what the manifest names (+ the manifest) is left.
		var m manifest
		b, _ := os.ReadFile(filepath.Join(dir, SnapshotDir, manifestFile))
		json.Unmarshal(b, &m)
		if files := snapshotFiles(t, dir); len(files) != 1+len(m.Shards)+4+len(m.CertPacks) { // manifest, shards, tokens, keys, names, hot, packs
			t.Errorf("crash after %s, then a write: the folder holds %v", reached, files)
		}
	}
}

// A change of any field of a service changes its shard's digest.
func TestAppendServiceCoversEveryField(t *testing.T) {
	base := testService("a")
	want := string(appendService(nil, &base))
	v := reflect.ValueOf(&base).Elem()
	for i := range v.NumField() {
		s := base
		f := reflect.ValueOf(&s).Elem().Field(i)
		switch f.Interface().(type) {
		case string:
			f.SetString(f.String() + "x")
		case []string:
			f.Set(reflect.ValueOf(append(slices.Clone(f.Interface().([]string)), "x")))
		case int:
			f.SetInt(f.Int() + 1)
		case time.Duration:
			f.SetInt(f.Int() + 1)
		case time.Time:
			f.Set(reflect.ValueOf(f.Interface().(time.Time).Add(time.Nanosecond)))
		default:
			t.Fatalf("field %s has type %s: teach appendService and this test", v.Type().Field(i).Name, f.Type())
		}
		if string(appendService(nil, &s)) == want {
			t.Errorf("a change of %s leaves the digest as it was", v.Type().Field(i).Name)
		}
	}
}

// writeOneCertSnapshot writes, in a new folder, the snapshot of one
// service, testService("a"), whose hostname a.d.test has cert.
func writeOneCertSnapshot(t *testing.T) (dir string, cert *tls.Certificate) {
	t.Helper()
	dir, cert = t.TempDir(), selfSigned(t, "a.d.test")
	src := &SnapshotSource{Services: []store.Service{testService("a")}, Sum: [32]byte{1},
		Certificate: func(h string) *tls.Certificate { return map[string]*tls.Certificate{"a.d.test": cert}[h] }}
	if err := NewSnapshotWriter(dir, func() *SnapshotSource { return src }, discard()).Write(); err != nil {
		t.Fatal(err)
	}
	return dir, cert
}

// A folder of an older release reads, with its certificates, each in a
// file of its own: version 2 (each services part in JSON, holding its
// hostnames' certificate leaves), version 3 (the parts in JSON, the
// leaves in their own part), version 4 (binary parts, no hot part: read
// whole even hot first) and version 5 (a hot part).
func TestSnapshotReadsOlderVersions(t *testing.T) {
	for _, version := range []int{2, 3, 4, 5} {
		dir, cert := writeOneCertSnapshot(t)
		folder := filepath.Join(dir, SnapshotDir)
		readJSON := func(name string, v any) {
			b, err := os.ReadFile(filepath.Join(folder, name))
			if err == nil {
				err = json.Unmarshal(b, v)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		writeJSON := func(name string, v any) {
			b, _ := json.Marshal(v)
			if err := os.WriteFile(filepath.Join(folder, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		var m manifest
		readJSON(manifestFile, &m)
		// Before version 6: a file per certificate.
		for _, name := range m.CertPacks {
			b, err := os.ReadFile(filepath.Join(folder, certsDir, name))
			if err != nil {
				t.Fatal(err)
			}
			p, parts, err := decodeCertPack(b)
			if err != nil {
				t.Fatal(err)
			}
			for i, leaf := range p.leaves {
				if err := os.WriteFile(filepath.Join(folder, certsDir, certFileName(hex.EncodeToString(leaf[:]), m.KeyID)), parts[i], 0o600); err != nil {
					t.Fatal(err)
				}
			}
			os.Remove(filepath.Join(folder, certsDir, name))
		}
		m.CertPacks, m.Version = nil, version
		if version == 5 {
			writeJSON(manifestFile, m)
			s, err := ReadSnapshotHotFirst(dir, nil)
			if err != nil || !s.Partial() || len(s.Services) != 1 || len(s.Certificates) != 1 {
				t.Fatalf("version 5: %v", err)
			}
			continue
		}
		os.Remove(filepath.Join(folder, m.Hot)) // version 5's
		m.Hot, m.Services = "", 0
		if version == 4 {
			writeJSON(manifestFile, m)
			s, err := ReadSnapshotHotFirst(dir, nil) // reads every service: there is no hot part
			if err != nil || s.Partial() || len(s.Services) != 1 || s.Len() != 1 || len(s.Certificates) != 1 {
				t.Fatalf("version 4: %v", err)
			}
			continue
		}
		b, err := os.ReadFile(filepath.Join(folder, m.Shards[0]))
		if err != nil {
			t.Fatal(err)
		}
		var shard shardPart
		if shard.Services, err = decodeShard(b, new(sched.Yielder)); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(folder, m.Shards[0]))
		m.Shards[0] = strings.TrimSuffix(m.Shards[0], ".bin") + ".json"
		if version == 2 {
			var names certNamesPart
			readJSON(m.CertNames, &names)
			shard.Certs = names.Certs
			os.Remove(filepath.Join(folder, m.CertNames))
			m.CertNames = ""
		}
		writeJSON(m.Shards[0], shard)
		writeJSON(manifestFile, m)

		s, err := ReadSnapshot(dir, nil)
		if err != nil {
			t.Fatalf("version %d: %v", version, err)
		}
		if got := s.CertificatesByName(discard())["a.d.test"]; got == nil || !bytes.Equal(got.Certificate[0], cert.Certificate[0]) || len(s.Services) != 1 || s.Services[0].ID != testService("a").ID {
			t.Errorf("version %d: %d services, certificate for a.d.test %v", version, len(s.Services), got != nil)
		}
	}
}

// A services part decodes to what was encoded, field for field (times
// with their zone, a PEM, empty and non-ASCII strings), and anything else
// is an error, never a panic or a service made up.
func TestShardRoundTrip(t *testing.T) {
	full := testService("a")
	full.Hostnames = []string{"a.d.test", "b.d.test", "xn--bcher-kva.d.test"}
	full.Upstreams = []string{"http://127.0.0.1:1", "https://[::1]:8443"}
	full.HSTSMaxAge, full.HealthPath, full.HealthInterval = -1, "/healthz?x=ü", -3*time.Second
	full.ClientCA, full.ClientAuth = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "require"
	full.CreatedAt = time.Date(2026, 12, 5, 16, 0, 0, 123456789, time.FixedZone("", 5*3600+30*60))
	full.UpdatedAt = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, svcs := range [][]store.Service{nil, {{}}, {full}, {testService("b"), full, testService("c")}} {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := encodeShard(w, svcs, new(sched.Yielder)); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		got, err := decodeShard(out.Bytes(), new(sched.Yielder))
		if err != nil {
			t.Fatalf("%d services: %v", len(svcs), err)
		}
		if len(got) != len(svcs) {
			t.Fatalf("%d services decoded, %d encoded", len(got), len(svcs))
		}
		for i := range svcs {
			if a, b := appendService(nil, &got[i]), appendService(nil, &svcs[i]); !bytes.Equal(a, b) {
				t.Fatalf("service %d decoded as %+v, encoded %+v", i, got[i], svcs[i])
			}
			if !got[i].CreatedAt.Equal(svcs[i].CreatedAt) || got[i].CreatedAt.Format(time.RFC3339Nano) != svcs[i].CreatedAt.Format(time.RFC3339Nano) {
				t.Fatalf("created %v, want %v", got[i].CreatedAt, svcs[i].CreatedAt)
			}
		}
		// Cut anywhere, or with a byte more, it does not decode.
		for n := range out.Len() {
			if _, err := decodeShard(out.Bytes()[:n], new(sched.Yielder)); err == nil {
				t.Fatalf("%d services cut to %d of %d bytes decoded", len(svcs), n, out.Len())
			}
		}
		if _, err := decodeShard(append(out.Bytes(), 0), new(sched.Yielder)); err == nil {
			t.Fatal("a byte after the last service decoded")
		}
	}
}

func FuzzDecodeShard(f *testing.F) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	encodeShard(w, []store.Service{testService("a"), testService("b")}, new(sched.Yielder))
	w.Flush()
	f.Add(out.Bytes())
	f.Add([]byte(shardMagic + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		svcs, err := decodeShard(b, new(sched.Yielder))
		if err != nil {
			return
		}
		// What decodes encodes to the same bytes.
		var again bytes.Buffer
		w := bufio.NewWriter(&again)
		if err := encodeShard(w, svcs, new(sched.Yielder)); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if _, err := decodeShard(again.Bytes(), new(sched.Yielder)); err != nil {
			t.Fatalf("re-encoded part does not decode: %v", err)
		}
	})
}

// testShards are ServiceShards over a list, each shard's version set by
// the test.
type testShards struct {
	by   [shardCount][]store.Service
	vers [shardCount]uint64
}

func newTestShards(svcs []store.Service) *testShards {
	s := &testShards{}
	for _, sv := range svcs {
		sh := shardOf(sv.ID)
		s.by[sh] = append(s.by[sh], sv)
	}
	for i := range s.by {
		slices.SortFunc(s.by[i], func(a, b store.Service) int { return strings.Compare(a.ID, b.ID) })
		s.vers[i] = 1
	}
	return s
}

// put adds or replaces sv and bumps its shard's version.
func (s *testShards) put(sv store.Service) {
	sh := shardOf(sv.ID)
	s.by[sh] = slices.DeleteFunc(slices.Clone(s.by[sh]), func(o store.Service) bool { return o.ID == sv.ID })
	s.by[sh] = append(s.by[sh], sv)
	slices.SortFunc(s.by[sh], func(a, b store.Service) int { return strings.Compare(a.ID, b.ID) })
	s.vers[sh]++
}

func (s *testShards) ShardVersion(i, _ int) uint64 { return s.vers[i] }
func (s *testShards) AppendShardServices(dst []store.Service, i, _ int) []store.Service {
	return append(dst, s.by[i]...)
}
func (s *testShards) AppendShardServicesOf(dst []store.Service, i, _ int, has func(string) bool) []store.Service {
	for _, sv := range s.by[i] {
		if slices.ContainsFunc(sv.Hostnames, has) {
			dst = append(dst, sv)
		}
	}
	return dst
}
func (s *testShards) ShardHostnames(i, _ int) iter.Seq[string] {
	return func(yield func(string) bool) {
		for k := range s.by[i] {
			for _, h := range s.by[i][k].Hostnames {
				if !yield(h) {
					return
				}
			}
		}
	}
}

// With a source's services by shard, a write after a change of one
// service lists, digests and writes that service's shard alone (and the
// manifest); a write with no version changed lists none; what is written
// reads back whole, and a restarted writer lists every shard once.
func TestSnapshotWriterListsOnlyChangedShards(t *testing.T) {
	dir := t.TempDir()
	var svcs []store.Service
	for i := range 2000 {
		svcs = append(svcs, testService(fmt.Sprint("s", i)))
	}
	shards := newTestShards(svcs)
	certs := map[string]*tls.Certificate{"s1.d.test": selfSigned(t, "s1.d.test")}
	src := func() *SnapshotSource {
		return &SnapshotSource{Shards: shards, Certificate: func(h string) *tls.Certificate { return certs[h] }}
	}
	w := NewSnapshotWriter(dir, src, discard())
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	if w.wrote.shards != shardCount {
		t.Errorf("first write listed %d shards, want %d", w.wrote.shards, shardCount)
	}

	changed := testService("s7")
	changed.Upstreams = []string{"http://127.0.0.1:10"}
	shards.put(changed)
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	if w.wrote.shards != 1 || w.wrote.files != 2 {
		t.Errorf("one service changed: %d shards listed, %d files written; want 1 and 2 (its shard, the manifest)", w.wrote.shards, w.wrote.files)
	}
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	if w.wrote.shards != 0 || w.wrote.files != 0 {
		t.Errorf("nothing changed: %d shards listed, %d files written; want none", w.wrote.shards, w.wrote.files)
	}
	// A version that changed with the same services: listed, not written.
	shards.vers[shardOf("id-s9")]++
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	if w.wrote.shards != 1 || w.wrote.files != 0 {
		t.Errorf("a new version, same services: %d shards listed, %d files written; want 1 and 0", w.wrote.shards, w.wrote.files)
	}

	s, err := ReadSnapshot(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]store.Service{}
	for _, sv := range s.Services {
		byID[sv.ID] = sv
	}
	if len(s.Services) != len(svcs) || len(byID) != len(svcs) || !slices.Equal(byID["id-s7"].Upstreams, changed.Upstreams) {
		t.Errorf("read back %d services (%d distinct), s7's upstreams %v", len(s.Services), len(byID), byID["id-s7"].Upstreams)
	}
	if s.CertificatesByName(discard())["s1.d.test"] == nil {
		t.Error("s1's certificate was not read back")
	}

	// A restart: every shard listed once, none written again.
	w2 := NewSnapshotWriter(dir, src, discard())
	if err := w2.Write(); err != nil {
		t.Fatal(err)
	}
	if w2.wrote.shards != shardCount || w2.wrote.files != 2 { // the keys part (a random name) and the manifest
		t.Errorf("after a restart: %d shards listed, %d files written; want %d and 2", w2.wrote.shards, w2.wrote.files, shardCount)
	}
}

// A source whose shards are not shardOf's is refused, not written under
// the wrong names.
func TestSnapshotWriterRefusesMisplacedService(t *testing.T) {
	shards := newTestShards(nil)
	sv := testService("a")
	wrong := (shardOf(sv.ID) + 1) % shardCount
	shards.by[wrong] = []store.Service{sv}
	w := NewSnapshotWriter(t.TempDir(), func() *SnapshotSource {
		return &SnapshotSource{Shards: shards, Certificate: func(string) *tls.Certificate { return nil }}
	}, discard())
	if err := w.Write(); err == nil || !strings.Contains(err.Error(), "id-a") {
		t.Errorf("Write = %v, want an error naming the service", err)
	}
}

// With a CertificatesVersion, a write looks up the certificates of the
// shards whose services changed only, and every hostname's when the
// version changed, at a key change and after snapshotRescan; a
// certificate that appeared without a new version is written at the
// rescan at the latest.
func TestSnapshotWriterLooksUpChangedCertificates(t *testing.T) {
	dir := t.TempDir()
	var svcs []store.Service
	for i := range 1000 {
		svcs = append(svcs, testService(fmt.Sprint("s", i)))
	}
	shards := newTestShards(svcs)
	certs := map[string]*tls.Certificate{"s1.d.test": selfSigned(t, "s1.d.test")}
	var version uint64
	w := NewSnapshotWriter(dir, func() *SnapshotSource {
		return &SnapshotSource{Shards: shards, Certificate: func(h string) *tls.Certificate { return certs[h] },
			CertificatesVersion: func() uint64 { return version }}
	}, discard())
	write := func(what string, scanned, files int64) {
		t.Helper()
		if err := w.Write(); err != nil {
			t.Fatal(err)
		}
		if w.wrote.scanned != scanned || files >= 0 && w.wrote.files != files {
			t.Errorf("%s: %d shards' certificates looked up, %d files written; want %d and %d", what, w.wrote.scanned, w.wrote.files, scanned, files)
		}
	}
	read := func() map[string]*tls.Certificate {
		t.Helper()
		s, err := ReadSnapshot(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s.CertificatesByName(discard())
	}
	write("first write", shardCount, -1)
	write("nothing changed", 0, 0)

	// A new service with a certificate: its shard is looked up.
	sv := testService("new")
	certs["new.d.test"] = selfSigned(t, "new.d.test")
	shards.put(sv)
	write("a new service", 1, 5) // its shard, its certificate, the names, the hot part, the manifest
	if read()["new.d.test"] == nil {
		t.Error("the new service's certificate was not written")
	}

	// A certificate loaded for an unchanged service, the version changed:
	// looked up once the pace allows (a look-up of every hostname takes
	// at most a twentieth of the time).
	certs["s2.d.test"] = selfSigned(t, "s2.d.test")
	version++
	w.scanCost = time.Hour
	write("a certificate loaded, too soon after a look-up", 0, 0)
	w.scanCost = 0
	write("a certificate loaded", shardCount, 4) // the certificate, the names, the hot part, the manifest
	if read()["s2.d.test"] == nil {
		t.Error("the loaded certificate was not written")
	}

	// One loaded without a new version (a renewal seen early): written
	// at the rescan.
	certs["s3.d.test"] = selfSigned(t, "s3.d.test")
	write("a certificate, no new version", 0, 0)
	w.rescanned = w.rescanned.Add(-snapshotRescan)
	write("the rescan", shardCount, 4)
	if read()["s3.d.test"] == nil {
		t.Error("the certificate was not written at the rescan")
	}
	// One evicted: gone from the snapshot at the next look-up of every
	// hostname.
	delete(certs, "s3.d.test")
	version++
	w.scanCost = 0
	write("a certificate evicted", shardCount, 3) // the names, the hot part, the manifest
	if got := read(); got["s3.d.test"] != nil || got["s2.d.test"] == nil || got["new.d.test"] == nil || got["s1.d.test"] == nil {
		t.Errorf("after an eviction, the snapshot has certificates for %v", slices.Sorted(maps.Keys(got)))
	}
}

// The hot part holds the services with a hostname that has a certificate
// (one of several hostnames is enough): read hot first, a snapshot has
// those alone until ReadServices reads every service, in the order of a
// sync. The hot part follows a change of a hot service and an eviction,
// and the part it replaces leaves the folder.
func TestSnapshotHotFirst(t *testing.T) {
	dir := t.TempDir()
	var svcs []store.Service
	for _, name := range []string{"e", "a", "b", "d", "c"} {
		svcs = append(svcs, testService(name))
	}
	m := testService("m")
	m.Hostnames = []string{"m1.d.test", "m2.d.test"}
	svcs = append(svcs, m)
	shards := newTestShards(svcs)
	certs := map[string]*tls.Certificate{"b.d.test": selfSigned(t, "b.d.test"), "m2.d.test": selfSigned(t, "m2.d.test")}
	var version uint64
	w := NewSnapshotWriter(dir, func() *SnapshotSource {
		return &SnapshotSource{Shards: shards, Certificate: func(h string) *tls.Certificate { return certs[h] },
			CertificatesVersion: func() uint64 { return version }}
	}, discard())
	names := func(svcs []store.Service) string {
		var out []string
		for _, sv := range svcs {
			out = append(out, sv.Name+"="+sv.Upstreams[0])
		}
		return strings.Join(out, " ")
	}
	check := func(what, wantHot string) {
		t.Helper()
		if err := w.Write(); err != nil {
			t.Fatal(err)
		}
		s, err := ReadSnapshotHotFirst(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := names(s.Services); !s.Partial() || got != wantHot || s.Len() != len(svcs) {
			t.Errorf("%s: read hot first, partial %v, %d services of %d: %q, want %q", what, s.Partial(), len(s.Services), s.Len(), got, wantHot)
		}
		if len(s.CertificatesByName(discard())) != len(certs) {
			t.Errorf("%s: %d certificates read, want %d", what, len(s.Certificates), len(certs))
		}
		if err := s.ReadServices(); err != nil {
			t.Fatal(err)
		}
		full, err := ReadSnapshot(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.Partial() || full.Partial() || names(s.Services) != names(full.Services) || len(s.Services) != len(svcs) ||
			!slices.IsSortedFunc(s.Services, compareByName) {
			t.Errorf("%s: every service read %q, partial %v; read whole %q", what, names(s.Services), s.Partial(), names(full.Services))
		}
		hot, _ := filepath.Glob(filepath.Join(dir, SnapshotDir, "hot-*"))
		if len(hot) != 1 {
			t.Errorf("%s: hot parts on disk %v, want one", what, hot)
		}
	}
	check("first write", "b=http://127.0.0.1:9 m=http://127.0.0.1:9")

	m.Upstreams = []string{"http://127.0.0.1:10"}
	shards.put(m)
	check("a hot service changed", "b=http://127.0.0.1:9 m=http://127.0.0.1:10")

	delete(certs, "b.d.test")
	version++
	w.scanCost = 0 // the look-up is paced by the last one's duration, which a loaded machine stretches
	check("a certificate evicted", "m=http://127.0.0.1:10")
}

// The writer keeps the certificate files it wrote in memory and lists the
// folder once after a restart: that first write removes what a crash or
// an older key left (a temporary file, a certificate sealed with another
// key, a file that is no certificate's), later writes remove the files of
// certificates that left without listing it, and the certificate names
// part is JSON a reader decodes, whatever the hostnames.
func TestSnapshotWriterCertificatePacks(t *testing.T) {
	dir := t.TempDir()
	k1, _ := testKeyring(t)
	certs := map[string]*tls.Certificate{}
	var svcs []store.Service
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		svcs = append(svcs, testService(n))
		if n != "e" {
			certs[n+".d.test"] = selfSigned(t, n+".d.test")
		}
	}
	var version uint64
	src := &SnapshotSource{Services: svcs, Sum: [32]byte{1}, Keyring: k1,
		Certificate: func(h string) *tls.Certificate { return certs[h] }, CertificatesVersion: func() uint64 { return version }}
	w := NewSnapshotWriter(dir, func() *SnapshotSource { return src }, discard())
	certsPath := filepath.Join(dir, SnapshotDir, certsDir)
	list := func() []string {
		t.Helper()
		ents, err := os.ReadDir(certsPath)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	// write writes after a look-up of every hostname (a new version)
	// and checks what the snapshot reads back and how many certificates
	// were put in packs.
	write := func(what string, written int64) manifest {
		t.Helper()
		version++
		w.rescanned = time.Time{}
		if err := w.Write(); err != nil {
			t.Fatal(err)
		}
		if w.wrote.certs != written {
			t.Errorf("%s: %d certificates written, want %d", what, w.wrote.certs, written)
		}
		m := readManifest(t, dir)
		if got := list(); !slices.Equal(got, slices.Sorted(slices.Values(m.CertPacks))) {
			t.Errorf("%s: certs/ holds %v, the manifest names packs %v", what, got, m.CertPacks)
		}
		s, err := ReadSnapshot(dir, k1)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		got := s.CertificatesByName(discard())
		if len(got) != len(certs) {
			t.Errorf("%s: read back certificates for %v, want %d", what, slices.Sorted(maps.Keys(got)), len(certs))
		}
		for h, c := range certs {
			if got[h] == nil || !bytes.Equal(got[h].Certificate[0], c.Certificate[0]) {
				t.Errorf("%s: %s's certificate not read back", what, h)
			}
		}
		return m
	}
	first := write("first write", 4)
	if len(first.CertPacks) != 1 {
		t.Fatalf("four certificates in %d packs, want one", len(first.CertPacks))
	}

	// Left by a crash, an older release or another manifest: removed by
	// the first write after a restart, even with nothing else to write.
	strays := []string{".tmp-x.json-123", certFileName(hex.EncodeToString(sha256Sum(certs["a.d.test"].Certificate[0])), "oldkey"),
		"notes.txt", newCertPackName(), strings.Repeat("A", 64) + ".json"}
	for _, name := range strays {
		if err := os.WriteFile(filepath.Join(certsPath, name), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w = NewSnapshotWriter(dir, func() *SnapshotSource { return src }, discard())
	if m := write("a restart", 0); !slices.Equal(m.CertPacks, first.CertPacks) {
		t.Errorf("after a restart: packs %v, want %v", m.CertPacks, first.CertPacks)
	}

	// b's certificate evicted, e's loaded: the pack keeps 3 of its 4, e
	// goes to a pack of its own. Then c's evicted: 2 of 4, still kept.
	delete(certs, "b.d.test")
	certs["e.d.test"] = selfSigned(t, "e.d.test")
	m := write("b evicted, e loaded", 1)
	if len(m.CertPacks) != 2 || m.CertPacks[0] != first.CertPacks[0] {
		t.Errorf("b evicted, e loaded: packs %v, want the first and one more", m.CertPacks)
	}
	delete(certs, "c.d.test")
	m = write("c evicted", 0)
	if len(m.CertPacks) != 2 || m.CertPacks[0] != first.CertPacks[0] {
		t.Errorf("c evicted: packs %v, want the same two", m.CertPacks)
	}
	// d's evicted: one of the first pack's four is named; a goes to a new
	// pack, the first leaves the folder, e's stays.
	delete(certs, "d.d.test")
	m = write("d evicted", 1)
	if len(m.CertPacks) != 2 || m.CertPacks[0] == first.CertPacks[0] {
		t.Errorf("d evicted: packs %v, want the first one gone", m.CertPacks)
	}

	// f and g loaded: a third pack.
	for _, c := range []string{"f", "g"} {
		svcs = append(svcs, testService(c))
		certs[c+".d.test"] = selfSigned(t, c+".d.test")
	}
	src = &SnapshotSource{Services: svcs, Sum: [32]byte{2}, Keyring: k1, Certificate: src.Certificate, CertificatesVersion: src.CertificatesVersion}
	m = write("f and g", 2)
	if len(m.CertPacks) != 3 {
		t.Errorf("f and g: packs %v, want three", m.CertPacks)
	}

	// Another key: every certificate sealed with it, in a new pack.
	k2, _ := testKeyring(t)
	src = &SnapshotSource{Services: svcs, Sum: [32]byte{2}, Keyring: k2, Certificate: src.Certificate, CertificatesVersion: src.CertificatesVersion}
	before := m.CertPacks
	w.rescanned = time.Time{}
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	if m = readManifest(t, dir); len(m.CertPacks) != 1 || slices.Contains(before, m.CertPacks[0]) || w.wrote.certs != int64(len(certs)) || m.KeyID != k2.IDs()[0] {
		t.Errorf("a new key: packs %v (before %v), %d certificates written, key %q", m.CertPacks, before, w.wrote.certs, m.KeyID)
	}
	s, err := ReadSnapshot(dir, k2)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CertificatesByName(discard()); len(got) != len(certs) {
		t.Errorf("a new key: read back certificates for %v, want %d", slices.Sorted(maps.Keys(got)), len(certs))
	}
	if got := list(); !slices.Equal(got, m.CertPacks) {
		t.Errorf("a new key: certs/ holds %v, want %v", got, m.CertPacks)
	}
}

// A folder whose packs were tampered with or lost reads as an error that
// names what is wrong, never as a snapshot without the certificate.
func TestSnapshotCertPackDamaged(t *testing.T) {
	for _, tc := range []struct {
		what, want string
		damage     func(t *testing.T, folder string, m *manifest)
	}{
		{"a pack named outside the folder", "names a certificate pack", func(t *testing.T, folder string, m *manifest) {
			m.CertPacks[0] = "../" + m.CertPacks[0]
		}},
		{"a pack cut short", "reading the snapshot's pack-", func(t *testing.T, folder string, m *manifest) {
			path := filepath.Join(folder, certsDir, m.CertPacks[0])
			b, _ := os.ReadFile(path)
			os.WriteFile(path, b[:len(b)/2], 0o600)
		}},
		{"a pack gone", "no such file", func(t *testing.T, folder string, m *manifest) {
			os.Remove(filepath.Join(folder, certsDir, m.CertPacks[0]))
		}},
		{"no pack named", "in none of its packs", func(t *testing.T, folder string, m *manifest) {
			m.CertPacks = nil
		}},
		{"another certificate under the leaf's digest", "does not hold certificate", func(t *testing.T, folder string, m *manifest) {
			path := filepath.Join(folder, certsDir, m.CertPacks[0])
			b, _ := os.ReadFile(path)
			p, _, _ := decodeCertPack(b)
			other, _ := encodeCertPart(selfSigned(t, "b.d.test"), nil)
			var out bytes.Buffer
			bw := bufio.NewWriter(&out)
			encodeCertPack(bw, p.keyID, p.leaves, func(int) ([]byte, error) { return slices.Clone(other), nil })
			bw.Flush()
			os.WriteFile(path, out.Bytes(), 0o600)
		}},
	} {
		dir, _ := writeOneCertSnapshot(t)
		folder := filepath.Join(dir, SnapshotDir)
		m := readManifest(t, dir)
		tc.damage(t, folder, &m)
		b, _ := json.Marshal(m)
		if err := os.WriteFile(filepath.Join(folder, manifestFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSnapshot(dir, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: read with error %v, want one saying %q", tc.what, err, tc.want)
		}
	}
}

// readManifest reads dir's snapshot manifest.
func readManifest(t *testing.T, dir string) manifest {
	t.Helper()
	var m manifest
	b, err := os.ReadFile(filepath.Join(dir, SnapshotDir, manifestFile))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// planPacks keeps a pack that holds a named certificate, unless fewer
// than half of its certificates are named, or it was sealed with another
// key, and every named one can be written anew (it was looked up).
func TestPlanPacks(t *testing.T) {
	l := func(i byte) [sha256.Size]byte { return [sha256.Size]byte{i} }
	w := &SnapshotWriter{packs: map[string]certPack{
		"p1": {"k1", [][sha256.Size]byte{l(1), l(2), l(3), l(4)}}, // 1 of 4 named, not looked up: stays
		"p2": {"k1", [][sha256.Size]byte{l(5)}},                   // none named: goes
		"p3": {"k1", [][sha256.Size]byte{l(6), l(7), l(8)}},       // 1 of 3 named, looked up: goes
		"p4": {"k0", [][sha256.Size]byte{l(9)}},                   // another key: goes
		"p5": {"k1", [][sha256.Size]byte{l(11), l(12)}},           // 1 of 2, looked up: stays
	}}
	w.cur.CertPacks = []string{"p1", "p2", "p3", "p4", "p5", "gone"} // gone: unreadable at load
	var pairs [shardCount][]hostLeaf
	pairs[0] = []hostLeaf{{"a", l(1)}, {"f", l(6)}, {"i", l(9)}}
	pairs[7] = []hostLeaf{{"j", l(10)}, {"k", l(11)}, {"m", l(13)}}
	byLeaf := map[[sha256.Size]byte]*tls.Certificate{l(6): nil, l(9): nil, l(10): nil, l(11): nil, l(13): nil}
	kept, toWrite := w.planPacks(&pairs, byLeaf, "k1")
	if !slices.Equal(kept, []string{"p1", "p5"}) || !slices.Equal(toWrite, [][sha256.Size]byte{l(6), l(9), l(10), l(13)}) {
		t.Errorf("kept %v, to write %v", kept, toWrite)
	}
}

func TestCertPackName(t *testing.T) {
	for range 3 {
		if name := newCertPackName(); !certPackNameOK(name) {
			t.Errorf("certPackNameOK(%q) = false", name)
		}
	}
	h := strings.Repeat("0a", 16)
	for _, name := range []string{"", "pack-.bin", "pack-" + h, "pack-" + h + ".json", "pack-" + strings.ToUpper(h) + ".bin", "pack-" + h[:30] + ".bin",
		"pack-zz" + h[2:] + ".bin", ".tmp-pack-" + h + ".bin", "../pack-" + h + ".bin", "pack-" + h + "0a.bin"} {
		if certPackNameOK(name) {
			t.Errorf("certPackNameOK(%q) = true", name)
		}
	}
}

// A pack decodes to its key ID, leaves and parts; cut anywhere or with a
// byte more, it does not, and its index alone reads from its start.
func TestCertPackRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		leaves := make([][sha256.Size]byte, n)
		parts := make([][]byte, n)
		for i := range n {
			leaves[i] = sha256.Sum256([]byte{byte(i)})
			parts[i] = []byte(fmt.Sprintf(`{"chain_pem":"c%d","key_pem":"k%d"}`, i, i))
		}
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		if err := encodeCertPack(bw, "k1", leaves, func(i int) ([]byte, error) { return slices.Clone(parts[i]), nil }); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		b := out.Bytes()
		p, got, err := decodeCertPack(b)
		if err != nil || p.keyID != "k1" || !slices.Equal(p.leaves, leaves) || len(got) != n {
			t.Fatalf("%d certificates: decoded %+v, %d parts, %v", n, p, len(got), err)
		}
		for i := range got {
			if !bytes.Equal(got[i], parts[i]) {
				t.Errorf("part %d decoded as %q", i, got[i])
			}
		}
		if p, err := readCertPackIndex(bufio.NewReader(bytes.NewReader(b)), int64(len(b))); err != nil || !slices.Equal(p.leaves, leaves) {
			t.Errorf("%d certificates: index %+v, %v", n, p, err)
		}
		for cut := range len(b) {
			if _, _, err := decodeCertPack(b[:cut]); err == nil {
				t.Fatalf("%d certificates cut to %d of %d bytes decoded", n, cut, len(b))
			}
		}
		if _, _, err := decodeCertPack(append(slices.Clone(b), 0)); err == nil {
			t.Fatal("a byte after the last certificate decoded")
		}
	}
}

func FuzzDecodeCertPack(f *testing.F) {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	encodeCertPack(bw, "k1", [][sha256.Size]byte{{1}, {2}}, func(i int) ([]byte, error) { return []byte(`{"chain_pem":"","key_pem":""}`), nil })
	bw.Flush()
	f.Add(out.Bytes())
	f.Add([]byte(certPackMagic + "\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, parts, err := decodeCertPack(b)
		if err != nil {
			return
		}
		// What decodes encodes to what decodes alike, and its index reads
		// alone.
		var again bytes.Buffer
		bw := bufio.NewWriter(&again)
		if err := encodeCertPack(bw, p.keyID, p.leaves, func(i int) ([]byte, error) { return slices.Clone(parts[i]), nil }); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		q, parts2, err := decodeCertPack(again.Bytes())
		if err != nil || q.keyID != p.keyID || !slices.Equal(q.leaves, p.leaves) || !slices.EqualFunc(parts, parts2, bytes.Equal) {
			t.Fatalf("re-encoded, decoded as %+v, %v", q, err)
		}
		if q, err := readCertPackIndex(bufio.NewReader(bytes.NewReader(b)), int64(len(b))); err != nil || q.keyID != p.keyID || !slices.Equal(q.leaves, p.leaves) {
			t.Fatalf("index read as %+v, %v; decoded %+v", q, err, p)
		}
	})
}

// encodeCertPart writes what json.Marshal of a certPart of the PEM chain
// and key wrote before it was written by hand: byte for byte without a
// keyring; with one, the same chain and a key that opens to the same PEM.
// Chains of one to three certificates, so that a line ends exactly at a
// block's end too (DER of a multiple of 48 bytes).
func TestEncodeCertPartIsJSONOfCertPart(t *testing.T) {
	want := func(c *tls.Certificate) ([]byte, string) {
		var chain bytes.Buffer
		for _, der := range c.Certificate {
			pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		}
		der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		b, err := json.Marshal(certPart{ChainPEM: chain.String(), KeyPEM: string(key)})
		if err != nil {
			t.Fatal(err)
		}
		return b, string(key)
	}
	k, _ := testKeyring(t)
	a, b := selfSigned(t, "a.example"), selfSigned(t, "b.example")
	for _, c := range []*tls.Certificate{
		a,
		{Certificate: [][]byte{a.Certificate[0], b.Certificate[0]}, PrivateKey: a.PrivateKey},
		{Certificate: [][]byte{a.Certificate[0], make([]byte, 96), make([]byte, 1)}, PrivateKey: a.PrivateKey},
	} {
		wantJSON, wantKey := want(c)
		got, err := encodeCertPart(c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, wantJSON) {
			t.Errorf("without a keyring:\n%s\nwant\n%s", got, wantJSON)
		}
		if cap(got) != len(got) {
			t.Errorf("without a keyring: %d bytes in a slice of %d", len(got), cap(got))
		}
		got, err = encodeCertPart(c, k)
		if err != nil {
			t.Fatal(err)
		}
		if cap(got) != len(got) {
			t.Errorf("sealed: %d bytes in a slice of %d", len(got), cap(got))
		}
		var p, w certPart
		if err := json.Unmarshal(got, &p); err != nil {
			t.Fatalf("sealed: %v in %s", err, got)
		}
		json.Unmarshal(wantJSON, &w)
		if p.ChainPEM != w.ChainPEM {
			t.Errorf("sealed: chain\n%s\nwant\n%s", p.ChainPEM, w.ChainPEM)
		}
		if strings.Contains(p.KeyPEM, "PRIVATE KEY") {
			t.Error("sealed: the key is in the clear")
		}
		if plain, err := k.Open(certKeyName(c.Certificate[0]), []byte(p.KeyPEM)); err != nil || string(plain) != wantKey {
			t.Errorf("sealed key opens to %q, %v; want the key's PEM", plain, err)
		}
	}
}

// BenchmarkEncodeCertPart: one certificate file, its key sealed (what the
// snapshot writer does for each certificate that entered the cache).
func BenchmarkEncodeCertPart(b *testing.B) {
	k, _ := testKeyring(b)
	c := selfSigned(b, "a.example")
	for b.Loop() {
		if _, err := encodeCertPart(c, k); err != nil {
			b.Fatal(err)
		}
	}
}
