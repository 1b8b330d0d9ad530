package security

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/poll"
)

// spine is a node running in-process for one test.
type spine struct {
	n     *node.Node
	dir   string
	token string // the default project's admin token
	admin *client.Client
	roots *x509.CertPool
	logs  *syncBuffer // everything the node logged, at Debug level
}

// startSpine starts a node on 127.0.0.1 ports with the domain "localhost",
// no demo service, and the given edge limits.
func startSpine(t testing.TB, limits edge.Config) *spine {
	t.Helper()
	return startSpineWith(t, func(c *config.Config) { c.Edge = limits })
}

// startSpineWith is startSpine with a configuration that mod may change.
func startSpineWith(t testing.TB, mod func(*config.Config)) *spine {
	t.Helper()
	s := &spine{dir: t.TempDir(), logs: &syncBuffer{}}
	cfg := config.Config{
		DataDir:  s.dir,
		Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		APIAddr:  "127.0.0.1:0",
		Domain:   "localhost",
		Version:  "security-test",
		Logger:   slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	if cfg.Edge.HealthInterval == 0 {
		cfg.Edge.HealthInterval = time.Hour // health probes would only add noise to recordings
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	s.n = n
	tok, err := os.ReadFile(filepath.Join(s.dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(tok))
	s.admin = client.New("http://"+n.APIAddr(), s.token)
	s.roots = x509.NewCertPool()
	s.roots.AddCert(n.CA().Root())
	return s
}

// addService creates a service and waits until it answers over HTTPS.
func (s *spine) addService(t testing.TB, c *client.Client, in client.ServiceCreate) client.Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := c.CreateService(ctx, in)
	if err != nil {
		t.Fatalf("creating service %s: %v", in.Name, err)
	}
	for _, h := range svc.Hostnames {
		s.waitServing(t, h)
	}
	return svc
}

// waitServing waits until host completes a verified TLS handshake.
func (s *spine) waitServing(t testing.TB, host string) {
	t.Helper()
	poll.Until(t, host+" served over HTTPS", 2*time.Minute, func() error {
		c, err := s.dialTLS(host, "http/1.1")
		if err == nil {
			c.Close()
		}
		return err
	})
}

// dialTLS opens a verified TLS connection to the edge with SNI host.
func (s *spine) dialTLS(host string, protos ...string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return tls.DialWithDialer(d, "tcp", s.n.HTTPSAddr(), s.tlsConfig(host, protos...))
}

func (s *spine) tlsConfig(host string, protos ...string) *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: host, NextProtos: protos}
}

// httpClient returns a client that sends every request to the edge and
// verifies its certificates against Spine's root. h2 chooses HTTP/2.
func (s *spine) httpClient(h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, s.n.HTTPSAddr())
		},
		ForceAttemptHTTP2:   h2,
		MaxIdleConnsPerHost: 4,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// recorder is a raw HTTP/1.1 upstream that records every request it reads,
// complete or not, and answers each complete one with its name and number.
type recorder struct {
	name string
	addr string

	mu   sync.Mutex
	reqs []recorded
}

// recorded is one request as the upstream saw it.
type recorded struct {
	Method, Target, Host string
	Header               http.Header
	Body                 string
	Chunked              bool
	Complete             bool   // headers and body read without error
	Err                  string // why it was not complete
}

func (r recorded) String() string {
	s := fmt.Sprintf("%s %s host=%s complete=%v", r.Method, r.Target, r.Host, r.Complete)
	if r.Body != "" {
		s += fmt.Sprintf(" body=%q", r.Body)
	}
	if r.Err != "" {
		s += " err=" + r.Err
	}
	return s
}

func startRecorder(t testing.TB, name string) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{name: name, addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			wg.Go(func() {
				defer conns.Delete(c)
				defer c.Close()
				rec.serve(c)
			})
		}
	})
	return rec
}

func (rec *recorder) url() string { return "http://" + rec.addr }

