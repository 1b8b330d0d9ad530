package edge

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/spine-platform/spine/internal/pkitest"
)

// certEcho is an upstream that answers with the client-certificate headers
// it received (any spelling), as JSON.
func certEcho(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := map[string]string{}
		for k, v := range r.Header {
			if strings.HasPrefix(strings.ToLower(strings.ReplaceAll(k, "_", "-")), "x-client-cert") {
				got[k] = strings.Join(v, "|")
			}
		}
		json.NewEncoder(w).Encode(got)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// mtlsClient makes one request per call over a new connection.
type mtlsClient struct {
	h        *harness
	cert     *tls.Certificate
	sessions tls.ClientSessionCache
	max      uint16
	insecure bool // offer any cached session whatever the name (see anySession)
}

func (c mtlsClient) get(t *testing.T, host string, hdr http.Header) (int, map[string]string, *tls.ConnectionState, error) {
	t.Helper()
	cfg := &tls.Config{ServerName: host, RootCAs: c.h.pki.pool, ClientSessionCache: c.sessions, MaxVersion: c.max, InsecureSkipVerify: c.insecure}
	if c.cert != nil {
		// Sent whatever CAs the server names (crypto/tls's client would
		// send nothing for a CA it does not name; curl sends it anyway).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return c.cert, nil }
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", c.h.tlsAddr)
		},
		TLSClientConfig:   cfg,
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "https://"+host+"/", nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	got := map[string]string{}
	json.NewDecoder(resp.Body).Decode(&got)
	return resp.StatusCode, got, resp.TLS, nil
}

// anySession is a client session cache that offers the last session it
// got to every server name, as a hostile client can.
type anySession struct {
	mu sync.Mutex
	s  *tls.ClientSessionState
}

func (a *anySession) Get(string) (*tls.ClientSessionState, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.s, a.s != nil
}

func (a *anySession) Put(_ string, s *tls.ClientSessionState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s != nil {
		a.s = s
	}
}

type clientPKI struct {
	ca                                 *pkitest.CA
	good, expired, foreign, serverOnly tls.Certificate
	goodSHA                            string
}

func newClientPKI() clientPKI {
	ca := pkitest.NewRoot("Client CA")
	other := pkitest.NewRoot("Other CA")
	good := ca.Issue(pkitest.Leaf{CommonName: "client-1", DNSNames: []string{"client-1.example"}, URIs: []string{"spiffe://example/client-1"}, Client: true})
	return clientPKI{
		ca:         ca,
		good:       good.TLS(),
		goodSHA:    good.SHA256(),
		expired:    ca.Issue(pkitest.Leaf{CommonName: "old", Client: true, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}).TLS(),
		foreign:    other.Issue(pkitest.Leaf{CommonName: "stranger", Client: true}).TLS(),
		serverOnly: ca.Issue(pkitest.Leaf{CommonName: "server", DNSNames: []string{"x.test"}}).TLS(),
	}
}

// Each failure gets the TLS alert that says what is wrong; a verified
// client reaches the upstream with its certificate's details in headers.
func TestClientAuthRequireAlerts(t *testing.T) {
	p := newClientPKI()
	up := certEcho(t)
	h := startEdge(t, Config{}, Route{Host: "api.test", Upstreams: []string{up.URL}, ClientAuth: ClientAuthRequire, ClientCA: p.ca.RootPEM()})
	for _, tc := range []struct {
		name  string
		cert  *tls.Certificate
		max   uint16
		alert string
	}{
		{"no certificate, TLS 1.3", nil, 0, "tls: certificate required"},
		{"no certificate, TLS 1.2", nil, tls.VersionTLS12, "tls: handshake failure"},
		{"unknown issuer", &p.foreign, 0, "tls: unknown certificate authority"},
		{"unknown issuer, TLS 1.2", &p.foreign, tls.VersionTLS12, "tls: unknown certificate authority"},
		{"expired", &p.expired, 0, "tls: expired certificate"},
		{"not for clients", &p.serverOnly, 0, "tls: bad certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := mtlsClient{h: h, cert: tc.cert, max: tc.max}.get(t, "api.test", nil)
			if err == nil || !strings.Contains(err.Error(), "remote error: "+tc.alert) {
				t.Fatalf("error %v, want the alert %q", err, tc.alert)
			}
		})
	}
	code, got, _, err := mtlsClient{h: h, cert: &p.good}.get(t, "api.test", http.Header{
		"X-Client-Cert-Subject": {"CN=admin"}, "X_client_cert_verified": {"forged"}, "X-CLIENT-CERT-SHA256": {"00"}})
	if err != nil || code != 200 {
		t.Fatalf("verified client: %d %v", code, err)
	}
	want := map[string]string{
		ClientCertVerified: "success",
		ClientCertSubject:  "CN=client-1,O=pkitest",
		ClientCertIssuer:   "CN=Client CA,O=pkitest",
		ClientCertDNS:      "client-1.example",
		ClientCertURI:      "spiffe://example/client-1",
		ClientCertSHA256:   p.goodSHA,
	}
	if !mapsEqual(got, want) {
		t.Errorf("upstream got %v, want %v", got, want)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Optional mode lets every client through, marked; a route without mTLS
// asks for no certificate and passes on no client-certificate header.
func TestClientAuthOptionalAndStripped(t *testing.T) {
	p := newClientPKI()
	up := certEcho(t)
	h := startEdge(t, Config{},
		Route{Host: "opt.test", Upstreams: []string{up.URL}, ClientAuth: ClientAuthOptional, ClientCA: p.ca.RootPEM()},
		Route{Host: "plain.test", Upstreams: []string{up.URL}})
	forged := http.Header{"X-Client-Cert-Verified": {"success"}, "X_Client_Cert_Subject": {"CN=admin"}, "X-Client-Cert-Whatever": {"x"}}
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		host string
		want map[string]string
	}{
		{"optional, none", nil, "opt.test", map[string]string{ClientCertVerified: "none"}},
		{"optional, unknown issuer", &p.foreign, "opt.test", map[string]string{ClientCertVerified: "failed"}},
		{"optional, expired", &p.expired, "opt.test", map[string]string{ClientCertVerified: "failed"}},
		{"optional, verified", &p.good, "opt.test", map[string]string{ClientCertVerified: "success", ClientCertSubject: "CN=client-1,O=pkitest",
			ClientCertIssuer: "CN=Client CA,O=pkitest", ClientCertDNS: "client-1.example", ClientCertURI: "spiffe://example/client-1", ClientCertSHA256: p.goodSHA}},
		{"no mTLS", nil, "plain.test", map[string]string{}},
		{"no mTLS, a certificate offered", &p.good, "plain.test", map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, got, cs, err := mtlsClient{h: h, cert: tc.cert}.get(t, tc.host, forged)
			if err != nil || code != 200 {
				t.Fatalf("%d %v", code, err)
			}
			if !mapsEqual(got, tc.want) {
				t.Errorf("upstream got %v, want %v", got, tc.want)
			}
			if tc.host == "plain.test" && len(cs.PeerCertificates) > 0 && tc.cert != nil {
				// The server asked for nothing: the client sent nothing.
				t.Logf("server certificate chain %d", len(cs.PeerCertificates))
			}
		})
	}
}

