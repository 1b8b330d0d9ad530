package security

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/pebbletest"
	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/platform"
)

// tenants is a node with three projects, each with a verified domain and a
// service: A (the default, operator's project) serves a.localhost, B
// serves b.tenant-b.test, C serves c.tenant-c.test. The node looks
// ownership records up in an in-process DNS server, so that domain
// verification, and taking a domain over from another project, work.
type tenants struct {
	*spine
	dns        *pebbletest.DNS
	all        []*tenant // A, B, C
	recA, recB *recorder
}

// tenant is one project of tenants.
type tenant struct {
	name    string // "A", "B", "C"
	id      string // project ID
	token   string
	c       *client.Client
	domain  string // verified by the operator
	service string
	host    string // the service's hostname
	rec     *recorder
	// verifyRecord is the ownership record that verified domain, or ""
	// for the default project's, which the operator configured.
	verifyRecord string
	// The project's webhook, its signing secret and receiver, and a
	// delivery to it (a test message).
	webhook, webhookSecret, hookURL, delivery string
	// upload is the leaf of the certificate it uploaded for byo.<domain>.
	upload string // SHA-256
}

// checkUpload fails unless tn's uploaded certificate is still its own.
func (tn *tenant) checkUpload(t *testing.T) {
	t.Helper()
	cs, err := tn.c.Certificates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Hostname == "byo."+tn.domain && c.Status == "uploaded" {
			return
		}
	}
	t.Errorf("%s's uploaded certificate for byo.%s is gone: %+v", tn.name, tn.domain, cs)
}

// zoneTXT returns the name and value of a zone-file TXT line
// (`_spine-challenge.example.test. 300 IN TXT "spine-verify=..."`).
func zoneTXT(line string) (name, value string) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return "", ""
	}
	return strings.TrimSuffix(f[0], "."), strings.Trim(f[len(f)-1], `"`)
}

func startTenants(t *testing.T) *tenants {
	t.Helper()
	dns := pebbletest.StartDNS(t)
	s := startSpineWith(t, func(c *config.Config) { c.ACME.Resolver = dns.Addr; c.Webhooks.AllowPrivate = true })
	ts := &tenants{spine: s, dns: dns}
	ctx := context.Background()
	a := &tenant{name: "A", id: platform.DefaultProjectID, token: s.token, c: s.admin, domain: "localhost", service: "a"}
	ts.all = []*tenant{a}
	for _, name := range []string{"b", "c"} {
		p, tok, err := s.n.Platform().CreateProject(ctx, "tenant-"+name)
		if err != nil {
			t.Fatal(err)
		}
		tn := &tenant{name: strings.ToUpper(name), id: p.ID, token: tok, c: client.New("http://"+s.n.APIAddr(), tok),
			domain: "tenant-" + name + ".test", service: name}
		// The project proves its domain in DNS, as a user does; the
		// record is removed afterwards (a verified domain stays so).
		d, err := tn.c.AddDomain(ctx, tn.domain)
		if err != nil {
			t.Fatal(err)
		}
		tn.verifyRecord = d.VerifyRecord
		rec, val := zoneTXT(d.VerifyRecord)
		dns.SetTXT(rec, val)
		if d, err := tn.c.VerifyDomain(ctx, tn.domain); err != nil || d.Status != "verified" {
			t.Fatalf("%s verifying %s: %+v, %v", tn.name, tn.domain, d, err)
		}
		dns.SetTXT(rec)
		ts.all = append(ts.all, tn)
	}
	for _, tn := range ts.all {
		// A token only this project has, by name: another project's
		// revocation of that name must find nothing.
		if _, err := tn.c.CreateToken(ctx, client.TokenCreate{Name: "only-" + strings.ToLower(tn.name), Scopes: []string{"read"}}); err != nil {
			t.Fatal(err)
		}
		tn.rec = startRecorder(t, "service-"+tn.service)
		svc := s.addService(t, tn.c, client.ServiceCreate{Name: tn.service, Upstreams: []string{tn.rec.url()}})
		if len(svc.Hostnames) != 1 || svc.Hostnames[0] != tn.service+"."+tn.domain {
			t.Fatalf("%s's service %s serves %v, want %s.%s", tn.name, tn.service, svc.Hostnames, tn.service, tn.domain)
		}
		tn.host = svc.Hostnames[0]
		// A webhook to a receiver of its own (not the service's upstream,
		// whose requests the tests count), with one delivery.
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		t.Cleanup(hook.Close)
		tn.hookURL = hook.URL + "/" + tn.name
		w, err := tn.c.AddWebhook(ctx, client.WebhookCreate{URL: tn.hookURL})
		if err != nil {
			t.Fatal(err)
		}
		d, err := tn.c.TestWebhook(ctx, w.ID)
		if err != nil || d.Status != "delivered" {
			t.Fatalf("%s's webhook test: %+v %v", tn.name, d, err)
		}
		tn.webhook, tn.webhookSecret, tn.delivery = w.ID, w.Secret, d.ID
		// A certificate of its own for a name no service has yet.
		pki := pkitest.NewRoot("Tenant " + tn.name + " Root")
		leaf := pki.Issue(pkitest.Leaf{DNSNames: []string{"byo." + tn.domain}})
		u, err := tn.c.UploadCertificate(ctx, "byo."+tn.domain, client.CertificateUpload{Certificate: string(leaf.ChainPEM), PrivateKey: string(leaf.KeyPEM), Root: string(pki.RootPEM())})
		if err != nil {
			t.Fatalf("%s uploading a certificate: %v", tn.name, err)
		}
		tn.upload = u.SHA256
	}
	ts.recA, ts.recB = ts.all[0].rec, ts.all[1].rec
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

// ownEvents decodes a GET /v1/events answer.
func ownEvents(t *testing.T, out string) []client.Event {
	t.Helper()
	var page client.EventPage
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("GET /v1/events answer %q: %v", out, err)
	}
	return page.Events
}