func (rec *recorder) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			if err != io.EOF && !isClosed(err) {
				rec.add(recorded{Err: "unreadable request: " + err.Error()})
			}
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		r := recorded{
			Method: req.Method, Target: req.RequestURI, Host: req.Host,
			Header: req.Header, Body: string(body),
			Chunked: len(req.TransferEncoding) > 0, Complete: err == nil,
		}
		if err != nil {
			r.Err = err.Error()
		}
		n := rec.add(r)
		if err != nil {
			return
		}
		msg := fmt.Sprintf("%s request %d", rec.name, n)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
	}
}

func isClosed(err error) bool {
	return strings.Contains(err.Error(), "use of closed") || strings.Contains(err.Error(), "reset by peer") || strings.Contains(err.Error(), "i/o timeout")
}

func (rec *recorder) add(r recorded) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if r.Header.Get("User-Agent") == "spine-edge-health/1" {
		return 0 // active health checks are not part of what a test sent
	}
	rec.reqs = append(rec.reqs, r)
	return len(rec.reqs)
}

// mark returns a position; since returns what was recorded after it.
func (rec *recorder) mark() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

func (rec *recorder) since(m int) []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs[m:]...)
}

// artefactDir is the folder the suite writes its artefacts to:
// $SPINE_ARTIFACTS/security, or $TMPDIR/spine-security.
func artefactDir() string {
	if base := os.Getenv("SPINE_ARTIFACTS"); base != "" {
		return filepath.Join(base, "security")
	}
	return filepath.Join(os.TempDir(), "spine-security")
}

// artefacts creates the artefact folder and returns it.
func artefacts(t testing.TB) string {
	t.Helper()
	dir := artefactDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// report collects the figures every check wants a reader to see; TestMain
// writes them to report.md in the artefact folder.
var report = struct {
	mu    sync.Mutex
	lines map[string][]string
}{lines: map[string][]string{}}

// reportf adds a line to the report under the test's name and logs it.
func reportf(t testing.TB, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	report.mu.Lock()
	defer report.mu.Unlock()
	section := strings.SplitN(t.Name(), "/", 2)[0]
	report.lines[section] = append(report.lines[section], line)
}

// spineBuild is the spine binary, built once for all the package's tests.
var spineBuild struct {
	once     sync.Once
	dir, bin string
	err      error
}

// spineBinary builds cmd/spine (once) and returns the binary's path.
func spineBinary(t testing.TB) string {
	t.Helper()
	spineBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "spine-security-bin-")
		if err != nil {
			spineBuild.err = err
			return
		}
		spineBuild.dir = dir
		bin := filepath.Join(dir, "spine")
		if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/spine").CombinedOutput(); err != nil {
			spineBuild.err = fmt.Errorf("building spine: %v\n%s", err, out)
			return
		}
		spineBuild.bin = bin
	})
	if spineBuild.err != nil {
		t.Fatal(spineBuild.err)
	}
	return spineBuild.bin
}

// proc is a spine server (`spine up` or `spine serve`) running as a child
// process, with what it printed.
type proc struct {
	bin, data        string
	api, https, http string
	stdout, logs     *syncBuffer
	cmd              *exec.Cmd
	done             chan struct{}
	stopOnce         sync.Once
}

// servingLine finds the addresses in the line that says a server serves,
// in --log-format text or json.
var servingLine = regexp.MustCompile(`spine is serving"?,? ?"?https"?[=:]"?([^\s",]+)"?,? ?"?http"?[=:]"?([^\s",]+)"?,? ?"?api"?[=:]"?([^\s",]+)`)

