// Package browser checks what a person sees: Spine's pages loaded in a real
// headless Chromium that trusts Spine's root the way a user's machine would
// (the root added to the NSS database Chromium reads on Linux), with no
// certificate errors ignored.
package browser

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/node/config"
)

func need(t *testing.T, bin, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("%s is not installed: apt-get install %s (.ci/run does this)", bin, pkg)
	}
	return p
}

// chromium runs a headless Chromium with home as $HOME (and so its NSS
// database) and returns what it printed on stdout.
func chromium(t *testing.T, home string, args ...string) string {
	t.Helper()
	return chromiumWith(t, home, "--disable-quic", args...)
}

// chromiumWith is chromium with quic as its QUIC flag: --disable-quic, or
// --enable-quic with the origins to force QUIC on.
func chromiumWith(t *testing.T, home, quic string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", quic, "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-features=HttpsUpgrades", "--user-data-dir=" + filepath.Join(home, "profile"),
	}
	cmd := exec.CommandContext(ctx, need(t, "chromium", "chromium"), append(base, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// trustingHome makes a home folder under dir whose NSS database (the one
// Chromium reads on Linux) trusts the root certificate in the PEM file root.
func trustingHome(t *testing.T, certutil, dir, root string) string {
	t.Helper()
	home := filepath.Join(dir, "home")
	nss := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(nss, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-d", "sql:" + nss, "-N", "--empty-password"},
		{"-d", "sql:" + nss, "-A", "-n", "Spine test root", "-t", "C,,", "-i", root},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	return home
}

func TestPagesInChromium(t *testing.T) {
	certutil := need(t, "certutil", "libnss3-tools")
	dir := t.TempDir()
	n, err := node.Start(context.Background(), config.Config{
		DataDir: filepath.Join(dir, "data"), Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())

	// Trust Spine's root the way a user would: in the NSS database.
	root := filepath.Join(dir, "data", "ca", "root.pem")
	home := trustingHome(t, certutil, dir, root)

	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	c := client.New("http://"+n.APIAddr(), strings.TrimSpace(string(tok)))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	svc, err := c.CreateService(context.Background(), client.ServiceCreate{Name: "down", Upstreams: []string{dead}})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rootPEM, _ := os.ReadFile(root)
	if err := c.WaitServing(wctx, svc, rootPEM, nil); err != nil {
		t.Fatal(err)
	}

	_, httpsPort, _ := net.SplitHostPort(n.HTTPSAddr())
	_, httpPort, _ := net.SplitHostPort(n.HTTPAddr())
	artifacts := os.Getenv("SPINE_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	for _, tc := range []struct {
		name, url string
		want      []string
	}{
		// The demo service: a trusted HTTPS page, no interstitial.
		{"demo", fmt.Sprintf("https://hello.localhost:%s/", httpsPort), []string{"Hello from Spine!"}},
		// Plain HTTP is redirected to HTTPS and lands on the same page.
		{"redirect", fmt.Sprintf("http://hello.localhost:%s/", httpPort), []string{"Hello from Spine!"}},
		// An upstream that is down: a clear 502 page.
		{"bad-gateway", fmt.Sprintf("https://down.localhost:%s/", httpsPort), []string{"<h1>Bad gateway</h1>", "The upstream of service down is not answering."}},
		// A host Spine does not serve (over HTTP: over HTTPS it gets a TLS alert).
		{"not-found", fmt.Sprintf("http://nobody.localhost:%s/", httpPort), []string{"<h1>Not found</h1>", "nobody.localhost", "is not served by Spine"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dom := chromium(t, home, "--dump-dom", tc.url)
			for _, w := range tc.want {
				if !strings.Contains(dom, w) {
					t.Fatalf("%s: page lacks %q; Chromium showed:\n%s", tc.url, w, dom)
				}
			}
			shot := filepath.Join(artifacts, "browser-"+tc.name+".png")
			chromium(t, home, "--screenshot="+shot, "--window-size=900,500", tc.url)
			if fi, err := os.Stat(shot); err != nil || fi.Size() == 0 {
				t.Fatalf("no screenshot: %v", err)
			}
			t.Logf("screenshot: %s", shot)
		})
	}

	// An unknown name over HTTPS never gets a page: the handshake fails.
	dom := chromium(t, home, "--dump-dom", fmt.Sprintf("https://nobody.localhost:%s/", httpsPort))
	if strings.Contains(dom, "Hello from Spine") || strings.Contains(dom, "not answering") {
		t.Fatalf("an unknown HTTPS name showed content:\n%s", dom)
	}
}
