package security

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
)

// tenants is a node with two projects, each with a domain and a service:
// A (the default project) serves a.localhost, B serves b.tenant-b.test.
type tenants struct {
	*spine
	recA, recB *recorder
	tokB       string
	projB      string
	b          *client.Client
}

func startTenants(t *testing.T) *tenants {
	t.Helper()
	s := startSpine(t, edge.Config{})
	ts := &tenants{spine: s, recA: startRecorder(t, "service-a"), recB: startRecorder(t, "service-b")}
	ctx := context.Background()
	p, tok, err := s.n.Platform().CreateProject(ctx, "tenant-b")
	if err != nil {
		t.Fatal(err)
	}
	ts.tokB, ts.projB = tok, p.ID
	// The operator vouches for B's domain, as `spine up` does for localhost.
	if _, err := s.n.Platform().AddDomain(ctx, p.ID, "tenant-b.test", true); err != nil {
		t.Fatal(err)
	}
	ts.b = client.New("http://"+s.n.APIAddr(), tok)
	s.addService(t, s.admin, client.ServiceCreate{Name: "a", Upstreams: []string{ts.recA.url()}})
	s.addService(t, ts.b, client.ServiceCreate{Name: "b", Upstreams: []string{ts.recB.url()}})
	return ts
}

// TestTenantIsolation checks the edge side: a connection opened for one
// name never reaches another name's service.
func TestTenantIsolation(t *testing.T) {
	ts := startTenants(t)
	const hostA, hostB = "a.localhost", "b.tenant-b.test"

	t.Run("SNI for A, Host for B: 421 over HTTP/1.1", func(t *testing.T) {
		mb := ts.recB.mark()
		ex := sendRaw(t, ts.spine, hostA, "GET / HTTP/1.1\r\nHost: "+hostB+"\r\nConnection: close\r\n\r\n")
		if !slices.Equal(ex.statuses, []int{http.StatusMisdirectedRequest}) {
			t.Errorf("answers %v, want [421]", ex.statuses)
		}
		if got := ts.recB.since(mb); len(got) > 0 {
			t.Errorf("B's upstream received %v", got)
		}
	})

	t.Run("one HTTP/2 connection reused across hosts (coalescing)", func(t *testing.T) {
		c, err := ts.dialTLS(hostA, "h2")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cc, err := (&http2.Transport{}).NewClientConn(c)
		if err != nil {
			t.Fatal(err)
		}
		mb := ts.recB.mark()
		get := func(host string) (int, string) {
			req, _ := http.NewRequest("GET", "https://"+host+"/coalesced", nil)
			resp, err := cc.RoundTrip(req)
			if err != nil {
				t.Fatalf("GET %s over A's connection: %v", host, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		for _, host := range []string{hostB, "B.Tenant-B.Test.", hostB + ":443", "nowhere.localhost"} {
			code, body := get(host)
			if code == 200 || strings.Contains(body, "service-") {
				t.Errorf("%s over A's HTTP/2 connection: %d %q", host, code, body)
			}
			if host != "nowhere.localhost" && code != http.StatusMisdirectedRequest {
				t.Errorf("%s over A's HTTP/2 connection: %d, want 421", host, code)
			}
		}
		if got := ts.recB.since(mb); len(got) > 0 {
			t.Errorf("B's upstream received %v", got)
		}
		// The connection still serves A.
		if code, body := get(hostA); code != 200 || !strings.HasPrefix(body, "service-a") {
			t.Errorf("A over its own connection after the misdirected ones: %d %q", code, body)
		}
	})

	t.Run("host spellings route to the same service and nowhere else", func(t *testing.T) {
		same := []string{"a.localhost", "A.LOCALHOST", "a.localhost.", "A.LocalHost.", "a.localhost:443", "A.LOCALHOST.:8443"}
		for _, sni := range []string{"a.localhost", "A.LocalHost"} {
			for _, h := range same {
				ma, mb := ts.recA.mark(), ts.recB.mark()
				ex := sendRaw(t, ts.spine, sni, "GET /spelling HTTP/1.1\r\nHost: "+h+"\r\nConnection: close\r\n\r\n")
				if !slices.Equal(ex.statuses, []int{200}) || len(ts.recA.since(ma)) != 1 || len(ts.recB.since(mb)) != 0 {
					t.Errorf("SNI %q Host %q: answers %v, A got %d, B got %d", sni, h, ex.statuses, len(ts.recA.since(ma)), len(ts.recB.since(mb)))
				}
			}
		}
		other := []string{"a.localhost..", ".a.localhost", "a..localhost", "xa.localhost", "a.localhost.tenant-b.test", "a.localhost%2e", "a_localhost", "a.localhos"}
		for _, h := range other {
			ma, mb := ts.recA.mark(), ts.recB.mark()
			ex := sendRaw(t, ts.spine, hostA, "GET /spelling HTTP/1.1\r\nHost: "+h+"\r\nConnection: close\r\n\r\n")
			if slices.Contains(ex.statuses, 200) || len(ts.recA.since(ma))+len(ts.recB.since(mb)) > 0 {
				t.Errorf("Host %q reached a service: answers %v", h, ex.statuses)
			}
		}
		// Names that are not served get no certificate at all. (Go's client
		// strips trailing dots from SNI itself, so they are not tried here.)
		for _, sni := range []string{"xa.localhost", "localhost", "a-localhost", "b.tenant-b.test.localhost"} {
			if c, err := tls.Dial("tcp", ts.n.HTTPSAddr(), &tls.Config{ServerName: sni, InsecureSkipVerify: true}); err == nil {
				t.Errorf("SNI %q got a handshake with certificate %v", sni, c.ConnectionState().PeerCertificates[0].DNSNames)
				c.Close()
			}
		}
	})

	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run("TLS session from A resumed on SNI B ("+tls.VersionName(v)+")", func(t *testing.T) {
			cache := &stickyCache{}
			conf := func(sni string) *tls.Config {
				// An attacker skips verification, so that its client offers
				// A's session for B at all.
				return &tls.Config{ServerName: sni, InsecureSkipVerify: true, ClientSessionCache: cache,
					MinVersion: v, MaxVersion: v, NextProtos: []string{"http/1.1"}}
			}
			handshake := func(sni string) tls.ConnectionState {
				c, err := tls.Dial("tcp", ts.n.HTTPSAddr(), conf(sni))
				if err != nil {
					t.Fatalf("handshake with SNI %s: %v", sni, err)
				}
				defer c.Close()
				// A request makes the client read TLS 1.3 session tickets.
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+sni+"\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				c.Read(make([]byte, 4096))
				return c.ConnectionState()
			}
			handshake(hostA)
			if !cache.has() {
				t.Fatal("the edge issued no session ticket")
			}
			// Control: the session resumes on A itself, so the check below can fail.
			if st := handshake(hostA); !st.DidResume {
				t.Fatal("a session from A did not resume on A")
			}
			st := handshake(hostB)
			if st.DidResume {
				t.Errorf("a session ticket issued for %s resumed a connection for %s without its certificate", hostA, hostB)
			}
			if len(st.PeerCertificates) == 0 || !slices.Contains(st.PeerCertificates[0].DNSNames, hostB) {
				t.Errorf("the handshake for %s did not present %s's certificate", hostB, hostB)
			}
		})
	}
}

// stickyCache offers the last session it got for every server name.
type stickyCache struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (c *stickyCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *stickyCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs != nil {
		c.cs = cs
	}
}

func (c *stickyCache) has() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs != nil
}

// apiRoutes returns every route pattern registered in package api's
// non-test sources ("GET /v1/services/{name}", "/").
func apiRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "api", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("finding package api's sources: %v", err)
	}
	fset := token.NewFileSet()
	var routes []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				p, _ := strconv.Unquote(lit.Value)
				routes = append(routes, p)
			}
			return true
		})
	}
	if len(routes) < 10 {
		t.Fatalf("found only %d API routes in the sources: %v", len(routes), routes)
	}
	return routes
}