// streamUntil reads GET /v1/events/stream from the first event with tok
// until the event with ID last has come (or, if last is 0, until the
// stream's opening), and returns what it read.
func streamUntil(t *testing.T, base, tok string, last int64) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Last-Event-ID", "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("event stream: %d %s", resp.StatusCode, b)
	}
	var out strings.Builder
	sc := bufio.NewScanner(resp.Body)
	want, id := fmt.Sprintf("id: %d", last), ""
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line
		case line == "" && last == 0: // the stream's opening: "retry", "id: 0"
			return out.String()
		case strings.HasPrefix(line, "data: ") && id == want:
			return out.String()
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	t.Fatalf("event stream: event %d did not come; read %q", last, out.String())
	return ""
}

// TestAPITenantIsolation calls every API route, found in package api's
// sources, with each project's token against each other project's objects
// (A, the default project, and B and C, two others; all six directions):
// the caller reads nothing of the other's and changes nothing of it. A
// route without a case here fails the test, so that a new route cannot be
// forgotten. Domain verification runs against a real DNS server: a project
// cannot take another's domain without its own record there, and can with
// it (a control, so that the refusals are the rule and not a failed lookup).
func TestAPITenantIsolation(t *testing.T) {
	ts := startTenants(t)
	base := "http://" + ts.n.APIAddr()

	before := map[*tenant]string{}
	for _, tn := range ts.all {
		before[tn] = stateOf(t, tn)
	}
	routes := apiRoutes(t)
	for _, x := range ts.all {
		for _, y := range ts.all {
			if x == y {
				continue
			}
			t.Run(x.name+" on "+y.name, func(t *testing.T) {
				cases := crossTenantCases(t, ts, base, x, y, secretsOf(t, y), stateOf)
				for _, r := range routes {
					t.Run(r, func(t *testing.T) {
						tc := cases[r]
						if tc == nil {
							t.Fatalf("API route %q has no cross-tenant case: add one to crossTenantCases (call it with one project's token on another's objects)", r)
						}
						tc(t)
					})
				}
				for r := range cases {
					if !slices.Contains(routes, r) {
						t.Errorf("case %q names no route of package api", r)
					}
				}
			})
		}
	}

	t.Run("without a valid token", func(t *testing.T) {
		// Every route but the public ones is refused.
		for _, r := range routes {
			if slices.Contains(publicRoutes, r) {
				continue
			}
			method, path, _ := strings.Cut(r, " ")
			path = strings.ReplaceAll(strings.ReplaceAll(path, "{name}", "localhost"), "{", "")
			for _, tok := range []string{"", "spine_not-a-token", ts.token + "x", ts.all[1].token[:len(ts.all[1].token)-1]} {
				if code, out := apiCall(t, base, tok, method, path, ""); code != 401 {
					t.Errorf("%s %s with token %q: %d %s, want 401", method, path, tok, code, out)
				}
			}
		}
	})

	for _, tn := range ts.all {
		if after := stateOf(t, tn); after != before[tn] {
			t.Errorf("%s's state changed under the other projects' calls:\nbefore %s\nafter  %s", tn.name, before[tn], after)
		}
		// Its service still answers, from its own upstream.
		m := tn.rec.mark()
		ex := sendRaw(t, ts.spine, tn.host, "GET / HTTP/1.1\r\nHost: "+tn.host+"\r\nConnection: close\r\n\r\n")
		if !slices.Equal(ex.statuses, []int{200}) || len(tn.rec.since(m)) != 1 {
			t.Errorf("%s's service after the other projects' calls: %v, its upstream got %d", tn.name, ex.statuses, len(tn.rec.since(m)))
		}
	}
	reportf(t, "%d API routes called with each of 3 projects' tokens (the default one and two others) on each other's objects, 6 directions: %s",
		len(routes), strings.Join(routes, ", "))
}

