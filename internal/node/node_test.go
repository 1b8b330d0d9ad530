package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// waitTimeout bounds an end-to-end wait (a node starting, a change served,
// a certificate from Pebble). It guards against a hang and is no speed
// target: generous enough for a loaded 2-core machine running -race.
const waitTimeout = 2 * time.Minute

// startNode starts a node on loopback ports with its data in dir.
func startNode(t *testing.T, dir, dsn string) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := Start(ctx, config.Config{
		DataDir:  dir,
		Store:    dsn,
		Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"},
		APIAddr:  "127.0.0.1:0",
		Domain:   "localhost",
		Demo:     true,
		Version:  "test",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("starting node: %v", err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

func adminClient(t *testing.T, n *Node, dir string) *client.Client {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return client.New("http://"+n.APIAddr(), strings.TrimSpace(string(tok)))
}

// httpsGet does a real handshake with SNI host on the node's HTTPS port and
// verifies the chain against the node's CA root.
func httpsGet(t *testing.T, n *Node, host, path string) (*http.Response, string, error) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(n.CA().Root())
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, n.HTTPSAddr())
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get("https://" + host + path)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

func upstream(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestUpServesDemoAndNewServices(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	c := adminClient(t, n, dir)
	ctx := context.Background()

	// The demo service answers over HTTPS with a certificate from Spine's CA.
	poll.Until(t, "demo service over HTTPS", waitTimeout, func() error {
		resp, body, err := httpsGet(t, n, "hello.localhost", "/")
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || !strings.Contains(body, "Hello from Spine") {
			return fmt.Errorf("status %d body %q", resp.StatusCode, body)
		}
		leaf := resp.TLS.PeerCertificates[0]
		if leaf.Subject.CommonName != "hello.localhost" && !contains(leaf.DNSNames, "hello.localhost") {
			return fmt.Errorf("certificate names %v", leaf.DNSNames)
		}
		if !strings.Contains(leaf.Issuer.CommonName, "Spine") {
			return fmt.Errorf("issuer %q", leaf.Issuer.CommonName)
		}
		return nil
	})
	// The root is in the data folder for curl --cacert.
	if b, err := os.ReadFile(filepath.Join(dir, "ca", "root.pem")); err != nil || !strings.Contains(string(b), "BEGIN CERTIFICATE") {
		t.Fatalf("ca/root.pem: %v %q", err, b)
	}
	if fi, err := os.Stat(filepath.Join(dir, "admin.token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data folder mode: %v %v", fi.Mode(), err)
	}

	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "api says hi; xff=%s proto=%s host=%s", r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Host"))
	})
	svc, err := c.CreateService(ctx, client.ServiceCreate{Name: "api", Upstreams: []string{up}})
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	root, err := c.CARoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// WaitServing dials api.localhost on 127.0.0.1 at the URL's port.
	// A loaded machine may show "certificate" twice (issuing, then issued).
	if err := c.WaitServing(wctx, svc, root, func(s client.Step) {
		if len(steps) == 0 || steps[len(steps)-1] != s.Name {
			steps = append(steps, s.Name)
		}
	}); err != nil {
		t.Fatalf("WaitServing: %v (steps %v)", err, steps)
	}
	// "certificate" comes once more if a poll saw the issuance in progress.
	if got := strings.Join(steps, ","); got != "registered,certificate,serving" && got != "registered,certificate,certificate,serving" {
		t.Fatalf("steps = %s", got)
	}
	resp, body, err := httpsGet(t, n, "api.localhost", "/x")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.Contains(body, "api says hi; xff=127.0.0.1 proto=https host=api.localhost") {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=31536000") {
		t.Fatalf("HSTS = %q", hsts)
	}
	if !contains(resp.TLS.PeerCertificates[0].DNSNames, "api.localhost") {
		t.Fatalf("certificate names %v", resp.TLS.PeerCertificates[0].DNSNames)
	}

	// cert list shows issuer and expiry.
	certs, err := c.Certificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cert := range certs {
		if cert.Hostname == "api.localhost" {
			found = true
			if cert.Status != "active" || cert.NotAfter == nil || !strings.Contains(cert.Issuer, "Spine") {
				t.Fatalf("certificate of api.localhost: %+v", cert)
			}
		}
	}
	if !found {
		t.Fatalf("api.localhost missing from %+v", certs)
	}

	// Plain HTTP redirects with 308 to the HTTPS port.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 5 * time.Second}
	req, _ := http.NewRequest("GET", "http://"+n.HTTPAddr()+"/a?b=c", nil)
	req.Host = "api.localhost"
	r2, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	_, port, _ := net.SplitHostPort(n.HTTPSAddr())
	if want := "https://api.localhost:" + port + "/a?b=c"; r2.StatusCode != 308 || r2.Header.Get("Location") != want {
		t.Fatalf("HTTP answer %d Location %q, want 308 %q", r2.StatusCode, r2.Header.Get("Location"), want)
	}

	// Delete: the host stops answering.
	if err := c.DeleteService(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "deleted service stops answering", waitTimeout, func() error {
		_, _, err := httpsGet(t, n, "api.localhost", "/")
		if err == nil {
			return errors.New("still served")
		}
		return nil
	})
}

func TestUnknownHostAndDownUpstream(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	c := adminClient(t, n, dir)
	ctx := context.Background()

	// Unknown SNI: the handshake fails; no other name's certificate is shown.
	if _, _, err := httpsGet(t, n, "nobody.localhost", "/"); err == nil {
		t.Fatal("handshake for an unknown name succeeded")
	}
	// Upstream down: 502 with a clear message.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "down", Upstreams: []string{dead}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "502 from a down upstream", waitTimeout, func() error {
		resp, body, err := httpsGet(t, n, "down.localhost", "/")
		if err != nil {
			return err
		}
		if resp.StatusCode != 502 || !strings.Contains(strings.ToLower(body), "upstream") {
			return fmt.Errorf("status %d body %q", resp.StatusCode, body)
		}
		return nil
	})
}

