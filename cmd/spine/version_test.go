package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
)

// TestVersionReportsBuild builds spine from a git repository of its own
// (a copy of this work tree, committed) and checks that `spine version`
// and the API's /v1/version of that binary report the commit it was built
// from, whether the tree was modified, and the build settings.
func TestVersionReportsBuild(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("finding the repository: %v", err)
	}
	files, err := exec.Command("git", "-C", strings.TrimSpace(string(top)), "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	for _, f := range strings.Split(strings.TrimSpace(string(files)), "\n") {
		b, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(top)), f))
		if os.IsNotExist(err) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"-C", src, "-c", "user.name=t", "-c", "user.email=t@t.test", "-c", "commit.gpgsign=false"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "version test")
	head := git("rev-parse", "HEAD")

	bin := filepath.Join(t.TempDir(), "spine")
	build := func() {
		t.Helper()
		// Without -trimpath or tags, the dependencies come from the build
		// cache that the other tests' builds filled.
		cmd := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, "./cmd/spine")
		cmd.Dir = src
		// The machine's go env may turn VCS stamping off; this build needs it.
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	version := func(api string) versionOutput {
		t.Helper()
		out, err := exec.Command(bin, "version", "-o", "json", "--api", api).Output()
		if err != nil {
			t.Fatalf("spine version: %v", err)
		}
		var v versionOutput
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("spine version -o json: %v\n%s", err, out)
		}
		return v
	}

	build()
	v := version("http://127.0.0.1:1")
	c := v.Client
	if c.Commit != head || c.Modified || c.CommitTime == nil || c.GoVersion != runtime.Version() ||
		c.OS != runtime.GOOS || c.Arch != runtime.GOARCH || c.Settings["vcs"] != "git" || c.Settings["CGO_ENABLED"] == "" ||
		c.Version != "v9.9.9-test" {
		t.Errorf("version of a clean build at %s: %+v", head, c)
	}
	if _, ok := c.Settings["-ldflags"]; ok {
		t.Errorf("-ldflags reported: %v", c.Settings)
	}
	if v.Server != nil || !strings.Contains(v.ServerError, "not answering") {
		t.Errorf("with no server: %+v", v)
	}

	// The same binary, serving: /v1/version tells the same build.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	up := exec.CommandContext(ctx, bin, "up", "--data", filepath.Join(t.TempDir(), "data"),
		"--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", apiAddr)
	up.Cancel = func() error { return up.Process.Signal(syscall.SIGTERM) }
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); up.Wait() }()
	poll.Until(t, "the server's version", 2*time.Minute, func() error {
		if v = version("http://" + apiAddr); v.Server == nil {
			return fmt.Errorf("the server did not answer: %s", v.ServerError)
		}
		return nil
	})
	s := *v.Server
	if s.Commit != head || s.Store != "sqlite" || s.Modified || s.GoVersion != c.GoVersion || s.Version != "v9.9.9-test" ||
		s.Settings["CGO_ENABLED"] != c.Settings["CGO_ENABLED"] {
		t.Errorf("/v1/version: %+v, want commit %s on sqlite", s, head)
	}
	text, err := exec.Command(bin, "version", "--api", "http://"+apiAddr).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(text), head) != 2 || !strings.Contains(string(text), "CGO_ENABLED=") || !strings.Contains(string(text), "spine v9.9.9-test") {
		t.Errorf("spine version printed:\n%s", text)
	}

	// A build from a modified tree says so.
	if err := os.WriteFile(filepath.Join(src, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build()
	if c := version("http://127.0.0.1:1").Client; c.Commit != head || !c.Modified {
		t.Errorf("version of a build from a modified tree: %+v", c)
	}
}