// stateOf is everything of a project that its own token reads.
func stateOf(t *testing.T, tn *tenant) string {
	t.Helper()
	ds, err1 := tn.c.Domains(context.Background())
	ss, err2 := tn.c.Services(context.Background())
	ws, err3 := tn.c.Webhooks(context.Background())
	ts, err4 := tn.c.Tokens(context.Background())
	p, err5 := tn.c.Project(context.Background())
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil {
		t.Fatalf("reading %s's state: %v %v %v %v %v", tn.name, err1, err2, err3, err4, err5)
	}
	var hooks []string // what a caller sets; not the delivery state, which the sender moves on
	for _, w := range ws {
		hooks = append(hooks, fmt.Sprint(w.ID, w.URL, w.Events, w.Enabled))
	}
	for i := range ts {
		ts[i].LastUsedAt = nil // moves as the tokens are used
	}
	b, _ := json.Marshal([]any{ds, ss, hooks, ts, p})
	return string(b)
}

// secretsOf is what no other project may see of tn: its hostname,
// upstream, service ID, token, project ID and ownership record value.
// Each is a pattern, so that one port is not found inside another.
func secretsOf(t *testing.T, tn *tenant) []*regexp.Regexp {
	t.Helper()
	svc, err := tn.c.Service(context.Background(), tn.service)
	if err != nil {
		t.Fatal(err)
	}
	words := []string{tn.host, svc.ID, tn.token, tn.webhook, tn.webhookSecret, tn.delivery, tn.hookURL}
	if tn.id != platform.DefaultProjectID { // "default" is no secret
		words = append(words, tn.id)
	}
	if _, v := zoneTXT(tn.verifyRecord); v != "" {
		words = append(words, v)
	}
	var out []*regexp.Regexp
	for _, w := range words {
		out = append(out, regexp.MustCompile(`(?i)(^|[^a-z0-9._-])`+regexp.QuoteMeta(w)+`($|[^a-z0-9_-]|\.[^a-z0-9])`))
	}
	return append(out, regexp.MustCompile(regexp.QuoteMeta(tn.rec.addr)+`($|[^0-9])`))
}