func TestStreamSurvivesNewService(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	c := adminClient(t, n, dir)
	ctx := context.Background()

	release := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/s" {
			io.WriteString(w, "pong")
			return
		}
		fl := w.(http.Flusher)
		fmt.Fprintln(w, "first")
		fl.Flush()
		<-release
		fmt.Fprintln(w, "last")
	})
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "stream", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "stream service served", waitTimeout, func() error {
		_, _, err := httpsGet(t, n, "stream.localhost", "/ping")
		return err
	})
	// Hold a stream open, create another service meanwhile, then finish it.
	roots := x509.NewCertPool()
	roots.AddCert(n.CA().Root())
	conn, err := tls.Dial("tcp", n.HTTPSAddr(), &tls.Config{RootCAs: roots, ServerName: "stream.localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /s HTTP/1.1\r\nHost: stream.localhost\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := bufio.NewReader(resp.Body)
	if first, err := body.ReadString('\n'); err != nil || first != "first\n" {
		t.Fatalf("first chunk %q, %v", first, err)
	}
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "other", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "new service served while streaming", waitTimeout, func() error {
		_, _, err := httpsGet(t, n, "other.localhost", "/ping")
		return err
	})
	close(release)
	rest, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("stream cut: %v", err)
	}
	if !strings.Contains(string(rest), "last") {
		t.Fatalf("stream ended early: %q", rest)
	}
}

