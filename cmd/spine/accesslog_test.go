package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
)

// TestAccessLogFileRotation runs the `spine up` binary with --access-log
// FILE and --log-format json, sends a request to the demo service, rotates
// the file with logrotate (create mode, postrotate sending SIGUSR1, as the
// README shows), and sends another: each line is in its own file, both
// JSON with the request's ID, and no access line went to stderr.
func TestAccessLogFileRotation(t *testing.T) {
	lr, err := exec.LookPath("logrotate")
	if err != nil {
		lr, err = exec.LookPath("/usr/sbin/logrotate")
	}
	if err != nil {
		t.Fatal("logrotate is needed to rotate the access log as an operator would (apt-get install logrotate)")
	}
	bin := buildSpine(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	up := exec.CommandContext(ctx, bin, "up", "--log-format", "json", "--access-log", logPath,
		"--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--http3=false")
	up.Dir = dir
	up.Env = append(os.Environ(), "SPINE_TOKEN=", "SPINE_API=", "SPINE_DATA=", "SPINE_STORE=")
	up.Cancel = func() error { return up.Process.Signal(syscall.SIGTERM) }
	stderr, err := up.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan map[string]any, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				m = map[string]any{"msg": "not JSON: " + sc.Text()}
			}
			lines <- m
		}
	}()
	var seen []map[string]any
	// next returns the first stderr line with msg.
	next := func(msg string) map[string]any {
		t.Helper()
		for {
			select {
			case m, ok := <-lines:
				if !ok {
					t.Fatalf("spine up ended before logging %q: %v", msg, seen)
				}
				seen = append(seen, m)
				if m["msg"] == "access" {
					t.Errorf("an access line went to stderr: %v", m)
				}
				if m["msg"] == msg {
					return m
				}
			case <-ctx.Done():
				t.Fatalf("no %q line: %v", msg, seen)
			}
		}
	}
	defer func() {
		cancel()
		up.Wait()
	}()
	addr, _ := next("spine is serving")["https"].(string)

	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m&^0o640 != 0 || m&0o600 != 0o600 {
		t.Errorf("access log created with mode %v, want 0640 (less the umask)", m)
	}
	pem, err := os.ReadFile(filepath.Join(dir, ".spine", "ca", "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	get := func(id string) error {
		req, _ := http.NewRequest("GET", "https://hello.localhost/?token=s3cret", nil)
		req.Header.Set("X-Request-ID", id)
		req.Header.Set("Authorization", "Bearer s3cret-bearer")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Request-ID") != id {
			return fmt.Errorf("%d with X-Request-ID %q", resp.StatusCode, resp.Header.Get("X-Request-ID"))
		}
		return nil
	}
	// contains waits until file holds a line with id.
	contains := func(file, id string) {
		t.Helper()
		poll.Until(t, id+" in "+file, time.Minute, func() error {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
				if l == "" {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					return poll.Stop(fmt.Errorf("not a JSON line: %q", l))
				}
				if m["request_id"] == id {
					if m["msg"] != "access" || m["host"] != "hello.localhost" || m["service"] != "hello" || m["status"] != 200.0 || m["query"] != "token" {
						return poll.Stop(fmt.Errorf("line %v", m))
					}
					return nil
				}
			}
			return fmt.Errorf("not yet in %d bytes", len(b))
		})
	}

	poll.Until(t, "the demo service over HTTPS", time.Minute, func() error { return get("before-rotation") })
	contains(logPath, "before-rotation")

	conf := filepath.Join(dir, "logrotate.conf")
	rule := fmt.Sprintf("%s {\n  rotate 2\n  create 0640\n  missingok\n  nocompress\n  postrotate\n    kill -USR1 %d\n  endscript\n}\n", logPath, up.Process.Pid)
	if err := os.WriteFile(conf, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(lr, "--force", "--state", filepath.Join(dir, "logrotate.state"), conf).CombinedOutput(); err != nil {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	next("access log reopened")
	if err := get("after-rotation"); err != nil {
		t.Fatal(err)
	}
	contains(logPath, "after-rotation")
	contains(logPath+".1", "before-rotation")
	for file, absent := range map[string]string{logPath: "before-rotation", logPath + ".1": "after-rotation"} {
		b, _ := os.ReadFile(file)
		if strings.Contains(string(b), absent) {
			t.Errorf("%s holds %s", file, absent)
		}
		if strings.Contains(string(b), "s3cret") {
			t.Errorf("%s holds a secret of the request: %s", file, b)
		}
	}
	up.Process.Signal(syscall.SIGTERM)
	next("spine stopped")
}
