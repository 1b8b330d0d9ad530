package security

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildSpine builds the spine binary into a temporary folder.
func buildSpine(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "spine")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/spine")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building spine: %v\n%s", err, out)
	}
	return bin
}

// spineUp is `spine up` running as a child process.
type spineUp struct {
	bin, data    string
	api, https   string
	stdout, logs *syncBuffer
	cmd          *exec.Cmd
}

func startSpineUp(t *testing.T, bin string) *spineUp {
	t.Helper()
	u := &spineUp{bin: bin, data: filepath.Join(t.TempDir(), "data"), stdout: &syncBuffer{}, logs: &syncBuffer{}}
	u.cmd = exec.Command(bin, "up", "--data", u.data, "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0")
	u.cmd.Stdout, u.cmd.Stderr = u.stdout, u.logs
	u.cmd.Env = append(os.Environ(), "SPINE_TOKEN=", "SPINE_API=", "SPINE_DATA=")
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.stop() })
	re := regexp.MustCompile(`spine is serving"? https=(\S+) http=\S+ api=(\S+)`)
	deadline := time.Now().Add(time.Minute)
	for {
		if m := re.FindStringSubmatch(u.logs.String()); m != nil {
			u.https, u.api = m[1], "http://"+m[2]
			break
		}
		if time.Now().After(deadline) || u.cmd.ProcessState != nil {
			t.Fatalf("spine up did not start:\n%s", u.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return u
}

func (u *spineUp) stop() {
	if u.cmd.Process == nil || u.cmd.ProcessState != nil {
		return
	}
	u.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { u.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		u.cmd.Process.Kill()
		<-done
	}
}

// cli runs one CLI command against u and returns its stdout and stderr.
func (u *spineUp) cli(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, u.bin, append(args, "--data", u.data, "--api", u.api)...)
	cmd.Env = append(append(os.Environ(), "SPINE_TOKEN=", "SPINE_API=", "SPINE_DATA="), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// TestSecretHygiene runs the real binary (`spine up`), drives every CLI
// command and every API route, and scans everything a user or an operator
// sees (logs, command output, API answers, error messages) for private keys
// and token values. Then it checks the modes of the data folder's files.
func TestSecretHygiene(t *testing.T) {
	t.Parallel()
	bin := buildSpine(t)
	u := startSpineUp(t, bin)
	tokB, err := os.ReadFile(filepath.Join(u.data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(tokB))
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })

	type output struct{ what, text string }
	var seen []output
	add := func(what, text string) { seen = append(seen, output{what, text}) }
	run := func(env []string, args ...string) string {
		o, e, err := u.cli(t, env, args...)
		add("spine "+strings.Join(args, " ")+" (stdout)", o)
		add("spine "+strings.Join(args, " ")+" (stderr)", e)
		t.Logf("spine %s: err=%v\n%s%s", strings.Join(args, " "), err, o, e)
		return o
	}

	// Every CLI command, in success and in failure.
	wrongToken := "spine_" + strings.Repeat("Z", 43)
	commands := [][]string{
		{"version"}, {"ca", "root"},
		{"domain", "list"}, {"domain", "list", "-o", "json"},
		{"domain", "add", "hygiene.test"}, {"domain", "add", "hygiene.test"}, {"domain", "verify", "hygiene.test"},
		{"domain", "remove", "hygiene.test"}, {"domain", "remove", "nothere.test"}, {"domain", "add", "bad..name"},
		{"service", "create", "web", "--upstream", up}, {"service", "create", "web", "--upstream", up},
		{"service", "create", "bad", "--upstream", "ftp://x"}, {"service", "create", "loop", "--upstream", "https://" + u.https},
		{"service", "create", "web2", "--upstream", up, "--wait", "--timeout", "20s"},
		{"service", "list"}, {"service", "list", "-o", "json"}, {"service", "show", "web"}, {"service", "show", "web", "-o", "json"},
		{"service", "show", "nothere"}, {"service", "delete", "web"}, {"service", "delete", "web"},
		{"cert", "list"}, {"cert", "list", "-o", "json"}, {"nodes"}, {"nodes", "-o", "json"},
		{"service", "list", "-o", "yaml"}, {"no-such-command"},
	}
	for _, c := range commands {
		run(nil, c...)
	}
	// A wrong token must not be echoed back.
	run([]string{"SPINE_TOKEN=" + wrongToken}, "service", "list")
	// The operator command prints the new project's token once, on stdout
	// (by design); its stderr and everything else must not show it.
	o, e, err := u.cli(t, nil, "project", "create", "hygiene-tenant")
	if err != nil {
		t.Fatalf("project create: %v %s", err, e)
	}
	add("spine project create (stderr)", e)
	newToken := strings.TrimSpace(o)
	if !strings.HasPrefix(newToken, "spine_") {
		t.Fatalf("project create printed %q", o)
	}
	run([]string{"SPINE_TOKEN=" + newToken}, "service", "list")
	run([]string{"SPINE_TOKEN=" + newToken}, "service", "show", "web2")

	// Every API route, with the admin token, with a wrong one and with none.
	for _, r := range apiRoutes(t) {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			method, path = "GET", "/v1/no-such-route"
		}
		path = strings.NewReplacer("{name}", "localhost").Replace(path)
		body := ""
		if method == "POST" {
			body = `{"name":"hygiene2.test"}`
			if strings.Contains(path, "services") {
				body = `{"name":"api-x","upstreams":["` + up + `"]}`
			}
		}
		for _, tok := range []string{admin, wrongToken, ""} {
			code, out := apiCall(t, u.api, tok, method, path, body)
			add(fmt.Sprintf("API %s %s (%d)", method, path, code), out)
		}
	}
	// Modes while running (SQLite's -wal and -shm files exist now) and
	// after a clean stop.
	running := dataModes(t, u.data)
	u.stop()
	stopped := dataModes(t, u.data)
	add("spine up (stdout)", u.stdout.String())
	add("spine up (logs)", u.logs.String())

	secrets := map[string]string{"the admin token": admin, "a wrong token": wrongToken, "a new project's token": newToken}
	for _, out := range seen {
		if strings.Contains(out.text, "PRIVATE KEY") {
			t.Errorf("%s shows a private key", out.what)
		}
		for name, v := range secrets {
			if strings.Contains(out.text, v) {
				t.Errorf("%s shows %s", out.what, name)
			}
		}
	}

	reportf(t, "scanned %d outputs (CLI stdout/stderr of %d commands, every API route with three tokens, spine up's logs): no private key, no token; data folder while running: %s; after stop: %s",
		len(seen), len(commands)+4, running, stopped)
}

// dataModes checks the modes of the data folder (0700) and of every file
// that holds a secret (0600), and returns them all for the report.
func dataModes(t *testing.T, data string) string {
	t.Helper()
	var modes []string
	filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		rel, _ := filepath.Rel(data, path)
		modes = append(modes, fmt.Sprintf("%s %v", rel, fi.Mode().Perm()))
		content, _ := os.ReadFile(path)
		secret := rel == "admin.token" || strings.HasPrefix(filepath.Base(path), "spine.db") || bytes.Contains(content, []byte("PRIVATE KEY"))
		switch {
		case path == data && fi.Mode().Perm() != 0o700:
			t.Errorf("data folder mode %v, want 0700", fi.Mode().Perm())
		case d.IsDir() && fi.Mode().Perm()&0o077 != 0 && path != data:
			t.Errorf("folder %s mode %v: others can enter it", rel, fi.Mode().Perm())
		case !d.IsDir() && secret && fi.Mode().Perm() != 0o600:
			t.Errorf("%s holds secrets and has mode %v, want 0600", rel, fi.Mode().Perm())
		}
		return nil
	})
	return strings.Join(modes, ", ")
}
