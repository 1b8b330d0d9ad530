package fleet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/secrets"
)

// spineBin is the spine binary TestMain builds, with the spinetest build
// tag: its --test-issue-delay flag (cmd/spine/testhooks_spinetest.go, which
// sets config.Config.BeforeIssue) lets a test hold the issuance lock long
// enough to kill its holder. Spine's own binary has no such flag.
var spineBin string

func TestMain(m *testing.M) {
	if os.Getenv("SPINE_TEST_POSTGRES") == "skip" {
		fmt.Println("SPINE_TEST_POSTGRES=skip: skipping the fleet tests")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "spine-fleet-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	spineBin = filepath.Join(dir, "spine")
	build := exec.Command("go", "build", "-tags", "spinetest", "-o", spineBin, "github.com/spine-platform/spine/cmd/spine")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building spine:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Domain is the domain every fleet serves; services are NAME.fleet.test.
const Domain = "fleet.test"

func basePostgres() string {
	if v := os.Getenv("SPINE_TEST_POSTGRES"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// freshSchema returns base with search_path set to a new schema, dropped
// when t ends (if the server is still up then).
func freshSchema(t testing.TB, base string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v (set SPINE_TEST_POSTGRES=skip to skip)", base, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "fleet_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, base); err == nil {
			c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}

// query runs a one-value query on dsn.
func query[T any](t testing.TB, dsn, sql string, args ...any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v T
	if err := conn.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// issuedFor counts the internal CA's issuance log entries (one per signed
// certificate) for hostname.
func issuedFor(t testing.TB, dsn, hostname string) int {
	return query[int](t, dsn, `SELECT count(*) FROM kv WHERE key LIKE 'spine/ca/issued/%' AND convert_from(value, 'UTF8')::jsonb->'names' ? $1::text`, hostname)
}

// node is one `spine serve` process.
type node struct {
	t       testing.TB
	name    string
	dataDir string
	dsn     string
	ip      string
	args    []string // added to every start's command line
	keyFile string   // --secret-key-file; "" at first: the store's shared one (keyFileFor)
	https   string   // host:port
	http    string
	api     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	log  bytes.Buffer // stderr and stdout of every run
	done chan struct{}
}

// fleet is a set of nodes over one store.
type fleet struct {
	t     testing.TB
	dsn   string
	nodes []*node
	root  *x509.CertPool
}

// newFleet starts n nodes on 127.0.0.2, 127.0.0.3, ... over dsn and waits
// until each is ready.
func newFleet(t testing.TB, dsn string, n int) *fleet {
	t.Helper()
	return newFleetArgs(t, dsn, n, nil)
}

// freePorts returns n distinct addresses on ip whose ports are free right now,
// held open together so that the kernel cannot hand out one port twice.
func freePorts(t testing.TB, ip string, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// start runs the node's process (again, after a stop or kill).
func (nd *node) start() {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	// JSON at Debug: the tests read certmagic's per-hostname steps (lock
	// acquired, obtaining certificate), with each value quoted.
	if nd.keyFile == "" {
		nd.keyFile = keyFileFor(nd.t, nd.dsn)
	}
	args := append([]string{"serve", "--data", nd.dataDir, "--store", nd.dsn, "--secret-key-file", nd.keyFile,
		"--https-addr", nd.https, "--http-addr", nd.http, "--api-addr", nd.api, "--domain", Domain,
		"--log-format", "json", "--log-level", "debug"}, nd.args...)
	cmd := exec.Command(spineBin, args...)
	fmt.Fprintf(&nd.log, "=== %s start\n", nd.name)
	cmd.Stdout, cmd.Stderr = &lockedWriter{mu: &nd.mu, w: &nd.log}, &lockedWriter{mu: &nd.mu, w: &nd.log}
	if err := cmd.Start(); err != nil {
		nd.t.Fatalf("starting %s: %v", nd.name, err)
	}
	nd.cmd, nd.done = cmd, make(chan struct{})
	done := nd.done
	go func() { cmd.Wait(); close(done) }()
	nd.t.Cleanup(func() { nd.stop() })
}

// keyFiles are the secret key files of the tests' stores, by DSN: every
// node of a fleet reads the same one, as in production.
var keyFiles sync.Map

// keyFileFor returns the secret key file the nodes over dsn share, made
// (0600) at its first use.
func keyFileFor(t testing.TB, dsn string) string {
	if v, ok := keyFiles.Load(dsn); ok {
		return v.(string)
	}
	path := filepath.Join(t.TempDir(), "secret.key")
	content, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := secrets.CreateFile(path, content); err != nil {
		t.Fatal(err)
	}
	v, _ := keyFiles.LoadOrStore(dsn, path)
	return v.(string)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// logs returns what the node's processes wrote so far.
func (nd *node) logs() string {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.log.String()
}

// stop ends the process with SIGTERM (SIGKILL after 10 s) and waits for it.
func (nd *node) stop() {
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	if nd.t.Failed() {
		nd.t.Logf("--- log of %s (last 6000 bytes):\n%s", nd.name, tail(nd.logs(), 6000))
	}
}

// kill ends the process with SIGKILL, as a crash would.
func (nd *node) kill() {
	nd.mu.Lock()
	cmd, done := nd.cmd, nd.done
	nd.mu.Unlock()
	cmd.Process.Kill()
	<-done
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitReady waits until the API answers /healthz and the first snapshot is
// served (the edge answers on HTTPS), whatever the store's state.
func (nd *node) waitReady() {
	nd.t.Helper()
	poll.Until(nd.t, nd.name+" starts", 2*time.Minute, func() error {
		select {
		case <-nd.done:
			return poll.Stop(fmt.Errorf("%s exited:\n%s", nd.name, tail(nd.logs(), 4000)))
		default:
		}
		resp, err := http.Get("http://" + nd.api + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		c, err := net.DialTimeout("tcp", nd.https, time.Second)
		if err != nil {
			return err
		}
		c.Close()
		return nil
	})
}

// client returns an API client with the node's admin token.
func (nd *node) client() *client.Client {
	nd.t.Helper()
	tok, err := os.ReadFile(filepath.Join(nd.dataDir, "admin.token"))
	if err != nil {
		nd.t.Fatal(err)
	}
	return client.New("http://"+nd.api, strings.TrimSpace(string(tok)))
}

func (nd *node) caPool() *x509.CertPool {
	nd.t.Helper()
	pool := x509.NewCertPool()
	poll.Until(nd.t, "CA root", time.Minute, func() error {
		pem, err := client.New("http://"+nd.api, "").CARoot(context.Background())
		if err != nil {
			return err
		}
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("no certificate in the CA root")
		}
		return nil
	})
	return pool
}

// get makes an HTTPS request for host to the node over a new connection,
// verifying the certificate against root, and returns the status and body.
func (nd *node) get(root *x509.CertPool, host string) (int, string, error) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: root, ServerName: host},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, nd.https)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get("https://" + host + "/")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// serves reports nil if the node answers host over HTTPS with want in the body.
func (nd *node) serves(root *x509.CertPool, host, want string) error {
	code, body, err := nd.get(root, host)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", nd.name, host, err)
	}
	if code != 200 || !strings.Contains(body, want) {
		return fmt.Errorf("%s: %s: status %d, body %q", nd.name, host, code, body)
	}
	return nil
}

// upstream starts an HTTP server that answers every request with name.
func upstream(t testing.TB, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// waitLog waits until some node's log holds text and returns that node.
func (f *fleet) waitLog(text string, timeout time.Duration) *node {
	f.t.Helper()
	var found *node
	poll.Until(f.t, "log line "+text, timeout, func() error {
		for _, nd := range f.nodes {
			if strings.Contains(nd.logs(), text) {
				found = nd
				return nil
			}
		}
		return errors.New("not logged yet")
	})
	return found
}

// scanLines calls f on each line of s.
func scanLines(s string, f func(string)) {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f(sc.Text())
	}
}

// newFleetArgs is newFleet with args added to every node's command line.
func newFleetArgs(t testing.TB, dsn string, n int, args []string) *fleet {
	t.Helper()
	f := &fleet{t: t, dsn: dsn}
	for i := range n {
		nd := &node{t: t, name: fmt.Sprintf("node%d", i+1), dataDir: t.TempDir(), dsn: dsn, ip: fmt.Sprintf("127.0.0.%d", i+2), args: args}
		ports := freePorts(t, nd.ip, 3)
		nd.https, nd.http, nd.api = ports[0], ports[1], ports[2]
		f.nodes = append(f.nodes, nd)
	}
	for _, nd := range f.nodes {
		nd.start()
	}
	for _, nd := range f.nodes {
		nd.waitReady()
	}
	f.root = f.nodes[0].caPool()
	return f
}

// leaf returns the certificate nd serves for host, verified against root.
func (nd *node) leaf(root *x509.CertPool, host string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", nd.https, &tls.Config{ServerName: host, RootCAs: root})
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", nd.name, host, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// logsSince returns what the node's processes wrote after the first mark
// bytes of its log (a length that logs returned earlier).
func (nd *node) logsSince(mark int) string {
	return nd.logs()[mark:]
}

// logLines returns the lines of s that contain every one of parts.
func logLines(s string, parts ...string) []string {
	var out []string
	scanLines(s, func(line string) {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				return
			}
		}
		out = append(out, line)
	})
	return out
}
