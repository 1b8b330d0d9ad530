package browser

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCATrustInChromium runs the real `spine up`, then `spine ca trust`
// for a fresh home folder (its NSS database, which Chromium reads) and a
// system store of Debian's layout in a temporary folder, rebuilt by
// Debian's own update-ca-certificates (the machine's trust store is left
// alone): Chromium then loads the demo page with no certificate error.
// After `spine ca untrust` the same page fails with a certificate error,
// and the system bundle no longer holds the root.
func TestCATrustInChromium(t *testing.T) {
	need(t, "certutil", "libnss3-tools")
	need(t, "update-ca-certificates", "ca-certificates")
	dir := t.TempDir()
	bin := filepath.Join(dir, "spine")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/spine").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	data := filepath.Join(dir, "data")
	up := exec.CommandContext(ctx, bin, "up", "--data", data, "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0")
	up.Cancel = func() error { return up.Process.Signal(syscall.SIGTERM) }
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); up.Wait() }()
	var printed strings.Builder
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		printed.WriteString(lines.Text() + "\n")
		if strings.Contains(lines.Text(), "Trust the CA:") {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	page := regexp.MustCompile(`https://hello\.localhost:\d+/`).FindString(printed.String())
	api := regexp.MustCompile(`--api (http://\S+)`).FindStringSubmatch(printed.String())
	trustLine := regexp.MustCompile(`Trust the CA:\s+go run ./cmd/spine (ca trust[^(]*)`).FindStringSubmatch(printed.String())
	if page == "" || api == nil || trustLine == nil {
		t.Fatalf("`spine up` printed no demo URL, API address or trust command:\n%s", printed.String())
	}

	// The system store: Debian's layout and update command, in folders of the test's.
	sys := t.TempDir()
	for _, d := range []string{"local", "share", "etc", "hooks"} {
		os.MkdirAll(filepath.Join(sys, d), 0o755)
	}
	// One of the distribution's roots, as on a real system: with no root
	// left at all, update-ca-certificates would leave the old bundle.
	distro, _ := filepath.Glob("/usr/share/ca-certificates/mozilla/*.crt")
	if len(distro) == 0 {
		t.Fatal("no distribution roots in /usr/share/ca-certificates/mozilla: apt-get install ca-certificates")
	}
	b, err := os.ReadFile(distro[0])
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(sys, "share", "distro.crt"), b, 0o644)
	os.WriteFile(filepath.Join(sys, "ca-certificates.conf"), []byte("distro.crt\n"), 0o644)
	update := fmt.Sprintf("update-ca-certificates --fresh --certsconf %[1]s/ca-certificates.conf --certsdir %[1]s/share --localcertsdir %[1]s/local --etccertsdir %[1]s/etc --hooksdir %[1]s/hooks", sys)
	home := filepath.Join(dir, "home") // fresh: no NSS database yet
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	spine := func(args ...string) string {
		t.Helper()
		// The command as `spine up` printed it, pointed at this home and system store.
		args = append(append(strings.Fields(trustLine[1])[:0:0], args...), "--home", home, "--system-dir", filepath.Join(sys, "local"), "--system-update", update)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("spine %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	trustArgs := strings.Fields(trustLine[1])
	out := spine(trustArgs...)
	t.Logf("spine %s:\n%s", strings.Join(trustArgs, " "), out)
	if !strings.Contains(out, "NSS database "+filepath.Join(home, ".pki", "nssdb")+": added") || !strings.Contains(out, "system trust store") {
		t.Fatalf("ca trust printed:\n%s", out)
	}
	rootPEM, err := os.ReadFile(filepath.Join(data, "ca", "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !bundleVerifies(t, filepath.Join(sys, "etc", "ca-certificates.crt"), rootPEM) {
		t.Error("after ca trust, the system bundle does not hold the root")
	}

	load := func() string {
		os.RemoveAll(filepath.Join(home, "profile")) // nothing remembered between the loads
		return chromium(t, home, "--dump-dom", page)
	}
	if dom := load(); !strings.Contains(dom, "Hello from Spine!") {
		t.Fatalf("with the root trusted through `spine ca trust`, Chromium showed:\n%s", dom)
	}
	shot := filepath.Join(artifactsDir(t), "browser-ca-trust.png")
	chromium(t, home, "--screenshot="+shot, "--window-size=900,500", page)

	untrust := append([]string{"ca", "untrust"}, trustArgs[2:]...)
	out = spine(untrust...)
	if !strings.Contains(out, "NSS database "+filepath.Join(home, ".pki", "nssdb")+": removed") {
		t.Fatalf("ca untrust printed:\n%s", out)
	}
	if bundleVerifies(t, filepath.Join(sys, "etc", "ca-certificates.crt"), rootPEM) {
		t.Error("after ca untrust, the system bundle still holds the root")
	}
	dom := load()
	// Headless Chromium shows an empty document instead of its
	// interstitial; the control above loaded the same URL.
	if strings.Contains(dom, "Hello from Spine!") {
		t.Fatalf("after `spine ca untrust`, Chromium still loaded the page:\n%s", dom)
	}
	shot = filepath.Join(artifactsDir(t), "browser-ca-untrusted.png")
	os.RemoveAll(filepath.Join(home, "profile"))
	chromium(t, home, "--screenshot="+shot, "--window-size=900,500", page)
	t.Logf("screenshots: %s", filepath.Dir(shot))
}

func artifactsDir(t *testing.T) string {
	if a := os.Getenv("SPINE_ARTIFACTS"); a != "" {
		return a
	}
	return t.TempDir()
}

// bundleVerifies reports whether the root in rootPEM is among the bundle's certificates.
func bundleVerifies(t *testing.T, bundle string, rootPEM []byte) bool {
	t.Helper()
	b, err := os.ReadFile(bundle)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(rootPEM)
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return false
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil && c.Equal(root) {
			return true
		}
	}
}