// A session is never resumed past the client-certificate check: not with
// a ticket from another service, nor with one from before the setting
// changed (no mTLS, optional, another CA). A ticket from the same setting
// does resume, so the test can tell.
func TestClientAuthResumption(t *testing.T) {
	for _, shared := range []bool{false, true} {
		name := "own ticket keys"
		if shared {
			name = "fleet ticket keys"
		}
		t.Run(name, func(t *testing.T) {
			p := newClientPKI()
			p2 := newClientPKI()
			up := certEcho(t)
			plain := Route{Host: "plain.test", Upstreams: []string{up.URL}}
			req := Route{Host: "api.test", Upstreams: []string{up.URL}, ClientAuth: ClientAuthRequire, ClientCA: p.ca.RootPEM()}
			h := startEdge(t, Config{}, plain, req)
			if shared {
				if err := h.s.SetSessionTicketKeys([][32]byte{{1, 2, 3}}); err != nil {
					t.Fatal(err)
				}
			}
			setRoutes := func(rs ...Route) {
				t.Helper()
				if err := h.s.SetRoutes(rs); err != nil {
					t.Fatal(err)
				}
			}
			// The same setting resumes.
			c := mtlsClient{h: h, cert: &p.good, sessions: tls.NewLRUClientSessionCache(8)}
			if _, _, _, err := c.get(t, "api.test", nil); err != nil {
				t.Fatal(err)
			}
			code, got, cs, err := c.get(t, "api.test", nil)
			if err != nil || code != 200 || !cs.DidResume || got[ClientCertSHA256] != p.goodSHA {
				t.Fatalf("same setting: %d %v resumed=%v %v", code, err, cs != nil && cs.DidResume, got)
			}

			// Another service's ticket, offered without a certificate.
			any := &anySession{}
			other := mtlsClient{h: h, sessions: any, insecure: true}
			if _, _, cs, err := other.get(t, "plain.test", nil); err != nil || cs.DidResume {
				t.Fatalf("plain.test: %v", err)
			}
			if _, _, _, err := other.get(t, "api.test", nil); err == nil || !strings.Contains(err.Error(), "certificate required") {
				t.Errorf("plain.test's ticket on api.test: %v, want certificate required", err)
			}

			// Before the setting: no mTLS, then require.
			before := mtlsClient{h: h, sessions: tls.NewLRUClientSessionCache(8)}
			setRoutes(plain, Route{Host: "api.test", Upstreams: []string{up.URL}})
			if _, _, _, err := before.get(t, "api.test", nil); err != nil {
				t.Fatal(err)
			}
			setRoutes(plain, req)
			if _, _, _, err := before.get(t, "api.test", nil); err == nil || !strings.Contains(err.Error(), "certificate required") {
				t.Errorf("a ticket from before mTLS: %v, want certificate required", err)
			}

			// Optional with an unverified certificate, then require.
			bad := mtlsClient{h: h, cert: &p.foreign, sessions: tls.NewLRUClientSessionCache(8)}
			setRoutes(plain, Route{Host: "api.test", Upstreams: []string{up.URL}, ClientAuth: ClientAuthOptional, ClientCA: p.ca.RootPEM()})
			if _, got, _, err := bad.get(t, "api.test", nil); err != nil || got[ClientCertVerified] != "failed" {
				t.Fatalf("optional with a stranger's certificate: %v %v", got, err)
			}
			if _, got, cs, err := bad.get(t, "api.test", nil); err != nil || !cs.DidResume || got[ClientCertVerified] != "failed" {
				t.Fatalf("optional, resumed: %v %v", got, err) // resumed, and still checked per request
			}
			setRoutes(plain, req)
			if _, _, _, err := bad.get(t, "api.test", nil); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
				t.Errorf("a ticket from optional mode: %v, want unknown certificate authority", err)
			}

			// Another CA.
			if _, _, _, err := c.get(t, "api.test", nil); err != nil {
				t.Fatal(err)
			}
			setRoutes(plain, Route{Host: "api.test", Upstreams: []string{up.URL}, ClientAuth: ClientAuthRequire, ClientCA: p2.ca.RootPEM()})
			if _, _, _, err := c.get(t, "api.test", nil); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
				t.Errorf("a ticket from under the old CA: %v, want unknown certificate authority", err)
			}
		})
	}
}

