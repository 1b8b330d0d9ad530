package secrets

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ring(t *testing.T) (*Keyring, []byte) {
	t.Helper()
	content, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, raw, err := Parse(content)
	if err != nil {
		t.Fatal(err)
	}
	return k, raw[0]
}

func TestSealOpen(t *testing.T) {
	k, raw := ring(t)
	secret := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
	sealed, err := k.Seal("certificates/a/a.key", secret)
	if err != nil {
		t.Fatal(err)
	}
	if !IsSealed(sealed) || !k.Current(sealed) || bytes.Contains(sealed, []byte("secret")) || bytes.Contains(sealed, []byte("PRIVATE")) {
		t.Fatalf("sealed = %q", sealed)
	}
	if id, ok := SealedWith(sealed); !ok || id != KeyID(raw) {
		t.Errorf("SealedWith = %q, %v; want %s", id, ok, KeyID(raw))
	}
	if got, err := k.Open("certificates/a/a.key", sealed); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	// Copied to another name: refused.
	if _, err := k.Open("certificates/b/b.key", sealed); !errors.Is(err, ErrDamaged) {
		t.Errorf("Open under another name: %v, want ErrDamaged", err)
	}
	// Changed: refused.
	bad := bytes.Clone(sealed)
	bad[len(bad)-3] ^= 'A' ^ 'B'
	if bad[len(bad)-3] == sealed[len(sealed)-3] {
		bad[len(bad)-3] = 'C'
	}
	if _, err := k.Open("certificates/a/a.key", bad); !errors.Is(err, ErrDamaged) {
		t.Errorf("Open of a changed value: %v, want ErrDamaged", err)
	}
	if _, err := k.Open("certificates/a/a.key", sealed[:len(header)+idLen+3]); err == nil {
		t.Error("Open of a truncated value succeeded")
	}
	// Another ring: unknown key, named.
	other, _ := ring(t)
	var unknown *UnknownKeyError
	if _, err := other.Open("certificates/a/a.key", sealed); !errors.As(err, &unknown) || unknown.ID != KeyID(raw) {
		t.Errorf("Open with another key: %v", err)
	}
	// Not sealed: an error, never the value.
	if _, err := k.Open("x.key", secret); err == nil || strings.Contains(err.Error(), "secret") && strings.Contains(err.Error(), "PRIVATE") {
		t.Errorf("Open of plaintext: %v", err)
	}
}

func TestRotationRing(t *testing.T) {
	oldK, oldRaw := ring(t)
	_, newRaw := ring(t)
	both, err := New(newRaw, oldRaw)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := oldK.Seal("n", []byte("v"))
	if both.Current(s) {
		t.Error("a value of the old key is current under the new ring")
	}
	if v, err := both.Open("n", s); err != nil || string(v) != "v" {
		t.Errorf("the new ring opens the old key's value: %q, %v", v, err)
	}
	s2, _ := both.Seal("n", []byte("v"))
	if id, _ := SealedWith(s2); id != KeyID(newRaw) {
		t.Errorf("the ring seals with %s, want the first key %s", id, KeyID(newRaw))
	}
	if ids := both.IDs(); len(ids) != 2 || ids[0] != KeyID(newRaw) {
		t.Errorf("IDs = %v", ids)
	}
	if _, err := New(newRaw, newRaw); err == nil {
		t.Error("a ring with a key twice was accepted")
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.key")
	content, _ := Generate()
	if err := CreateFile(good, content); err != nil {
		t.Fatal(err)
	}
	if err := CreateFile(good, content); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CreateFile over an existing file: %v", err)
	}
	if fi, _ := os.Stat(good); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if _, _, err := ReadFile(good); err != nil {
		t.Fatal(err)
	}
	key := strings.Split(strings.TrimSpace(string(content)), "\n")[3]
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"missing", "", 0, "does not exist"},
		{"empty", "# nothing\n\n", 0o600, "holds no key"},
		{"short", "c2hvcnQ=\n", 0o600, "line 1 is not a key"},
		{"not base64", "# c\n" + strings.Repeat("!", 44) + "\n", 0o600, "line 2 is not a key"},
		{"readable by others", key + "\n", 0o644, "chmod 600"},
		{"twice", key + "\n" + key + "\n", 0o600, "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if tc.mode != 0 {
				if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(path, tc.mode)
			}
			_, _, err := ReadFile(path)
			var fe *FileError
			if !errors.As(err, &fe) || fe.Path != path || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadFile = %v; want a FileError naming %s and saying %q", err, path, tc.want)
			}
			if strings.Contains(err.Error(), key) || strings.Contains(err.Error(), strings.Repeat("!", 10)) {
				t.Errorf("the error shows the file's content: %v", err)
			}
		})
	}
}

// BenchmarkOpen opens a sealed P-256 private key in PEM (about 240 bytes),
// what a certificate load from the store adds.
func BenchmarkOpen(b *testing.B) {
	content, _ := Generate()
	k, _, _ := Parse(content)
	keyPEM := bytes.Repeat([]byte("k"), 241)
	sealed, _ := k.Seal("certificates/spine-internal/a.example/a.example.key", keyPEM)
	for b.Loop() {
		if _, err := k.Open("certificates/spine-internal/a.example/a.example.key", sealed); err != nil {
			b.Fatal(err)
		}
	}
}
