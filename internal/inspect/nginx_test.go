package inspect

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
)

// lockedBuffer is a bytes.Buffer a child process and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startNginx runs nginx in the foreground (one process, its own prefix
// folder) with TLS on a 127.0.0.1 port and returns that address.
func startNginx(t *testing.T, chainPEM, keyPEM string, server string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin = "/usr/sbin/nginx"
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("nginx is not installed (looked in PATH and /usr/sbin); install it with: apt-get install nginx-light (bash .ci/run does)")
		}
	}
	dir := t.TempDir()
	// A free port: nginx binds it itself.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s ssl http2;
    ssl_certificate %[3]s;
    ssl_certificate_key %[4]s;
    %[5]s
  }
}
`, dir, addr, chainPEM, keyPEM, server)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", "stderr")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	poll.Until(t, "nginx listening on "+addr, time.Minute, func() error {
		select {
		case err := <-exited:
			exited <- err // for the cleanup
			return poll.Stop(fmt.Errorf("nginx exited: %v\n%s", err, logs.String()))
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return fmt.Errorf("%w\n%s", err, logs.String())
		}
		c.Close()
		return nil
	})
	return addr
}

// TestAgainstNginx inspects nginx (OpenSSL): HTTP/2 with its headers, the
// key exchange OpenSSL chose, its two TLS 1.3 tickets with the lifetime of
// ssl_session_timeout, and the second connection resuming.
func TestAgainstNginx(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "Test CA")
	leaf := ca.leaf(t, certOpts{names: []string{"nginx.test"}})
	dir := t.TempDir()
	chain := writePEM(t, dir, "chain.pem", nil, leaf.cert, ca.inter.cert)
	key := writePEM(t, dir, "key.pem", leaf.key)
	addr := startNginx(t, chain, key, `server_name nginx.test;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_timeout 10m;
    add_header Strict-Transport-Security "max-age=600" always;
    add_header Alt-Svc 'h3=":8443"; ma=3600' always;
    location / { return 200 "ok\n"; }`)

	r := run(t, addr, "nginx.test", Config{Roots: ca.roots("--ca ca.pem")})
	if !r.Result.OK {
		t.Fatalf("result %+v", r.Result)
	}
	sh := r.Handshake.ServerHello
	if sh.Version != "TLS 1.3" || sh.Group == "" || sh.ALPN != "h2" {
		t.Errorf("ServerHello %+v", sh)
	}
	// nginx's OpenSSL (3.0 in Debian 12) has no ML-KEM: it chose X25519,
	// for which the ClientHello carried a key share, so no retry.
	if k := r.KeyExchange; k.Group != sh.Group || !k.ForwardSecret || k.PostQuantum != (sh.Group == "X25519MLKEM768") {
		t.Errorf("key exchange %+v for group %s", k, sh.Group)
	}
	h := r.HTTP
	if h.Protocol != "h2" || h.Status != 200 || !strings.HasPrefix(h.Server, "nginx") || h.HSTS != "max-age=600" {
		t.Errorf("HTTP %+v", h)
	}
	if !h.H3.Advertised || h.H3.Authority != ":8443" || h.H3.MaxAgeSeconds != 3600 {
		t.Errorf("Alt-Svc %q read as %+v", h.AltSvc, h.H3)
	}
	res := r.Resumption
	if res.Tickets < 1 || res.LifetimeSeconds != 600 || !res.Resumed || !res.PreSharedKey {
		t.Errorf("resumption %+v, want tickets with a lifetime of 600 s (ssl_session_timeout 10m) and a resumed second connection", res)
	}
	if v := r.Verification; v.RootSource != "--ca ca.pem" || v.Root != "CN=Test CA Root" {
		t.Errorf("verification %+v", v)
	}
}