// launch starts `spine ARGS --data data` and waits until it serves; it
// returns the process's output in the error if it exits first.
func launch(t testing.TB, bin, data string, env []string, args ...string) (*proc, error) {
	t.Helper()
	p := &proc{bin: bin, data: data, stdout: &syncBuffer{}, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append(args, "--data", data)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.logs
	p.cmd.Env = append(append(os.Environ(), "SPINE_TOKEN=", "SPINE_API=", "SPINE_DATA=", "SPINE_STORE=", "SPINE_ACME_EAB_HMAC="), env...)
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	deadline := time.After(time.Minute)
	for {
		if m := servingLine.FindStringSubmatch(p.logs.String()); m != nil {
			p.https, p.http, p.api = m[1], m[2], "http://"+m[3]
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("spine %s exited before serving (%v):\n%s%s", strings.Join(args, " "), p.cmd.ProcessState, p.stdout.String(), p.logs.String())
		case <-deadline:
			p.stop()
			return nil, fmt.Errorf("spine %s did not serve within a minute:\n%s", strings.Join(args, " "), p.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startProc is launch that fails the test on error.
func startProc(t testing.TB, bin, data string, env []string, args ...string) *proc {
	t.Helper()
	p, err := launch(t, bin, data, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stop sends SIGINT and waits for a clean exit (SIGKILL after 15 s).
func (p *proc) stop() {
	p.stopOnce.Do(func() {
		p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// cli runs one CLI command against p and returns its stdout and stderr.
func (p *proc) cli(t testing.TB, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, append(args, "--data", p.data, "--api", p.api)...)
	cmd.Env = append(append(os.Environ(), "SPINE_TOKEN=", "SPINE_API=", "SPINE_DATA=", "SPINE_STORE=", "SPINE_ACME_EAB_HMAC="), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// token is the admin token p wrote to its data folder.
func (p *proc) token(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// admin is an API client of p with its admin token.
func (p *proc) admin(t testing.TB) *client.Client { return client.New(p.api, p.token(t)) }

// state is what c's project stores (its domains, services and tokens) and
// the projects (c must be an operator's), to compare before and after
// refused input; a listing error fails the test.
func state(t testing.TB, c *client.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ds, err := c.Domains(ctx)
	if err != nil {
		t.Fatalf("listing domains: %v", err)
	}
	ss, err := c.Services(ctx)
	if err != nil {
		t.Fatalf("listing services: %v", err)
	}
	ws, err := c.Webhooks(ctx)
	if err != nil {
		t.Fatalf("listing webhooks: %v", err)
	}
	ts, err := c.Tokens(ctx)
	if err != nil {
		t.Fatalf("listing tokens: %v", err)
	}
	for i := range ts {
		ts[i].LastUsedAt = nil // moves as the tokens are used
	}
	ps, err := c.Projects(ctx)
	if err != nil {
		t.Fatalf("listing projects: %v", err)
	}
	cs, err := c.Certificates(ctx)
	if err != nil {
		t.Fatalf("listing certificates: %v", err)
	}
	var uploaded []client.Certificate // the managed ones move on their own
	for _, cert := range cs {
		if cert.Status == "uploaded" {
			uploaded = append(uploaded, cert)
		}
	}
	b, err := json.Marshal([]any{ds, ss, ws, ts, ps, uploaded})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dataLeft lists what is in a data folder, or "" if it does not exist.
func dataLeft(t testing.TB, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(dir, path); rel != "." {
			out = append(out, rel)
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

func TestMain(m *testing.M) {
	// Pebble validates without its random sleep. Set here, for the whole
	// process, because pebbletest.Start would otherwise call t.Setenv,
	// which parallel tests may not.
	if _, ok := os.LookupEnv("PEBBLE_VA_NOSLEEP"); !ok {
		os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	}
	code := m.Run()
	if spineBuild.dir != "" {
		os.RemoveAll(spineBuild.dir)
	}
	report.mu.Lock()
	if len(report.lines) > 0 {
		var b strings.Builder
		b.WriteString("# Spine security suite: figures of the last run\n\n")
		b.WriteString("Written by internal/security at " + time.Now().UTC().Format(time.RFC3339) + ".\n")
		sections := make([]string, 0, len(report.lines))
		for s := range report.lines {
			sections = append(sections, s)
		}
		sort.Strings(sections)
		for _, s := range sections {
			b.WriteString("\n## " + s + "\n\n")
			for _, l := range report.lines[s] {
				b.WriteString("- " + l + "\n")
			}
		}
		dir := artefactDir()
		if os.MkdirAll(dir, 0o755) == nil {
			path := filepath.Join(dir, "report.md")
			if os.WriteFile(path, []byte(b.String()), 0o644) == nil {
				fmt.Fprintf(os.Stderr, "security: report written to %s\n", path)
			}
		}
	}
	report.mu.Unlock()
	os.Exit(code)
}