// crossTenantCases returns, for each API route, a check that x's token
// reads nothing of y's and changes nothing of it. secrets are y's (see
// secretsOf); stateOf reads a project's state with its own token.
func crossTenantCases(t *testing.T, ts *tenants, base string, x, y *tenant, secrets []*regexp.Regexp,
	stateOf func(*testing.T, *tenant) string) map[string]func(*testing.T) {
	// as calls the route with x's token and checks that nothing of y's shows.
	as := func(t *testing.T, method, path, body string) (int, string) {
		t.Helper()
		code, out := apiCall(t, base, x.token, method, path, body)
		for _, re := range secrets {
			// An answer may repeat what x itself sent ("a.localhost is not
			// under your domains"); anything else of y's is a leak.
			if re.MatchString(out) && !re.MatchString(path+" "+body) {
				t.Errorf("%s's %s %s answer shows %s's %s: %s", x.name, method, path, y.name, re.FindString(out), out)
			}
		}
		return code, out
	}
	refused := func(t *testing.T, method, path, body string, codes ...int) string {
		t.Helper()
		code, out := as(t, method, path, body)
		if !slices.Contains(codes, code) {
			t.Errorf("%s's %s %s %s: %d %s; want one of %v", x.name, method, path, body, code, out, codes)
		}
		return out
	}
	okFor := func(t *testing.T, method, path string) string {
		t.Helper()
		code, out := as(t, method, path, "")
		if code != 200 {
			t.Errorf("%s's %s %s: %d %s", x.name, method, path, code, out)
		}
		return out
	}
	domainNames := []string{y.domain, strings.ToUpper(y.domain) + ".", y.domain + "."}
	serviceNames := []string{y.service, strings.ToUpper(y.service)}
	up := `"upstreams":["` + x.rec.url() + `"]`

	return map[string]func(*testing.T){
		"GET /healthz": func(t *testing.T) { okFor(t, "GET", "/healthz") },
		"GET /readyz":  func(t *testing.T) { okFor(t, "GET", "/readyz") },
		// /metrics is the operator's view of the node, on the operator's
		// listener (README, "Monitoring"): it names every project's
		// hostnames, services and upstreams to whoever reaches it, which
		// is why `spine serve --metrics ADDR` moves it off the API. It must
		// not show anything else of y's (token, webhook and its secret,
		// deliveries, verification record), nor more with x's token than
		// without one.
		"GET /metrics": func(t *testing.T) {
			code, out := apiCall(t, base, x.token, "GET", "/metrics", "")
			if code != 200 || !strings.Contains(out, "spine_store_up 1") {
				t.Fatalf("%s's GET /metrics: %d %.300s", x.name, code, out)
			}
			for _, w := range []string{y.token, y.webhook, y.webhookSecret, y.hookURL, y.delivery} {
				if w != "" && strings.Contains(out, w) {
					t.Errorf("%s's GET /metrics shows %s's %q", x.name, y.name, w)
				}
			}
			if _, v := zoneTXT(y.verifyRecord); v != "" && strings.Contains(out, v) {
				t.Errorf("%s's GET /metrics shows %s's verification record", x.name, y.name)
			}
			if _, anon := apiCall(t, base, "", "GET", "/metrics", ""); len(seriesNames(anon)) != len(seriesNames(out)) {
				t.Errorf("GET /metrics shows other series with %s's token (%d) than without a token (%d)", x.name, len(seriesNames(out)), len(seriesNames(anon)))
			}
		},
		"GET /v1/version": func(t *testing.T) { okFor(t, "GET", "/v1/version") },
		"GET /v1/ca/root": func(t *testing.T) { okFor(t, "GET", "/v1/ca/root") },
		"GET /v1/ech":     func(t *testing.T) { okFor(t, "GET", "/v1/ech") }, // public, as DNS publishes it
		"GET /v1/project": func(t *testing.T) {
			var p client.Project
			json.Unmarshal([]byte(okFor(t, "GET", "/v1/project")), &p)
			if p.ID != x.id {
				t.Errorf("%s's token shows project %q, want %q", x.name, p.ID, x.id)
			}
		},
		"GET /v1/domains": func(t *testing.T) {
			if out := okFor(t, "GET", "/v1/domains"); strings.Contains(out, `"`+y.domain+`"`) {
				t.Errorf("%s lists %s's domain: %s", x.name, y.name, out)
			}
		},
		"POST /v1/domains": func(t *testing.T) {
			for _, d := range append(domainNames, y.host, "x."+y.host, "new."+y.domain) {
				refused(t, "POST", "/v1/domains", `{"name":"`+d+`"}`, 400, 409)
			}
		},
		"GET /v1/domains/{name}": func(t *testing.T) {
			for _, d := range domainNames {
				refused(t, "GET", "/v1/domains/"+d, "", 404)
			}
		},
		"DELETE /v1/domains/{name}": func(t *testing.T) {
			for _, d := range domainNames {
				refused(t, "DELETE", "/v1/domains/"+d, "", 404)
			}
		},
		"POST /v1/domains/{name}/verify": func(t *testing.T) {
			verifyCrossTenant(t, ts, x, y, func(t *testing.T, path, published string) (int, string) {
				t.Helper()
				code, out := apiCall(t, base, x.token, "POST", path, "")
				for _, re := range secrets {
					// The answer says what DNS held: what x published
					// there, y's own record among it, is no leak.
					if re.MatchString(out) && !re.MatchString(path+" "+published) {
						t.Errorf("%s's POST %s answer shows %s's %s: %s", x.name, path, y.name, re.FindString(out), out)
					}
				}
				return code, out
			}, stateOf)
		},
		"GET /v1/services": func(t *testing.T) { okFor(t, "GET", "/v1/services") },
		"POST /v1/services": func(t *testing.T) {
			for _, body := range []string{
				`{"name":"x","domain":"` + y.domain + `",` + up + `}`,
				`{"name":"x","domain":"` + strings.ToUpper(y.domain) + `.",` + up + `}`,
				`{"name":"x","hosts":["` + y.host + `"],` + up + `}`,
				`{"name":"x","hosts":["` + strings.ToUpper(y.host) + `."],` + up + `}`,
				`{"name":"x","hosts":["new.` + y.domain + `"],` + up + `}`,
			} {
				refused(t, "POST", "/v1/services", body, 400, 409)
			}
			// x may use y's service name in its own domain: names are per project.
			own := y.service + "." + x.domain
			if code, out := as(t, "POST", "/v1/services", `{"name":"`+y.service+`",`+up+`}`); code != 201 || !strings.Contains(out, own) {
				t.Errorf("%s's own service %s: %d %s, want 201 serving %s", x.name, y.service, code, out, own)
			}
			if code, out := as(t, "DELETE", "/v1/services/"+y.service, ""); code != 204 {
				t.Errorf("deleting %s's own service %s: %d %s", x.name, y.service, code, out)
			}
		},
		"GET /v1/services/{name}": func(t *testing.T) {
			for _, n := range serviceNames {
				refused(t, "GET", "/v1/services/"+n, "", 404)
			}
		},
		"DELETE /v1/services/{name}": func(t *testing.T) {
			for _, n := range serviceNames {
				refused(t, "DELETE", "/v1/services/"+n, "", 404)
			}
		},
		"PATCH /v1/services/{name}": func(t *testing.T) {
			// y's service cannot be changed, nor found, by any update.
			for _, n := range serviceNames {
				for _, body := range []string{"{" + up + "}", `{"add_hosts":["new.` + y.domain + `"]}`, `{"remove_hosts":["` + y.host + `"]}`,
					`{"hsts_max_age":0}`, `{"health_path":"/x","health_interval":"1s"}`} {
					// 400 when the body is refused before the service is looked
					// up (a hostname under y's domain is not under x's).
					refused(t, "PATCH", "/v1/services/"+n, body, 404, 400)
				}
			}
			// x's own service cannot take y's names, in any spelling.
			for _, h := range []string{y.host, strings.ToUpper(y.host) + ".", "new." + y.domain} {
				refused(t, "PATCH", "/v1/services/"+x.service, `{"add_hosts":["`+h+`"]}`, 400, 409)
			}
		},
		"GET /v1/certificates": func(t *testing.T) { okFor(t, "GET", "/v1/certificates") },
		"PUT /v1/certificates/{name}": func(t *testing.T) {
			// A genuine certificate for names under y's domain, with its
			// root: still not x's to serve, in any spelling. (y's own
			// hostname stays out of the paths: x's audit trail records
			// the paths x tried.)
			pki := pkitest.NewRoot("Isolation Root")
			names := []string{"byo." + y.domain, "new." + y.domain}
			leaf := pki.Issue(pkitest.Leaf{DNSNames: names})
			body, _ := json.Marshal(client.CertificateUpload{Certificate: string(leaf.ChainPEM), PrivateKey: string(leaf.KeyPEM), Root: string(pki.RootPEM())})
			for _, h := range append(names, strings.ToUpper(names[0])+".") {
				refused(t, "PUT", "/v1/certificates/"+h, string(body), 400)
			}
			y.checkUpload(t)
		},
		"DELETE /v1/certificates/{name}": func(t *testing.T) {
			for _, h := range []string{"byo." + y.domain, strings.ToUpper("byo."+y.domain) + "."} {
				refused(t, "DELETE", "/v1/certificates/"+h, "", 404)
			}
			y.checkUpload(t)
		},
		"GET /v1/events": func(t *testing.T) {
			for _, e := range ownEvents(t, okFor(t, "GET", "/v1/events?after=0&limit=1000")) {
				if e.Project != x.id {
					t.Errorf("%s's event log holds an event of project %q: %+v", x.name, e.Project, e)
				}
			}
		},
		"GET /v1/webhooks": func(t *testing.T) { okFor(t, "GET", "/v1/webhooks") },
		"POST /v1/webhooks": func(t *testing.T) {
			// x's own webhook, to y's receiver even: it is x's to send to.
			code, out := as(t, "POST", "/v1/webhooks", `{"url":"`+x.hookURL+`/own"}`)
			var w client.Webhook
			if json.Unmarshal([]byte(out), &w); code != 201 || w.ID == "" || w.Secret == "" {
				t.Fatalf("%s's own webhook: %d %s", x.name, code, out)
			}
			if code, out := as(t, "DELETE", "/v1/webhooks/"+w.ID, ""); code != 204 {
				t.Errorf("deleting %s's own webhook: %d %s", x.name, code, out)
			}
		},
		"GET /v1/webhooks/{id}":            func(t *testing.T) { refused(t, "GET", "/v1/webhooks/"+y.webhook, "", 404) },
		"DELETE /v1/webhooks/{id}":         func(t *testing.T) { refused(t, "DELETE", "/v1/webhooks/"+y.webhook, "", 404) },
		"POST /v1/webhooks/{id}/enable":    func(t *testing.T) { refused(t, "POST", "/v1/webhooks/"+y.webhook+"/enable", "", 404) },
		"POST /v1/webhooks/{id}/test":      func(t *testing.T) { refused(t, "POST", "/v1/webhooks/"+y.webhook+"/test", "", 404) },
		"GET /v1/webhooks/{id}/deliveries": func(t *testing.T) { refused(t, "GET", "/v1/webhooks/"+y.webhook+"/deliveries", "", 404) },
		"GET /v1/deliveries/{id}":          func(t *testing.T) { refused(t, "GET", "/v1/deliveries/"+y.delivery, "", 404) },
		"POST /v1/deliveries/{id}/redeliver": func(t *testing.T) {
			refused(t, "POST", "/v1/deliveries/"+y.delivery+"/redeliver", "", 404)
		},
		"GET /v1/quota": func(t *testing.T) {
			var q client.Quota
			if json.Unmarshal([]byte(okFor(t, "GET", "/v1/quota")), &q); q.Project != x.id {
				t.Errorf("%s's quota is of project %q", x.name, q.Project)
			}
		},
		"GET /v1/projects/{id}/quota": func(t *testing.T) {
			if x.id == platform.DefaultProjectID { // the operator
				okFor(t, "GET", "/v1/projects/"+y.id+"/quota")
				return
			}
			refused(t, "GET", "/v1/projects/"+y.id+"/quota", "", 403)
		},
		"PUT /v1/projects/{id}/quota": func(t *testing.T) {
			if x.id == platform.DefaultProjectID { // the operator: y's own limits, set again as they are
				var q client.Quota
				json.Unmarshal([]byte(okFor(t, "GET", "/v1/projects/"+y.id+"/quota")), &q)
				body, _ := json.Marshal(q.Override)
				if code, out := as(t, "PUT", "/v1/projects/"+y.id+"/quota", string(body)); code != 200 {
					t.Errorf("the operator setting %s's quota: %d %s", y.name, code, out)
				}
				return
			}
			refused(t, "PUT", "/v1/projects/"+y.id+"/quota", `{"services":0}`, 403)
			refused(t, "PUT", "/v1/projects/"+x.id+"/quota", `{"services":0}`, 403) // not even its own
		},
		"GET /v1/events/stream": func(t *testing.T) {
			// The whole log from the start, read up to x's latest event.
			page := ownEvents(t, okFor(t, "GET", "/v1/events?after=0&limit=1000"))
			var last int64
			if len(page) > 0 {
				last = page[len(page)-1].ID
			}
			out := streamUntil(t, base, x.token, last)
			for _, re := range secrets {
				if re.MatchString(out) {
					t.Errorf("%s's event stream shows %s's %s: %s", x.name, y.name, re.FindString(out), out)
				}
			}
			if strings.Contains(out, `"project":"`+y.id+`"`) {
				t.Errorf("%s's event stream holds %s's events: %s", x.name, y.name, out)
			}
		},
		"GET /v1/openapi.json": func(t *testing.T) { okFor(t, "GET", "/v1/openapi.json") },
		"GET /debug/pprof/{name}": func(t *testing.T) {
			// The node's profiles: only the operator's tokens.
			if x.id == platform.DefaultProjectID {
				okFor(t, "GET", "/debug/pprof/heap?debug=1")
			} else {
				operatorOnly(t, refused, "GET", "/debug/pprof/heap", "")
				operatorOnly(t, refused, "GET", "/debug/pprof/goroutine?debug=2", "")
			}
		},
		"GET /v1/nodes": func(t *testing.T) {
			// Operator information: only the operator's tokens.
			if x.id == platform.DefaultProjectID {
				okFor(t, "GET", "/v1/nodes")
			} else {
				operatorOnly(t, refused, "GET", "/v1/nodes", "")
			}
		},
		"GET /v1/tokens": func(t *testing.T) {
			out := okFor(t, "GET", "/v1/tokens")
			if strings.Contains(out, `"only-`+strings.ToLower(y.name)+`"`) || !strings.Contains(out, `"only-`+strings.ToLower(x.name)+`"`) {
				t.Errorf("%s's token list is not its own: %s", x.name, out)
			}
		},
		"POST /v1/tokens": func(t *testing.T) {
			// Made in x's own project, whatever the name says.
			name := "made-by-" + strings.ToLower(x.name)
			if code, out := as(t, "POST", "/v1/tokens", `{"name":"`+name+`","scopes":["read"]}`); code != 201 {
				t.Fatalf("%s making a token: %d %s", x.name, code, out)
			}
			if ts, err := y.c.Tokens(context.Background()); err != nil || slices.ContainsFunc(ts, func(tk client.Token) bool { return tk.Name == name }) {
				t.Errorf("%s's new token shows in %s's list: %v %v", x.name, y.name, ts, err)
			}
			if code, out := as(t, "DELETE", "/v1/tokens/"+name, ""); code != 204 {
				t.Errorf("%s revoking its own token: %d %s", x.name, code, out)
			}
		},
		"DELETE /v1/tokens/{name}": func(t *testing.T) {
			for _, n := range []string{"only-" + strings.ToLower(y.name), "ONLY-" + y.name} {
				refused(t, "DELETE", "/v1/tokens/"+n, "", 400, 404)
			}
			if _, err := y.c.Project(context.Background()); err != nil {
				t.Errorf("%s's token after %s's revocations: %v", y.name, x.name, err)
			}
		},
		"GET /v1/audit": func(t *testing.T) {
			if x.id != platform.DefaultProjectID {
				var out struct{ Entries []client.AuditEntry }
				json.Unmarshal([]byte(okFor(t, "GET", "/v1/audit")), &out)
				for _, e := range out.Entries {
					if e.Project != x.id {
						t.Errorf("%s's audit trail shows an entry of project %q: %+v", x.name, e.Project, e)
					}
				}
				if len(out.Entries) == 0 {
					t.Errorf("%s's audit trail is empty", x.name)
				}
				for _, p := range []string{y.id, "tenant-" + strings.ToLower(y.name), "default"} {
					if p != x.id {
						operatorOnly(t, refused, "GET", "/v1/audit?project="+p, "")
					}
				}
				return
			}
			// The operator reads every project's, and filters by one.
			code, out := apiCall(t, base, x.token, "GET", "/v1/audit?project="+y.id, "")
			var list struct{ Entries []client.AuditEntry }
			json.Unmarshal([]byte(out), &list)
			if code != 200 || len(list.Entries) == 0 || slices.ContainsFunc(list.Entries, func(e client.AuditEntry) bool { return e.Project != y.id }) {
				t.Errorf("the operator's audit of %s: %d %s", y.name, code, out)
			}
		},
		"GET /v1/projects": func(t *testing.T) {
			if x.id != platform.DefaultProjectID {
				operatorOnly(t, refused, "GET", "/v1/projects", "")
			} else if code, out := apiCall(t, base, x.token, "GET", "/v1/projects", ""); code != 200 || !strings.Contains(out, y.id) {
				t.Errorf("the operator's project list: %d %s", code, out)
			}
		},
		"POST /v1/projects": func(t *testing.T) {
			if x.id != platform.DefaultProjectID {
				operatorOnly(t, refused, "POST", "/v1/projects", `{"name":"by-`+strings.ToLower(x.name)+`"}`)
			} else {
				refused(t, "POST", "/v1/projects", `{"name":"tenant-`+strings.ToLower(y.name)+`"}`, 409)
			}
		},
		"GET /v1/projects/{name}": func(t *testing.T) {
			if x.id != platform.DefaultProjectID {
				for _, p := range []string{y.id, "tenant-" + strings.ToLower(y.name), x.id} {
					operatorOnly(t, refused, "GET", "/v1/projects/"+p, "")
				}
			} else if code, out := apiCall(t, base, x.token, "GET", "/v1/projects/"+y.id, ""); code != 200 || !strings.Contains(out, y.id) {
				t.Errorf("the operator reading %s: %d %s", y.name, code, out)
			}
		},
		"DELETE /v1/projects/{name}": func(t *testing.T) {
			projectChange(t, x, y, refused, "DELETE", "")
		},
		"POST /v1/projects/{name}/suspend": func(t *testing.T) {
			projectChange(t, x, y, refused, "POST", "/suspend")
		},
		"POST /v1/projects/{name}/resume": func(t *testing.T) {
			projectChange(t, x, y, refused, "POST", "/resume")
		},
		"/": func(t *testing.T) {
			for _, p := range []string{"/v1/services/" + y.service + "/", "/v1/project/" + y.id, "/v1/projects/" + y.id + "/services", "/v1/tokens/only-" + strings.ToLower(y.name) + "/value",
				"/v1/services/..%2f" + y.service, "/v1//services/" + y.service} {
				code, out := as(t, "GET", p, "")
				if code < 300 || code >= 500 {
					t.Errorf("%s's GET %s: %d %s", x.name, p, code, out)
				}
			}
		},
	}
}

