package dashboard_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/node/config"
)

type spine struct {
	n     *node.Node
	base  string // http://API/ui/
	token string
	admin *client.Client
}

func start(t *testing.T) *spine {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, config.Config{
		DataDir: dir, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	s := &spine{n: n, base: n.DashboardURL(), token: strings.TrimSpace(string(tok))}
	s.admin = client.New("http://"+n.APIAddr(), s.token)
	return s
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, u string, form url.Values, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in the page: %s", page)
	}
	return m[1]
}

// signIn signs b in with tok through the form and returns the overview.
func (s *spine) signIn(t *testing.T, b *browser, tok string) string {
	t.Helper()
	_, page := b.do("GET", s.base+"signin", nil)
	resp, out := b.do("POST", s.base+"signin", url.Values{"csrf": {csrfOf(t, page)}, "token": {tok}, "next": {"/ui/"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing in: %d %s", resp.StatusCode, out)
	}
	resp, out = b.do("GET", s.base, nil)
	if resp.StatusCode != 200 || !strings.Contains(out, "<h1>Overview</h1>") {
		t.Fatalf("overview after signing in: %d %s", resp.StatusCode, out)
	}
	return out
}

func TestSignInSessionAndSignOut(t *testing.T) {
	s := start(t)
	b := newBrowser(t)

	resp, _ := b.do("GET", s.base, nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/ui/signin") {
		t.Fatalf("the overview without a session: %d to %q, want 303 to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := b.do("GET", s.base+"signin", nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	// The form refuses a post without its CSRF token (login CSRF).
	if resp, _ := b.do("POST", s.base+"signin", url.Values{"token": {s.token}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in without the form's CSRF token: %d, want 403", resp.StatusCode)
	}
	_, page = b.do("GET", s.base+"signin", nil)
	resp, out := b.do("POST", s.base+"signin", url.Values{"csrf": {csrfOf(t, page)}, "token": {"spine_wrong"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(out, `class="field-error" id="token-error">the API token is not valid`) {
		t.Errorf("a wrong token: %d, want 401 and the API's message next to the field: %s", resp.StatusCode, out)
	}

	overview := s.signIn(t, b, s.token)
	var session *http.Cookie
	u, _ := url.Parse(s.base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "spine_session" {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after signing in")
	}
	if strings.Contains(overview, s.token) {
		t.Error("the page shows the token")
	}

	// A form without the session's CSRF token changes nothing.
	resp, _ = b.do("POST", s.base+"services", url.Values{"name": {"nocsrf"}, "upstreams": {"http://127.0.0.1:9"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a form without its CSRF token: %d, want 403", resp.StatusCode)
	}
	if _, err := s.admin.Service(context.Background(), "nocsrf"); !client.IsCode(err, "service_not_found") && err == nil {
		t.Errorf("the service was created without a CSRF token")
	}

	// Sign out: the session is gone on the server, not only in the browser.
	resp, _ = b.do("POST", s.base+"signout", url.Values{"csrf": {csrfOf(t, overview)}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing out: %d", resp.StatusCode)
	}
	replay := newBrowser(t)
	resp, _ = replay.do("GET", s.base, nil, "Cookie", "spine_session="+session.Value)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the signed-out session's cookie replayed: %d, want 303 to sign in", resp.StatusCode)
	}
}

func TestSignInLinkIsSingleUse(t *testing.T) {
	s := start(t)
	link, err := s.n.SignInURL()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(link, s.token) {
		t.Fatalf("the sign-in link holds the token: %s", link)
	}
	b := newBrowser(t)
	resp, _ := b.do("GET", link, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the sign-in link: %d", resp.StatusCode)
	}
	var cookie string
	for _, c := range resp.Cookies() {
		if c.Name == "spine_session" {
			cookie = c.Raw
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/ui/" {
				t.Errorf("session cookie %q: want HttpOnly, SameSite=Strict, Path=/ui/", c.Raw)
			}
		}
	}
	if cookie == "" {
		t.Fatal("the sign-in link set no session cookie")
	}
	if resp, out := b.do("GET", s.base, nil); resp.StatusCode != 200 || !strings.Contains(out, "Overview") {
		t.Fatalf("the overview after the link: %d", resp.StatusCode)
	}
	other := newBrowser(t)
	if resp, out := other.do("GET", link, nil); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(out, "used already or has expired") {
		t.Errorf("the link used a second time: %d %s", resp.StatusCode, out)
	}
}

func TestFormsShowTheAPIsRefusalNextToTheField(t *testing.T) {
	s := start(t)
	b := newBrowser(t)
	overview := s.signIn(t, b, s.token)
	csrf := csrfOf(t, overview)

	resp, out := b.do("POST", s.base+"services", url.Values{"csrf": {csrf}, "name": {"web"}, "upstreams": {"ftp://127.0.0.1:9000"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, `id="f-upstreams-error"`) {
		t.Errorf("a bad upstream: %d, want 400 with the message under the upstreams field: %s", resp.StatusCode, out)
	}
	_, err := s.admin.CreateService(context.Background(), client.ServiceCreate{Name: "web", Upstreams: []string{"ftp://127.0.0.1:9000"}})
	if err == nil || !strings.Contains(out, template(err.(*client.Error).Message)) {
		t.Errorf("the page does not show the API's own message %v: %s", err, out)
	}
	if !strings.Contains(out, `value="web"`) {
		t.Error("the form lost what was typed")
	}

	resp, out = b.do("POST", s.base+"services", url.Values{"csrf": {csrf}, "name": {"web"}, "upstreams": {"http://127.0.0.1:9000"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/services/web" {
		t.Fatalf("creating a service: %d %s", resp.StatusCode, out)
	}
	if _, page := b.do("GET", s.base+"services/web", nil); !strings.Contains(page, "Service web created") || !strings.Contains(page, `data-host="web.localhost"`) {
		t.Errorf("the service's page: %s", page)
	}
	// The change is the API's: audited under the token's name.
	entries, err := s.admin.Audit(context.Background(), client.AuditQuery{})
	if err != nil || len(entries) == 0 || entries[0].Action != "service.create" || entries[0].Result != "ok" || entries[0].Token != "admin" {
		t.Errorf("the audit trail's last entry: %+v %v", entries, err)
	}

	// Bearer works without a session or a CSRF token.
	bb := newBrowser(t)
	if resp, out := bb.do("GET", s.base+"hostnames?q=web", nil, "Authorization", "Bearer "+s.token); resp.StatusCode != 200 || !strings.Contains(out, "web.localhost") {
		t.Errorf("the hostnames page with a Bearer token: %d %s", resp.StatusCode, out)
	}
}

// template escapes s as html/template shows it in text.
func template(s string) string {
	return strings.NewReplacer(`"`, "&#34;", "'", "&#39;", "<", "&lt;", ">", "&gt;", "&", "&amp;").Replace(s)
}
