package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// server is one server under test.
type server struct {
	name string
	// static reports whether the server has a static answer at "/"; Spine
	// only proxies.
	static bool
	// check says why the server cannot run here, or nil.
	check func(r *runner) error
	// start starts a fresh instance and returns once it answers HTTPS.
	start func(r *runner, tag string) (*instance, error)
}

// instance is a running server under test.
type instance struct {
	p          *proc
	addr       string // HTTPS address, host:port
	sni        string // name sent in the handshake and in Host
	ca         string // root CA (PEM) its certificate chains to
	staticPath string // "" when the server has no static answer
	proxyPath  string
	newHostMs  float64 // Spine: time to HTTPS for the new service, ms
}

func (in *instance) stop() { in.p.stop() }

func servers() []server {
	return []server{
		{name: "spine", static: false, check: checkSpine, start: startSpine},
		{name: "nginx", static: true, check: checkBin("nginx"), start: startNginx},
		{name: "haproxy", static: true, check: checkBin("haproxy"), start: startHAProxy},
		{name: "caddy", static: true, check: checkBin("caddy"), start: startCaddy},
		{name: "go", static: true, check: func(*runner) error { return nil }, start: startBaseline},
	}
}

func checkBin(name string) func(*runner) error {
	return func(*runner) error {
		if _, err := exec.LookPath(name); err != nil {
			return fmt.Errorf("%s is not installed (run bench/install.sh)", name)
		}
		return nil
	}
}