// operatorOnly checks that a route refuses a non-operator with 403 naming
// the operator scope.
func operatorOnly(t *testing.T, refused func(t *testing.T, method, path, body string, codes ...int) string, method, path, body string) {
	t.Helper()
	if out := refused(t, method, path, body, 403); !strings.Contains(out, "missing_scope") || !strings.Contains(out, `\"operator\"`) {
		t.Errorf("%s %s: %s, want missing_scope naming \"operator\"", method, path, out)
	}
}

// projectChange checks an operator route that changes a project: a
// project's token is refused, on any project including its own; the
// operator's is refused on its own default project and finds no project
// that does not exist. (The operator suspending and deleting projects is
// internal/node's TestSuspendResumeDeleteProject.)
func projectChange(t *testing.T, x, y *tenant, refused func(t *testing.T, method, path, body string, codes ...int) string, method, suffix string) {
	t.Helper()
	if x.id != platform.DefaultProjectID {
		for _, p := range []string{y.id, "tenant-" + strings.ToLower(y.name), x.id, "default"} {
			operatorOnly(t, refused, method, "/v1/projects/"+p+suffix, "")
		}
		return
	}
	refused(t, method, "/v1/projects/default"+suffix, "", 400)
	refused(t, method, "/v1/projects/no-such-project"+suffix, "", 404)
}

