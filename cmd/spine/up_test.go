package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestUpPrintsCommandsThatWork runs the `spine up` binary in an empty folder,
// as a newcomer would from the README, and runs the commands it prints: the
// curl line answers from the demo service with a certificate that curl
// verifies against the printed root, and the create-then-curl pair serves a
// new service over HTTPS.
func TestUpPrintsCommandsThatWork(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to run the printed commands (apt-get install curl)")
	}
	bin := buildSpine(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	up := exec.CommandContext(ctx, bin, "up", "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0")
	up.Dir = dir
	up.Env = append(os.Environ(), "SPINE_TOKEN=", "SPINE_API=", "SPINE_DATA=")
	up.Cancel = func() error { return up.Process.Signal(syscall.SIGTERM) }
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	up.Stderr = &logs
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		up.Wait()
		if t.Failed() {
			t.Logf("spine up logs:\n%s", logs.String())
		}
	}()

	// Read what `up` prints, up to its last line.
	var printed []string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		printed = append(printed, strings.TrimSpace(lines.Text()))
		if strings.HasPrefix(printed[len(printed)-1], "Trust the CA:") {
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	text := strings.Join(printed, "\n")
	find := func(prefix string) string {
		t.Helper()
		for _, l := range printed {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("`spine up` printed no line starting with %q:\n%s", prefix, text)
		return ""
	}
	// run runs a printed command in the folder where `up` runs, with the
	// binary standing in for `go run ./cmd/spine`.
	run := func(line string) string {
		t.Helper()
		line = strings.ReplaceAll(line, "go run ./cmd/spine", bin)
		cmd := exec.CommandContext(ctx, "sh", "-c", line)
		cmd.Dir = dir
		cmd.Env = up.Env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("printed command %q: %v\n%s", line, err, out)
		}
		return string(out)
	}

	if !strings.Contains(text, "Spine is up. Every service you create is served over HTTPS on *.localhost.") {
		t.Errorf("no greeting naming the domain:\n%s", text)
	}
	// The dashboard's address, and a sign-in link that works once and
	// holds no token.
	dash := strings.TrimSpace(strings.TrimPrefix(find("Dashboard:"), "Dashboard:"))
	link := strings.TrimSpace(strings.TrimPrefix(find("Sign in (once, within 10 minutes):"), "Sign in (once, within 10 minutes):"))
	if !strings.HasPrefix(link, dash+"signin?code=") {
		t.Errorf("sign-in link %q is not under the dashboard %q", link, dash)
	}
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, want := range []int{http.StatusSeeOther, http.StatusUnauthorized} {
		resp, err := noRedirect.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("sign-in link, use %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	demo := find("curl --cacert .spine/ca/root.pem https://hello.localhost:")
	if out := run(demo + " --fail --silent --show-error"); !strings.Contains(out, "Hello from Spine") {
		t.Errorf("%s answered %q", demo, out)
	}

	// Create a service as printed, on an upstream of our own instead of :9000.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from my upstream\n") })}
	go srv.Serve(ln)
	defer srv.Close()
	create := find("go run ./cmd/spine service create api --upstream http://127.0.0.1:9000 --wait")
	out := run(strings.Replace(create, "http://127.0.0.1:9000", "http://"+ln.Addr().String(), 1))
	if !strings.Contains(out, "serving") {
		t.Errorf("create --wait printed:\n%s", out)
	}
	apiCurl := find("curl --cacert .spine/ca/root.pem https://api.localhost:")
	if out := run(apiCurl + " --fail --silent --show-error"); out != "from my upstream\n" {
		t.Errorf("%s answered %q", apiCurl, out)
	}
	list := strings.TrimSpace(strings.TrimPrefix(find("See what is served:"), "See what is served:"))
	if out := run(list); !strings.Contains(out, "api.localhost") || !strings.Contains(out, "hello.localhost") {
		t.Errorf("%s printed:\n%s", list, out)
	}
	certs := strings.TrimSpace(strings.TrimPrefix(find("Certificates:"), "Certificates:"))
	if out := run(certs); !strings.Contains(out, "api.localhost") {
		t.Errorf("%s printed:\n%s", certs, out)
	}
	if out := run("cat .spine/ca/root.pem"); !strings.HasPrefix(out, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("the printed root is not a certificate: %q", out)
	}
}
