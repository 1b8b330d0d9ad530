package edge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// waitTimeout bounds an end-to-end wait (connections, health checks, a
// route change under load). It guards against a hang and is no speed
// target: generous enough for a loaded 2-core machine running -race.
const waitTimeout = time.Minute

// testPKI is a throwaway CA that issues a leaf for any name on demand. Its
// GetCertificate answers every name, so tests can show that the edge, not
// the certificate source, refuses unknown names.
type testPKI struct {
	pool *x509.CertPool
	root *x509.Certificate
	key  *ecdsa.PrivateKey

	mu    sync.Mutex
	certs map[string]*tls.Certificate
	asked []string // server names GetCertificate was called with
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Edge Test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &testPKI{pool: pool, root: root, key: key, certs: map[string]*tls.Certificate{}}
}

func (p *testPKI) leaf(name string) (*tls.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.certs[name]; c != nil {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, &key.PublicKey, p.key)
	if err != nil {
		return nil, err
	}
	c := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	p.certs[name] = c
	return c, nil
}

func (p *testPKI) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := hello.ServerName
	p.mu.Lock()
	p.asked = append(p.asked, name)
	p.mu.Unlock()
	if name == "" {
		name = "default.test"
	}
	return p.leaf(name)
}

func (p *testPKI) wasAsked(name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.asked {
		if n == name {
			return true
		}
	}
	return false
}

// harness is a running edge on 127.0.0.1 with both listeners.
type harness struct {
	s        *Server
	pki      *testPKI
	tlsAddr  string
	httpAddr string
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func startEdge(t testing.TB, cfg Config, routes ...Route) *harness {
	t.Helper()
	h := &harness{pki: newPKI(t)}
	if cfg.GetCertificate == nil {
		cfg.GetCertificate = h.pki.GetCertificate
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	if cfg.HealthInterval == 0 {
		cfg.HealthInterval = time.Hour // tests drive health by hand unless they ask
	}
	if cfg.ReadHeaderTimeout == 0 {
		// A guard, not what these tests measure (those that do set it): with
		// the race detector on a loaded machine, a client's handshake has
		// outlasted the default 10 s, and the edge closed the connection
		// under the client's first request ("server closed idle connection").
		cfg.ReadHeaderTimeout = time.Minute
	}
	h.s = New(cfg)
	if err := h.s.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.tlsAddr, h.httpAddr = tlsLn.Addr().String(), httpLn.Addr().String()
	errc := make(chan error, 2)
	go func() { errc <- h.s.ServeTLS(tlsLn) }()
	go func() { errc <- h.s.ServeHTTP(httpLn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for range 2 {
			if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
			}
		}
	})
	return h
}

// client returns an HTTPS client that reaches every host through the edge,
// trusting only the test CA. With h2 it negotiates HTTP/2, else HTTP/1.1.
func (h *harness) client(t testing.TB, h2 bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", h.tlsAddr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: h.pki.pool},
		ForceAttemptHTTP2: h2,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// plainClient reaches the plain-HTTP listener and does not follow redirects.
func (h *harness) plainClient(t testing.TB) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", h.httpAddr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// dialTLS opens a TLS connection to the edge with the given SNI and ALPN.
func (h *harness) dialTLS(serverName string, protos ...string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return tls.DialWithDialer(d, "tcp", h.tlsAddr, &tls.Config{
		ServerName: serverName,
		RootCAs:    h.pki.pool,
		NextProtos: protos,
	})
}

// do sends a request and returns the response with its body read.
func do(t testing.TB, c *http.Client, method, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if host := hdr.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, string(b)
}

// namedUpstream answers every request with its name.
func namedUpstream(t testing.TB, name string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// deadURL returns an http URL on which nothing listens.
func deadURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// upstreamOf returns the route table's upstream for url (any health
// check), or nil.
func (s *Server) upstreamOf(url string) *upstream {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, up := range s.upstreams {
		if up.key == url {
			return up
		}
	}
	return nil
}
