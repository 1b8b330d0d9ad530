package security

import (
	"bufio"
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/platform"
)

// dashboardRoutes returns every route pattern package dashboard registers
// (its handle("...") calls), as apiRoutes does for package api.
func dashboardRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "dashboard", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("finding package dashboard's sources: %v", err)
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
			if !ok || len(call.Args) != 2 {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "handle" {
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
		t.Fatalf("found only %d dashboard routes in the sources: %v", len(routes), routes)
	}
	return routes
}

// uiSession is a browser signed in to the dashboard with one project's
// token: its cookie jar and the session's CSRF token.
type uiSession struct {
	c    *http.Client
	base string // http://API
	csrf string
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func signInUI(t *testing.T, base, tok string) *uiSession {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	s := &uiSession{base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	_, page := s.call(t, "GET", "/ui/signin", nil)
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field on the sign-in page: %s", page)
	}
	if code, out := s.call(t, "POST", "/ui/signin", url.Values{"csrf": {m[1]}, "token": {tok}}); code != http.StatusSeeOther {
		t.Fatalf("signing in: %d %s", code, out)
	}
	code, page := s.call(t, "GET", "/ui/", nil)
	if m = csrfInput.FindStringSubmatch(page); code != 200 || m == nil {
		t.Fatalf("the overview after signing in: %d %s", code, page)
	}
	s.csrf = m[1]
	return s
}

// call sends a request with the session's cookie; a form gets its CSRF token.
func (s *uiSession) call(t *testing.T, method, path string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		if s.csrf != "" && form.Get("csrf") == "" {
			form.Set("csrf", s.csrf)
		}
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDashboardTenantIsolation signs each project in to the dashboard and
// calls every dashboard route, found in package dashboard's sources, on
// each other project's objects (six directions), as TestAPITenantIsolation
// does for the API: a session reads nothing of another project's and
// changes nothing of it. A route without a case fails the test.
func TestDashboardTenantIsolation(t *testing.T) {
	ts := startTenants(t)
	base := "http://" + ts.n.APIAddr()
	before := map[*tenant]string{}
	for _, tn := range ts.all {
		before[tn] = stateOf(t, tn)
	}
	routes := dashboardRoutes(t)
	for _, x := range ts.all {
		s := signInUI(t, base, x.token)
		for _, y := range ts.all {
			if x == y {
				continue
			}
			t.Run(x.name+" on "+y.name, func(t *testing.T) {
				cases := dashboardCases(t, ts, s, x, y, secretsOf(t, y))
				for _, r := range routes {
					t.Run(r, func(t *testing.T) {
						tc := cases[r]
						if tc == nil {
							t.Fatalf("dashboard route %q has no cross-tenant case: add one to dashboardCases", r)
						}
						tc(t)
					})
				}
				for r := range cases {
					if !slices.Contains(routes, r) {
						t.Errorf("case %q names no route of package dashboard", r)
					}
				}
			})
		}
	}

	t.Run("without a session", func(t *testing.T) {
		anon := &uiSession{base: base, c: &http.Client{Timeout: 30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		for _, r := range routes {
			method, path, ok := strings.Cut(r, " ")
			if !ok {
				method, path = "GET", r
			}
			if strings.HasPrefix(path, "/ui/assets/") || strings.HasPrefix(path, "/ui/signin") || path == "/ui/signout" {
				continue // public: the sign-in form, its assets, signing out
			}
			path = strings.NewReplacer("{$}", "", "{name}", "a", "{host}", "a.localhost", "{id}", "x").Replace(path)
			var form url.Values
			if method == "POST" {
				form = url.Values{"name": {"x"}}
			}
			for _, cookie := range []string{"", "spine_session=forged"} {
				req, _ := http.NewRequest(method, base+path, strings.NewReader(form.Encode()))
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				resp, err := anon.c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if method == "GET" && path != "/ui/events/stream" && path != "/ui/nowhere" {
					if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/signin") {
						t.Errorf("%s %s (cookie %q): %d to %q, want 303 to the sign-in page", method, path, cookie, resp.StatusCode, resp.Header.Get("Location"))
					}
				} else if resp.StatusCode != http.StatusUnauthorized && !(r == "/ui/" && resp.StatusCode == http.StatusSeeOther) {
					t.Errorf("%s %s (cookie %q): %d, want 401", method, path, cookie, resp.StatusCode)
				}
			}
		}
	})

	for _, tn := range ts.all {
		if after := stateOf(t, tn); after != before[tn] {
			t.Errorf("%s's state changed under the other projects' sessions:\nbefore %s\nafter  %s", tn.name, before[tn], after)
		}
	}
	reportf(t, "%d dashboard routes called in each of 3 projects' sessions on each other's objects, 6 directions: %s",
		len(routes), strings.Join(routes, ", "))
}

// dashboardCases returns, for each dashboard route, a check that x's
// session shows nothing of y's and changes nothing of it.
func dashboardCases(t *testing.T, ts *tenants, s *uiSession, x, y *tenant, secrets []*regexp.Regexp) map[string]func(*testing.T) {
	as := func(t *testing.T, method, path string, form url.Values) (int, string) {
		t.Helper()
		code, out := s.call(t, method, path, form)
		sent := path // and what x typed, which the page may show back
		for _, vs := range form {
			sent += " " + strings.Join(vs, " ")
		}
		for _, re := range secrets {
			if x.id == platform.DefaultProjectID && path == "/ui/operator" && strings.Contains(re.String(), regexp.QuoteMeta(y.id)) {
				continue // the operator's page lists the projects
			}
			if re.MatchString(out) && !re.MatchString(sent) {
				t.Errorf("%s's %s %s shows %s's %s", x.name, method, path, y.name, re.FindString(out))
			}
		}
		return code, out
	}
	ok := func(t *testing.T, path string) string {
		t.Helper()
		code, out := as(t, "GET", path, nil)
		if code != 200 {
			t.Errorf("%s's GET %s: %d %s", x.name, path, code, out)
		}
		return out
	}
	refused := func(t *testing.T, method, path string, form url.Values, codes ...int) {
		t.Helper()
		if code, out := as(t, method, path, form); !slices.Contains(codes, code) {
			t.Errorf("%s's %s %s %v: %d; want one of %v\n%s", x.name, method, path, form, code, codes, out)
		}
	}
	up := x.rec.url()
	return map[string]func(*testing.T){
		"GET /ui/assets/": func(t *testing.T) { ok(t, "/ui/assets/app.js") },
		"GET /ui/signin":  func(t *testing.T) { ok(t, "/ui/signin") },
		"POST /ui/signin": func(t *testing.T) {
			// y's token typed into x's browser signs it in as y, not x: the
			// session is the token's, and a wrong one is refused.
			refused(t, "POST", "/ui/signin", url.Values{"token": {y.token + "x"}}, 401, 403)
		},
		"POST /ui/signout": func(t *testing.T) {
			// Signing out needs the session's own CSRF token.
			refused(t, "POST", "/ui/signout", url.Values{"csrf": {"not-it"}}, 403)
		},
		"GET /ui/{$}": func(t *testing.T) { ok(t, "/ui/") },
		"GET /ui/services": func(t *testing.T) {
			ok(t, "/ui/services")
			ok(t, "/ui/services?q="+url.QueryEscape(y.host))
		},
		"POST /ui/services": func(t *testing.T) {
			for _, f := range []url.Values{
				{"name": {"x"}, "domain": {y.domain}, "upstreams": {up}},
				{"name": {"x"}, "hosts": {y.host}, "upstreams": {up}},
				{"name": {"x"}, "hosts": {strings.ToUpper(y.host) + "."}, "upstreams": {up}},
				{"name": {"x"}, "hosts": {"new." + y.domain}, "upstreams": {up}},
			} {
				refused(t, "POST", "/ui/services", f, 400, 409)
			}
		},
		"GET /ui/services/{name}": func(t *testing.T) {
			refused(t, "GET", "/ui/services/"+y.service, nil, 404)
			refused(t, "GET", "/ui/services/"+strings.ToUpper(y.service), nil, 404)
		},
		"POST /ui/services/{name}": func(t *testing.T) {
			refused(t, "POST", "/ui/services/"+y.service, url.Values{"upstreams": {up}}, 404, 400)
			refused(t, "POST", "/ui/services/"+x.service, url.Values{"add_hosts": {y.host}}, 400, 409)
		},
		"POST /ui/services/{name}/delete": func(t *testing.T) {
			refused(t, "POST", "/ui/services/"+y.service+"/delete", url.Values{}, 404)
		},
		"GET /ui/hostnames": func(t *testing.T) {
			if out := ok(t, "/ui/hostnames?q="+url.QueryEscape(y.host)); !strings.Contains(out, "0 hostnames") {
				t.Errorf("%s's search for %s found something", x.name, y.host)
			}
		},
		"GET /ui/hostnames/{host}": func(t *testing.T) { refused(t, "GET", "/ui/hostnames/"+y.host, nil, 404) },
		"POST /ui/hostnames/{host}/inspect": func(t *testing.T) {
			refused(t, "POST", "/ui/hostnames/"+y.host+"/inspect", url.Values{}, 404)
		},
		"GET /ui/domains": func(t *testing.T) {
			if out := ok(t, "/ui/domains"); strings.Contains(out, ">"+y.domain+" ") {
				t.Errorf("%s's domains page lists %s", x.name, y.domain)
			}
		},
		"POST /ui/domains": func(t *testing.T) {
			for _, d := range []string{y.domain, strings.ToUpper(y.domain) + ".", "new." + y.domain} {
				refused(t, "POST", "/ui/domains", url.Values{"name": {d}}, 400, 409)
			}
		},
		"POST /ui/domains/{name}/verify": func(t *testing.T) {
			refused(t, "POST", "/ui/domains/"+y.domain+"/verify", url.Values{}, 404, 409)
		},
		"POST /ui/domains/{name}/delete": func(t *testing.T) {
			refused(t, "POST", "/ui/domains/"+y.domain+"/delete", url.Values{}, 404)
		},
		"GET /ui/events": func(t *testing.T) { ok(t, "/ui/events") },
		"GET /ui/events/stream": func(t *testing.T) {
			out := uiStreamOpening(t, s)
			for _, re := range secrets {
				if re.MatchString(out) {
					t.Errorf("%s's event stream shows %s's %s", x.name, y.name, re.FindString(out))
				}
			}
			if strings.Contains(out, `"project":"`+y.id+`"`) {
				t.Errorf("%s's event stream holds %s's events", x.name, y.name)
			}
		},
		"GET /ui/tokens": func(t *testing.T) {
			if out := ok(t, "/ui/tokens"); strings.Contains(out, "only-"+strings.ToLower(y.name)) {
				t.Errorf("%s's tokens page lists %s's token", x.name, y.name)
			}
		},
		"POST /ui/tokens": func(t *testing.T) {
			// Made in x's own project, shown once to x; revoked again.
			name := "ui-made-by-" + strings.ToLower(x.name)
			if code, out := as(t, "POST", "/ui/tokens", url.Values{"name": {name}, "scopes": {"read"}}); code != 201 {
				t.Fatalf("%s making a token: %d %s", x.name, code, out)
			}
			if yts, err := y.c.Tokens(context.Background()); err != nil || slices.ContainsFunc(yts, func(tk client.Token) bool { return tk.Name == name }) {
				t.Errorf("%s's new token shows in %s's list: %v %v", x.name, y.name, yts, err)
			}
			if code, out := as(t, "POST", "/ui/tokens/"+name+"/revoke", url.Values{}); code != http.StatusSeeOther {
				t.Errorf("%s revoking its own token: %d %s", x.name, code, out)
			}
		},
		"POST /ui/tokens/{name}/revoke": func(t *testing.T) {
			refused(t, "POST", "/ui/tokens/only-"+strings.ToLower(y.name)+"/revoke", url.Values{}, 400, 404)
		},
		"GET /ui/webhooks": func(t *testing.T) { ok(t, "/ui/webhooks") },
		"POST /ui/webhooks": func(t *testing.T) {
			refused(t, "POST", "/ui/webhooks", url.Values{"url": {"ftp://" + y.host}}, 400)
		},
		"POST /ui/webhooks/{id}/delete": func(t *testing.T) {
			refused(t, "POST", "/ui/webhooks/"+y.webhook+"/delete", url.Values{}, 404)
		},
		"POST /ui/webhooks/{id}/test": func(t *testing.T) {
			refused(t, "POST", "/ui/webhooks/"+y.webhook+"/test", url.Values{}, 404)
		},
		"GET /ui/operator": func(t *testing.T) {
			if x.id == platform.DefaultProjectID {
				ok(t, "/ui/operator")
				return
			}
			refused(t, "GET", "/ui/operator", nil, 403)
		},
		"/ui/": func(t *testing.T) { refused(t, "GET", "/ui/nowhere/"+y.service, nil, 404) },
	}
}

// uiStreamOpening reads the dashboard's event stream from the project's
// first event up to the stream's catching up (its first heartbeat-free
// pause is not waited for: it reads what GET /v1/events lists, then ends).
func uiStreamOpening(t *testing.T, s *uiSession) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The last event ID the session's project has, from the events page.
	_, page := s.call(t, "GET", "/ui/events", nil)
	last := ""
	if m := regexp.MustCompile(`<tr><td>(\d+)</td>`).FindStringSubmatch(page); m != nil {
		last = m[1]
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", s.base+"/ui/events/stream?after=0", nil)
	resp, err := s.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the dashboard's event stream: %d", resp.StatusCode)
	}
	var out strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if last == "" && line == "" { // no event: the opening is all
			return out.String()
		}
		if line == fmt.Sprintf("id: %s", last) {
			return out.String()
		}
	}
	t.Fatalf("the dashboard's event stream ended before event %s: %q", last, out.String())
	return ""
}
