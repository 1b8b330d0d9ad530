package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildSpine builds the spine binary into a temporary folder.
func buildSpine(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "spine")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestUpLogsJSON runs the `spine up` binary with --log-format json and
// --log-level debug, until the demo service's certificate is issued, then
// stops it. Every line it wrote to stderr, certmagic's included, is one
// JSON object with time, level and msg; certmagic's lines name their
// logger, its per-hostname steps are at DEBUG and the issuance at INFO.
func TestUpLogsJSON(t *testing.T) {
	bin := buildSpine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	up := exec.CommandContext(ctx, bin, "up", "--log-format", "json", "--log-level", "debug",
		"--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0")
	up.Dir = t.TempDir()
	up.Env = append(os.Environ(), "SPINE_TOKEN=", "SPINE_API=", "SPINE_DATA=", "SPINE_STORE=")
	stderr, err := up.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}

	// Read every line until the process closes stderr; stop it once the
	// certificate is issued. A node that never issues is killed by ctx.
	var raw []string
	var lines []map[string]any
	stopping := false
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		raw = append(raw, sc.Text())
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Errorf("stderr line is not a JSON object: %q", sc.Text())
			continue
		}
		lines = append(lines, m)
		if !stopping && m["msg"] == "certificate obtained successfully" && m["identifier"] == "hello.localhost" {
			stopping = true
			up.Process.Signal(syscall.SIGTERM)
		}
	}
	if err := up.Wait(); err != nil {
		t.Errorf("spine up: %v", err)
	}
	if t.Failed() || !stopping {
		t.Fatalf("stderr of spine up (certificate issued: %v):\n%s", stopping, strings.Join(raw, "\n"))
	}

	has := func(msg, logger, level string) bool {
		return slices.ContainsFunc(lines, func(m map[string]any) bool {
			name, _ := m["logger"].(string)
			return m["msg"] == msg && name == logger && m["level"] == level
		})
	}
	for i, m := range lines {
		ts, _ := m["time"].(string)
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("line %d: time %q: %v", i, m["time"], err)
		}
		if !slices.Contains([]any{"DEBUG", "INFO", "WARN", "ERROR"}, m["level"]) {
			t.Errorf("line %d: level %v", i, m["level"])
		}
		if msg, _ := m["msg"].(string); msg == "" {
			t.Errorf("line %d: no msg: %v", i, m)
		}
	}
	for _, want := range []struct{ msg, logger, level string }{
		{"spine is serving", "", "INFO"},
		{"managing certificate", "", "DEBUG"}, // Spine's own per-hostname line
		{"lock acquired", "certmagic.obtain", "DEBUG"},
		{"obtaining certificate", "certmagic.obtain", "DEBUG"},
		{"certificate obtained successfully", "certmagic.obtain", "INFO"},
		{"spine stopped", "", "INFO"},
	} {
		if !has(want.msg, want.logger, want.level) {
			t.Errorf("no %s line %q (logger %q)", want.level, want.msg, want.logger)
		}
	}
	if t.Failed() {
		t.Logf("stderr of spine up:\n%s", strings.Join(raw, "\n"))
	}
}