func checkSpine(r *runner) error {
	if r.spineBin == "" {
		return errors.New(r.spineSkip)
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// render fills the template conf/NAME with data and writes it to the work folder.
func (r *runner) render(name, tag string, data map[string]any) (string, error) {
	tmpl, err := template.ParseFiles(filepath.Join(r.confDir, name))
	if err != nil {
		return "", err
	}
	out := filepath.Join(r.work, tag+"-"+name)
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return out, tmpl.Execute(f, data)
}

func (r *runner) baseData(port int) map[string]any {
	return map[string]any{
		"Work":     r.work,
		"Addr":     fmt.Sprintf("127.0.0.1:%d", port),
		"Host":     "127.0.0.1",
		"Port":     port,
		"Cert":     filepath.Join(r.pki, "cert.pem"),
		"Key":      filepath.Join(r.pki, "key.pem"),
		"Bundle":   filepath.Join(r.pki, "bundle.pem"),
		"Body":     filepath.Join(r.work, "body.txt"),
		"Upstream": r.upstream,
		"MaxConn":  min(60000, (r.fdLimit-100)/2),
	}
}

// ready waits until addr completes a TLS handshake for sni.
func ready(p *proc, addr, sni string, max time.Duration) error {
	deadline := time.Now().Add(max)
	var err error
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s exited before serving: %v", p.name, p.err)
		}
		var c *tls.Conn
		d := &net.Dialer{Timeout: time.Second}
		c, err = tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer TLS on %s within %s: %v", p.name, addr, max, err)
}

func (r *runner) instance(p *proc, port int, sni string, static bool) (*instance, error) {
	in := &instance{p: p, addr: fmt.Sprintf("127.0.0.1:%d", port), sni: sni, ca: filepath.Join(r.pki, "ca.pem"), proxyPath: "/proxy"}
	if static {
		in.staticPath = "/"
	}
	if err := ready(p, in.addr, sni, 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return in, nil
}

func startNginx(r *runner, tag string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"nginx-body", "nginx-proxy"} {
		os.MkdirAll(filepath.Join(r.work, d), 0o755)
	}
	conf, err := r.render("nginx.conf", tag, r.baseData(port))
	if err != nil {
		return nil, err
	}
	p, err := start("nginx", r.serverCore, nil, filepath.Join(r.work, tag+"-nginx.log"),
		"nginx", "-p", r.work, "-c", conf, "-e", filepath.Join(r.work, "nginx-error.log"))
	if err != nil {
		return nil, err
	}
	return r.instance(p, port, "bench.test", true)
}

func startHAProxy(r *runner, tag string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf, err := r.render("haproxy.cfg", tag, r.baseData(port))
	if err != nil {
		return nil, err
	}
	p, err := start("haproxy", r.serverCore, nil, filepath.Join(r.work, tag+"-haproxy.log"),
		"haproxy", "-db", "-f", conf)
	if err != nil {
		return nil, err
	}
	return r.instance(p, port, "bench.test", true)
}

func startCaddy(r *runner, tag string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf, err := r.render("Caddyfile", tag, r.baseData(port))
	if err != nil {
		return nil, err
	}
	home := filepath.Join(r.work, "caddy-home")
	os.MkdirAll(home, 0o700)
	env := []string{"GOMAXPROCS=1", "HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home}
	p, err := start("caddy", r.serverCore, env, filepath.Join(r.work, tag+"-caddy.log"),
		"caddy", "run", "--config", conf, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	return r.instance(p, port, "bench.test", true)
}

func startBaseline(r *runner, tag string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := start("go", r.serverCore, []string{"GOMAXPROCS=1"}, filepath.Join(r.work, tag+"-go.log"),
		filepath.Join(r.bin, "baseline"), "-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"-cert", filepath.Join(r.pki, "cert.pem"), "-key", filepath.Join(r.pki, "key.pem"),
		"-upstream", "http://"+r.upstream, "-procs", "1")
	if err != nil {
		return nil, err
	}
	return r.instance(p, port, "bench.test", true)
}

// spineNode is a running `spine serve` and its addresses.
type spineNode struct {
	p                *proc
	data             string
	https, http, api string
}

// startSpineNode starts `spine serve` on data, with the store dsn (""
// for SQLite in data), and waits for its API.
func (r *runner) startSpineNode(data, dsn, tag string, procs int) (*spineNode, error) {
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	n := &spineNode{
		data:  data,
		https: fmt.Sprintf("127.0.0.1:%d", ports[0]),
		http:  fmt.Sprintf("127.0.0.1:%d", ports[1]),
		api:   fmt.Sprintf("127.0.0.1:%d", ports[2]),
	}
	args := []string{r.spineBin, "serve", "--data", data, "--https-addr", n.https, "--http-addr", n.http,
		"--api-addr", n.api, "--domain", r.spineDomain}
	if dsn != "" {
		// Nodes over one store share one secret key file: the first makes it.
		args = append(args, "--store", dsn, "--secret-key-file", filepath.Join(r.work, "secret.key"))
	}
	args = append(args, r.spineFlags...)
	p, err := start("spine", r.serverCore, []string{fmt.Sprintf("GOMAXPROCS=%d", procs)}, filepath.Join(r.work, tag+"-spine.log"),
		args...)
	if err != nil {
		return nil, err
	}
	n.p = p
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if p.exited() {
			return nil, fmt.Errorf("spine exited before serving its API: %v (log %s)", p.err, filepath.Join(r.work, tag+"-spine.log"))
		}
		// Ready, not just listening: the API accepts before the node has
		// written its admin token, and a `service create` made then fails.
		err := readyz(n.api)
		if err == nil {
			return n, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("spine's API did not say ready on %s within 5m: %v", n.api, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var afterCreate = regexp.MustCompile(`\(([0-9.]+)(ms|s|µs) after create\)`)

// createService runs `spine service create NAME --wait` and returns how
// long HTTPS took to answer after the create, as the command reports it
// (or its wall time if it does not say).
func (r *runner) createService(n *spineNode, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t := time.Now()
	out, err := runLoad(ctx, r.loadCore, r.spineBin, "service", "create", name, "--upstream", "http://"+r.upstream,
		"--wait", "--timeout", "60s", "--data", n.data, "--api", "http://"+n.api)
	wall := float64(time.Since(t).Microseconds()) / 1000
	if err != nil {
		return 0, fmt.Errorf("spine service create: %w: %s", err, lastLine(out))
	}
	if m := afterCreate.FindStringSubmatch(out); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		switch m[2] {
		case "s":
			v *= 1000
		case "µs":
			v /= 1000
		}
		return v, nil
	}
	return wall, nil
}

func startSpine(r *runner, tag string) (*instance, error) {
	data := filepath.Join(r.work, tag+"-spine-data")
	os.RemoveAll(data)
	n, err := r.startSpineNode(data, "", tag, 1)
	if err != nil {
		return nil, err
	}
	ms, err := r.createService(n, "bench")
	if err != nil {
		n.p.stop()
		return nil, err
	}
	_, port, _ := net.SplitHostPort(n.https)
	pn, _ := strconv.Atoi(port)
	in, err := r.instance(n.p, pn, "bench."+r.spineDomain, false)
	if err != nil {
		return nil, err
	}
	in.ca = filepath.Join(data, "ca", "root.pem")
	in.newHostMs = ms
	return in, nil
}

// versions returns a line per server and tool, for the report.
func versions(spineBin string) []string {
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return "not installed"
		}
		return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	lines := []string{
		"nginx: " + run("nginx", "-v"),
		"haproxy: " + run("haproxy", "-v"),
		"caddy: " + run("caddy", "version"),
		"go (baseline, Spine): " + run("go", "version"),
		"openssl: " + run("openssl", "version"),
		"h2load: " + run("h2load", "--version"),
	}
	if spineBin != "" {
		rev := run("git", "rev-parse", "--short", "HEAD")
		if out, err := exec.Command("git", "status", "--porcelain", "--", "cmd", "internal", "go.mod").Output(); err == nil && len(out) > 0 {
			rev += " with local changes"
		}
		lines = append(lines, "spine: "+run(spineBin, "version")+", built from commit "+rev)
	}
	return lines
}

// readyz asks a node's API whether it is ready (GET /readyz, 200).
func readyz(api string) error {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + api + "/readyz")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz: %s", resp.Status)
	}
	return nil
}
