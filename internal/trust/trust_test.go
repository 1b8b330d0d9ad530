package trust

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newRoot(t *testing.T, cn string, ca bool) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// debianStore lays out a system trust store of Debian's shape in a
// temporary folder and returns its extra-roots folder, the update command
// (Debian's own, pointed at these folders) and the bundle it writes.
func debianStore(t *testing.T) (dir string, update []string, bundle string) {
	t.Helper()
	if _, err := exec.LookPath("update-ca-certificates"); err != nil {
		t.Fatal("update-ca-certificates is not installed: apt-get install ca-certificates")
	}
	base := t.TempDir()
	for _, d := range []string{"local", "share", "etc", "hooks"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// One distribution root, so that the bundle is rebuilt even when the
	// local folder is empty.
	other := newRoot(t, "Distribution Root", true)
	os.WriteFile(filepath.Join(base, "share", "distro.crt"), pemOf(other), 0o644)
	os.WriteFile(filepath.Join(base, "ca-certificates.conf"), []byte("distro.crt\n"), 0o644)
	return filepath.Join(base, "local"), []string{"update-ca-certificates", "--fresh",
		"--certsconf", filepath.Join(base, "ca-certificates.conf"), "--certsdir", filepath.Join(base, "share"),
		"--localcertsdir", filepath.Join(base, "local"), "--etccertsdir", filepath.Join(base, "etc"),
		"--hooksdir", filepath.Join(base, "hooks")}, filepath.Join(base, "etc", "ca-certificates.crt")
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func bundleHas(t *testing.T, bundle string, c *x509.Certificate) bool {
	t.Helper()
	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", bundle)
	}
	_, err = c.Verify(x509.VerifyOptions{Roots: pool})
	return err == nil
}

func TestInstallUninstall(t *testing.T) {
	if _, err := exec.LookPath("certutil"); err != nil {
		t.Fatal("certutil is not installed: apt-get install libnss3-tools (.ci/run does this)")
	}
	ctx := context.Background()
	root := newRoot(t, "Spine Internal CA", true)
	dir, update, bundle := debianStore(t)
	home := t.TempDir()
	// A Firefox profile with a database of its own.
	profile := filepath.Join(home, ".mozilla", "firefox", "abcd.default-release")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("certutil", "-N", "-d", "sql:"+profile, "--empty-password").CombinedOutput(); err != nil {
		t.Fatalf("certutil -N: %v %s", err, out)
	}
	cfg := Config{Home: home, SystemDir: dir, SystemUpdate: update}
	shared := filepath.Join(home, ".pki", "nssdb")

	res, err := Install(ctx, root, cfg)
	if err != nil {
		t.Fatalf("Install: %v (%+v)", err, res)
	}
	if len(res) != 3 || !res[0].Changed || !res[1].Changed || !res[2].Changed {
		t.Errorf("Install results: %+v", res)
	}
	if !bundleHas(t, bundle, root) {
		t.Error("the system bundle does not hold the root")
	}
	if !cfg.Has(ctx, root, shared) || !cfg.Has(ctx, root, profile) {
		t.Error("an NSS database does not hold the root")
	}
	// Trusted as a CA for servers: certutil lists it with "C,,".
	out, _ := exec.Command("certutil", "-L", "-d", "sql:"+shared).CombinedOutput()
	if !strings.Contains(string(out), Name(root)) || !strings.Contains(string(out), "C,,") {
		t.Errorf("certutil -L:\n%s", out)
	}
	// Twice changes nothing.
	res, err = Install(ctx, root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Changed {
			t.Errorf("a second Install changed %+v", r)
		}
	}
	// Another root stays when this one goes.
	other := newRoot(t, "Other CA", true)
	if _, err := Install(ctx, other, Config{Home: home, NoSystem: true}); err != nil {
		t.Fatal(err)
	}

	res, err = Uninstall(ctx, root, cfg)
	if err != nil {
		t.Fatalf("Uninstall: %v (%+v)", err, res)
	}
	if len(res) != 3 || !res[0].Changed || !res[1].Changed || !res[2].Changed {
		t.Errorf("Uninstall results: %+v", res)
	}
	if bundleHas(t, bundle, root) {
		t.Error("the system bundle still holds the root")
	}
	if cfg.Has(ctx, root, shared) || cfg.Has(ctx, root, profile) {
		t.Error("an NSS database still holds the root")
	}
	if !cfg.Has(ctx, other, shared) {
		t.Error("Uninstall removed another root")
	}
	if _, err := os.Stat(filepath.Join(dir, fileName(root)+".crt")); !os.IsNotExist(err) {
		t.Errorf("the system store file is still there: %v", err)
	}

	// Refusals.
	if _, err := Install(ctx, newRoot(t, "leaf", false), cfg); err != ErrNotRoot {
		t.Errorf("a non-CA certificate: %v", err)
	}
	_, err = Install(ctx, root, Config{Home: home, SystemDir: filepath.Join(t.TempDir(), "missing"), SystemUpdate: update, NoNSS: true})
	if err == nil || !strings.Contains(err.Error(), "--no-system") {
		t.Errorf("an unwritable system folder: %v", err)
	}
	_, err = Install(ctx, root, Config{Home: home, NoSystem: true, Certutil: "no-such-certutil"})
	if err == nil || !strings.Contains(err.Error(), "libnss3-tools") {
		t.Errorf("without certutil: %v", err)
	}
}