// apiCall is one raw API request and its answer.
func apiCall(t *testing.T, base, tok, method, path, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAPITenantIsolation calls every API route, found in package api's
// sources, with project B's token against project A's objects: B reads
// nothing of A's and changes nothing of A's. A route without a case here
// fails the test, so that a new route cannot be forgotten.
func TestAPITenantIsolation(t *testing.T) {
	ts := startTenants(t)
	base := "http://" + ts.n.APIAddr()
	ctx := context.Background()
	svcA, err := ts.admin.Service(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	// What B must never see: A's hostnames, upstream, IDs and token.
	secretsOfA := []string{"a.localhost", ts.recA.addr, svcA.ID, ts.token}
	stateOfA := func() string {
		ds, err1 := ts.admin.Domains(ctx)
		ss, err2 := ts.admin.Services(ctx)
		if err1 != nil || err2 != nil {
			t.Fatalf("reading A's state: %v %v", err1, err2)
		}
		b, _ := json.Marshal([]any{ds, ss})
		return string(b)
	}
	before := stateOfA()

	// as calls the route as B and checks that nothing of A's shows.
	as := func(t *testing.T, method, path, body string) (int, string) {
		t.Helper()
		code, out := apiCall(t, base, ts.tokB, method, path, body)
		for _, s := range secretsOfA {
			// An answer may repeat what B itself sent ("a.localhost is not
			// under your domains"); anything else of A's is a leak.
			if strings.Contains(out, s) && !strings.Contains(strings.ToLower(path+body), s) {
				t.Errorf("B's %s %s answer shows A's %q: %s", method, path, s, out)
			}
		}
		return code, out
	}
	refused := func(t *testing.T, method, path, body string, codes ...int) {
		t.Helper()
		code, out := as(t, method, path, body)
		if !slices.Contains(codes, code) {
			t.Errorf("B's %s %s %s: %d %s; want one of %v", method, path, body, code, out, codes)
		}
	}
	okFor := func(t *testing.T, method, path string) string {
		t.Helper()
		code, out := as(t, method, path, "")
		if code != 200 {
			t.Errorf("B's %s %s: %d %s", method, path, code, out)
		}
		return out
	}
	aDomainNames := []string{"localhost", "LOCALHOST.", "localhost."}
	aServiceNames := []string{"a", "A"}

	cases := map[string]func(t *testing.T){
		"GET /healthz":    func(t *testing.T) { okFor(t, "GET", "/healthz") },
		"GET /readyz":     func(t *testing.T) { okFor(t, "GET", "/readyz") },
		"GET /v1/version": func(t *testing.T) { okFor(t, "GET", "/v1/version") },
		"GET /v1/ca/root": func(t *testing.T) { okFor(t, "GET", "/v1/ca/root") },
		"GET /v1/project": func(t *testing.T) {
			var p client.Project
			json.Unmarshal([]byte(okFor(t, "GET", "/v1/project")), &p)
			if p.ID != ts.projB {
				t.Errorf("B's token shows project %q, want %q", p.ID, ts.projB)
			}
		},
		"GET /v1/domains": func(t *testing.T) {
			if out := okFor(t, "GET", "/v1/domains"); strings.Contains(out, `"localhost"`) {
				t.Errorf("B lists A's domain: %s", out)
			}
		},
		"POST /v1/domains": func(t *testing.T) {
			for _, d := range []string{"localhost", "LOCALHOST.", "a.localhost", "x.a.localhost", "xn--localhost"} {
				refused(t, "POST", "/v1/domains", `{"name":"`+d+`"}`, 400, 409)
			}
		},
		"GET /v1/domains/{name}": func(t *testing.T) {
			for _, d := range aDomainNames {
				refused(t, "GET", "/v1/domains/"+d, "", 404)
			}
		},
		"DELETE /v1/domains/{name}": func(t *testing.T) {
			for _, d := range aDomainNames {
				refused(t, "DELETE", "/v1/domains/"+d, "", 404)
			}
		},
		"POST /v1/domains/{name}/verify": func(t *testing.T) {
			// Taking a domain over needs a DNS record B cannot create; this
			// node has no resolver, so verification is unavailable.
			for _, d := range aDomainNames {
				refused(t, "POST", "/v1/domains/"+d+"/verify", "", 404, 409, 503)
			}
		},
		"GET /v1/services": func(t *testing.T) { okFor(t, "GET", "/v1/services") },
		"POST /v1/services": func(t *testing.T) {
			up := `"upstreams":["` + ts.recB.url() + `"]`
			for _, body := range []string{
				`{"name":"x","domain":"localhost",` + up + `}`,
				`{"name":"x","domain":"LOCALHOST.",` + up + `}`,
				`{"name":"x","hosts":["a.localhost"],` + up + `}`,
				`{"name":"x","hosts":["A.LOCALHOST."],` + up + `}`,
				`{"name":"x","hosts":["new.localhost"],` + up + `}`,
			} {
				refused(t, "POST", "/v1/services", body, 400, 409)
			}
			// B may use the name "a" in its own domain: names are per project.
			if code, out := as(t, "POST", "/v1/services", `{"name":"a",`+up+`}`); code != 201 || !strings.Contains(out, "a.tenant-b.test") {
				t.Errorf("B's own service a: %d %s", code, out)
			}
			if code, out := as(t, "DELETE", "/v1/services/a", ""); code != 204 {
				t.Errorf("deleting B's own service a: %d %s", code, out)
			}
		},
		"GET /v1/services/{name}": func(t *testing.T) {
			for _, n := range aServiceNames {
				refused(t, "GET", "/v1/services/"+n, "", 404)
			}
		},
		"DELETE /v1/services/{name}": func(t *testing.T) {
			for _, n := range aServiceNames {
				refused(t, "DELETE", "/v1/services/"+n, "", 404)
			}
		},
		"GET /v1/certificates": func(t *testing.T) { okFor(t, "GET", "/v1/certificates") },
		"GET /v1/nodes": func(t *testing.T) {
			// Operator information: only the default project's tokens.
			refused(t, "GET", "/v1/nodes", "", 403)
		},
		"/": func(t *testing.T) {
			for _, p := range []string{"/v1/services/a/", "/v1/projects/default", "/v1/services/..%2fa", "/v1//services/a"} {
				code, out := as(t, "GET", p, "")
				if code < 300 || code >= 500 {
					t.Errorf("B's GET %s: %d %s", p, code, out)
				}
			}
		},
	}

	routes := apiRoutes(t)
	for _, r := range routes {
		t.Run(r, func(t *testing.T) {
			tc := cases[r]
			if tc == nil {
				t.Fatalf("API route %q has no cross-tenant case: add one to TestAPITenantIsolation (call it with project B's token on project A's objects)", r)
			}
			tc(t)
			// Without a token, every route but the public ones is refused.
			if !slices.Contains([]string{"GET /healthz", "GET /readyz", "GET /v1/version", "GET /v1/ca/root", "/"}, r) {
				method, path, _ := strings.Cut(r, " ")
				path = strings.ReplaceAll(strings.ReplaceAll(path, "{name}", "localhost"), "{", "")
				for _, tok := range []string{"", "spine_not-a-token", ts.token + "x"} {
					if code, out := apiCall(t, base, tok, method, path, ""); code != 401 {
						t.Errorf("%s %s with token %q: %d %s, want 401", method, path, tok, code, out)
					}
				}
			}
		})
	}
	for r := range cases {
		if !slices.Contains(routes, r) {
			t.Errorf("case %q names no route of package api", r)
		}
	}
	if after := stateOfA(); after != before {
		t.Errorf("A's state changed under B's calls:\nbefore %s\nafter  %s", before, after)
	}
	// A's service still answers, from A's upstream.
	ex := sendRaw(t, ts.spine, "a.localhost", "GET / HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\n\r\n")
	if !slices.Equal(ex.statuses, []int{200}) {
		t.Errorf("A's service after B's calls: %v", ex.statuses)
	}
	reportf(t, "%d API routes called with another project's token: %s", len(routes), strings.Join(routes, ", "))
}