func TestProjectsAreIsolated(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	admin := adminClient(t, n, dir)
	ctx := context.Background()

	// A second tenant with its own domain.
	_, tok, err := n.Platform().CreateProject(ctx, "tenant-b")
	if err != nil {
		t.Fatal(err)
	}
	b := client.New("http://"+n.APIAddr(), tok)
	if _, err := b.AddDomain(ctx, "b.test"); err != nil {
		t.Fatal(err)
	}
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

	// B cannot take names under A's domain, nor A's domain itself.
	if _, err := b.CreateService(ctx, client.ServiceCreate{Name: "x", Domain: "localhost", Upstreams: []string{up}}); !client.IsCode(err, "unknown_domain") {
		t.Fatalf("B created a service on A's domain: %v", err)
	}
	if _, err := b.CreateService(ctx, client.ServiceCreate{Name: "x", Hosts: []string{"evil.localhost"}, Upstreams: []string{up}}); !client.IsCode(err, "host_outside_domains") {
		t.Fatalf("B took a hostname under A's domain: %v", err)
	}
	if _, err := b.AddDomain(ctx, "localhost"); err == nil {
		t.Fatal("B added A's domain")
	}
	if _, err := b.AddDomain(ctx, "sub.localhost"); !client.IsCode(err, "domain_taken") {
		t.Fatalf("B added a domain under A's: %v", err)
	}
	// B sees none of A's objects.
	if _, err := b.Service(ctx, "hello"); !client.IsCode(err, "not_found") {
		t.Fatalf("B read A's service: %v", err)
	}
	if err := b.DeleteService(ctx, "hello"); !client.IsCode(err, "not_found") {
		t.Fatalf("B deleted A's service: %v", err)
	}
	if err := b.RemoveDomain(ctx, "localhost"); !client.IsCode(err, "not_found") {
		t.Fatalf("B removed A's domain: %v", err)
	}
	if ss, err := b.Services(ctx); err != nil || len(ss) != 0 {
		t.Fatalf("B lists %v, %v", ss, err)
	}
	if cs, err := b.Certificates(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("B lists certificates %v, %v", cs, err)
	}
	// A missing or wrong token is refused.
	for _, tok := range []string{"", "spine_wrong"} {
		if _, err := client.New("http://"+n.APIAddr(), tok).Services(ctx); !client.IsCode(err, "unauthorized") {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
	// Invalid hostnames are refused with a message that says what is wrong.
	_, err = admin.CreateService(ctx, client.ServiceCreate{Name: "ok", Hosts: []string{strings.Repeat("a", 64) + ".localhost"}, Upstreams: []string{up}})
	if !client.IsCode(err, "invalid_hostname") || !strings.Contains(err.Error(), "63") {
		t.Fatalf("long label: %v", err)
	}
	// A hostname another service holds is refused.
	if _, err := admin.CreateService(ctx, client.ServiceCreate{Name: "dup", Hosts: []string{"hello.localhost"}, Upstreams: []string{up}}); !client.IsCode(err, "conflict") {
		t.Fatalf("duplicate hostname: %v", err)
	}
}

func TestRestartKeepsServicesAndCertificates(t *testing.T) {
	for _, tc := range storeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			n := startNode(t, dir, tc.dsn)
			c := adminClient(t, n, dir)
			ctx := context.Background()
			up := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "persisted") })
			if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "keep", Upstreams: []string{up}}); err != nil {
				t.Fatal(err)
			}
			var serial string
			poll.Until(t, "served before restart", waitTimeout, func() error {
				resp, _, err := httpsGet(t, n, "keep.localhost", "/")
				if err == nil {
					serial = resp.TLS.PeerCertificates[0].SerialNumber.String()
				}
				return err
			})
			if err := n.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			n2 := startNode(t, dir, tc.dsn)
			poll.Until(t, "served after restart", waitTimeout, func() error {
				resp, body, err := httpsGet(t, n2, "keep.localhost", "/")
				if err != nil {
					return err
				}
				if body != "persisted" {
					return fmt.Errorf("body %q", body)
				}
				if got := resp.TLS.PeerCertificates[0].SerialNumber.String(); got != serial {
					return fmt.Errorf("certificate re-issued after restart: serial %s, was %s", got, serial)
				}
				return nil
			})
		})
	}
}

type storeCase struct{ name, dsn string }

// storeCases are the back ends a node test runs on: SQLite (the data
// folder's default) and, unless SPINE_TEST_POSTGRES=skip, a fresh schema in
// the test PostgreSQL.
func storeCases(t *testing.T) []storeCase {
	cases := []storeCase{{name: "sqlite"}}
	if os.Getenv("SPINE_TEST_POSTGRES") != "skip" {
		cases = append(cases, storeCase{name: "postgres", dsn: storetest.PostgresDSN(t)})
	}
	return cases
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// A service the edge cannot route (stored before the platform checked
// upstreams as strictly as the edge does) must not keep other services,
// of any project, from going live.
func TestBadStoredServiceDoesNotBlockOthers(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	c := adminClient(t, n, dir)
	ctx := context.Background()
	bad := store.Service{ID: "svc_bad", ProjectID: platform.DefaultProjectID, Name: "bad", Domain: "localhost",
		Hostnames: []string{"bad.localhost"}, Upstreams: []string{"http://127.0.0.1:99999"}}
	if err := n.db.CreateService(ctx, bad); err != nil {
		t.Fatal(err)
	}
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "good") })
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "good", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "good service served next to a bad one", waitTimeout, func() error {
		_, body, err := httpsGet(t, n, "good.localhost", "/")
		if err != nil {
			return err
		}
		if body != "good" {
			return fmt.Errorf("body %q", body)
		}
		return nil
	})
	if _, _, err := httpsGet(t, n, "bad.localhost", "/"); err == nil {
		t.Fatal("the unroutable service is served")
	}
}