// A connection made before a route required client certificates, and one
// made for another name (HTTP/2 coalescing), get 421 for it: the client
// must open a new connection, which is asked for a certificate.
func TestClientAuthOldAndCoalescedConnections(t *testing.T) {
	p := newClientPKI()
	up := certEcho(t)
	plain := Route{Host: "plain.test", Upstreams: []string{up.URL}}
	h := startEdge(t, Config{}, plain, Route{Host: "api.test", Upstreams: []string{up.URL}})
	c, err := h.dialTLS("api.test", "h2")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cc, err := (&http2.Transport{}).NewClientConn(c)
	if err != nil {
		t.Fatal(err)
	}
	get := func(host string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+host+"/", nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("api.test"); code != 200 {
		t.Fatalf("before mTLS: %d", code)
	}
	if err := h.s.SetRoutes([]Route{plain, {Host: "api.test", Upstreams: []string{up.URL}, ClientAuth: ClientAuthRequire, ClientCA: p.ca.RootPEM()}}); err != nil {
		t.Fatal(err)
	}
	if code := get("api.test"); code != http.StatusMisdirectedRequest {
		t.Errorf("the old connection after mTLS was required: %d, want 421", code)
	}
	// A connection for plain.test, reused for api.test.
	pc, err := h.dialTLS("plain.test", "h2")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if cc, err = (&http2.Transport{}).NewClientConn(pc); err != nil {
		t.Fatal(err)
	}
	if code := get("api.test"); code != http.StatusMisdirectedRequest {
		t.Errorf("api.test over plain.test's connection: %d, want 421", code)
	}
}

func TestStripClientCertHeaders(t *testing.T) {
	h := http.Header{"X-Client-Cert-Subject": {"a"}, "X_client_cert_dns": {"b"}, "X-Client-Certificate": {"c"}, "X-Client-Cer": {"d"}, "Accept": {"e"}}
	stripClientCertHeaders(h)
	if len(h) != 3 || h["X-Client-Cer"] == nil || h["X-Client-Certificate"] == nil || h["Accept"] == nil {
		t.Errorf("after stripping: %v", h)
	}
	if got := headerSafe("CN=a\r\nX: y,O=é%"); got != "CN=a%0D%0AX: y,O=%C3%A9%25" {
		t.Errorf("headerSafe = %q", got)
	}
}

// The access log line of a request on an mTLS route names the client
// certificate: verified or not, subject, names and SHA-256.
func TestAccessLogClientCert(t *testing.T) {
	p := newClientPKI()
	up := certEcho(t)
	h, out, _ := startLoggedEdge(t, Config{},
		Route{Host: "opt.test", Upstreams: []string{up.URL}, ClientAuth: ClientAuthOptional, ClientCA: p.ca.RootPEM()})
	for _, tc := range []struct {
		id   string
		cert *tls.Certificate
		want map[string]any
	}{
		{"mtls-good", &p.good, map[string]any{"client_cert_verified": "success", "client_cert": "CN=client-1,O=pkitest",
			"client_cert_names": "client-1.example,spiffe://example/client-1", "client_cert_sha256": p.goodSHA}},
		{"mtls-foreign", &p.foreign, map[string]any{"client_cert_verified": "failed"}},
		{"mtls-none", nil, map[string]any{"client_cert_verified": "none"}},
	} {
		if _, _, _, err := (mtlsClient{h: h, cert: tc.cert}).get(t, "opt.test", http.Header{"X-Request-Id": {tc.id}}); err != nil {
			t.Fatal(err)
		}
		line := lineWithID(t, out, tc.id)
		for k, v := range tc.want {
			if line[k] != v {
				t.Errorf("%s: %s = %v, want %v", tc.id, k, line[k], v)
			}
		}
		if tc.cert != &p.good && line["client_cert"] != nil {
			t.Errorf("%s: an unverified certificate's subject is logged: %v", tc.id, line["client_cert"])
		}
	}
}