// verifyCrossTenant checks POST /v1/domains/{name}/verify with x's token on
// y's verified domain: every record but x's own claim record, at the name
// the claim message gives, leaves the domain where it is; x's claim record
// there moves a domain (a throwaway one of y's, as the control).
func verifyCrossTenant(t *testing.T, ts *tenants, x, y *tenant,
	verify func(t *testing.T, path, published string) (int, string), stateOf func(*testing.T, *tenant) string) {
	ctx := context.Background()
	var z *tenant // the third project
	for _, tn := range ts.all {
		if tn != x && tn != y {
			z = tn
		}
	}
	value := zoneTXT
	claimName, claimValue := value(platform.ClaimRecord(x.id, y.domain))
	if claimName != "_spine-challenge."+y.domain {
		t.Fatalf("claim record %q is not at _spine-challenge.%s", platform.ClaimRecord(x.id, y.domain), y.domain)
	}
	before := stateOf(t, y)
	attempts := []struct {
		what        string
		name, value string
	}{
		{"no record", "", ""},
		{"y's own ownership record", claimName, ""}, // value filled below
		{"y's claim record for its own domain", claimName, func() string { _, v := value(platform.ClaimRecord(y.id, y.domain)); return v }()},
		{"the third project's claim record", claimName, func() string { _, v := value(platform.ClaimRecord(z.id, y.domain)); return v }()},
		{"x's claim record for its own domain", claimName, func() string { _, v := value(platform.ClaimRecord(x.id, x.domain)); return v }()},
		{"x's claim record at a name under the domain", "_spine-challenge.x." + y.domain, claimValue},
		{"x's claim record at x's own name", "_spine-challenge." + x.domain, claimValue},
		{"x's claim record without the label", y.domain, claimValue},
		{"x's claim record as a prefix", claimName, claimValue + "x"},
	}
	if y.verifyRecord != "" {
		_, attempts[1].value = value(y.verifyRecord)
	} else {
		attempts = slices.Delete(attempts, 1, 2)
	}
	for _, at := range attempts {
		if at.name != "" {
			ts.dns.SetTXT(at.name, at.value)
		}
		for _, d := range []string{y.domain, strings.ToUpper(y.domain) + "."} {
			code, out := verify(t, "/v1/domains/"+d+"/verify", at.value)
			// The refusal must come from a lookup that ran: it names x's
			// claim record and what DNS held, not a resolver failure.
			if code != 409 || !strings.Contains(out, "domain_taken") || !strings.Contains(out, claimValue) || strings.Contains(out, "resolver") {
				t.Errorf("%s verifies %s's %s with %s: %d %s; want 409 domain_taken after a lookup", x.name, y.name, d, at.what, code, out)
			}
		}
		if at.name != "" {
			ts.dns.SetTXT(at.name)
		}
	}
	if after := stateOf(t, y); after != before {
		t.Errorf("%s's state changed under %s's verifications:\nbefore %s\nafter  %s", y.name, x.name, before, after)
	}

	// Control: with its claim record in place, x takes a domain of y's over.
	spare := strings.ToLower("claim-" + y.name + "-by-" + x.name + ".test")
	if _, err := ts.n.Platform().AddDomain(ctx, y.id, spare, true); err != nil {
		t.Fatal(err)
	}
	rec, val := value(platform.ClaimRecord(x.id, spare))
	ts.dns.SetTXT(rec, val)
	defer ts.dns.SetTXT(rec)
	d, err := x.c.VerifyDomain(ctx, spare)
	if err != nil || !d.Moved || d.Status != "verified" {
		t.Fatalf("control: %s's proven claim on %s's %s: %+v, %v", x.name, y.name, spare, d, err)
	}
	if _, err := y.c.Domain(ctx, spare); !client.IsCode(err, "not_found") {
		t.Errorf("control: %s still reads %s after %s took it over: %v", y.name, spare, x.name, err)
	}
	if err := x.c.RemoveDomain(ctx, spare); err != nil {
		t.Errorf("control: %s removing %s: %v", x.name, spare, err)
	}
}

// seriesNames returns the label sets of the metrics page p (the names and
// labels of its series, without values).
func seriesNames(p string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(p, "\n") {
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "go_") || strings.HasPrefix(line, "process_") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			out[line[:i]] = true
		}
	}
	return out
}
