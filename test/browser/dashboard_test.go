package browser

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/pebbletest"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the overview at 1440 px, with a domain waiting, to docs/img/dashboard-overview.png")

// TestDashboardInChromium uses the dashboard as a person does, in a
// headless Chromium driven over the DevTools protocol (chromedp) that
// trusts Spine's root in its NSS database: it signs in with the link
// `spine up` prints, adds a domain and reads the record to create,
// creates a service, watches its hostname turn active on the open page
// (no reload) once the domain is verified, opens the hostname's HTTPS URL
// in the same browser with no certificate error, inspects it, visits every
// page at 1440 and 360 px (a screenshot of each in $SPINE_ARTIFACTS),
// reaches the first control with the keyboard, checks the contrast of
// every text and control of every page it shows against WCAG 2.x's
// minimum (4.5:1, 3:1 for large text and controls), and signs out. Any console
// error, uncaught exception or CSP violation fails it.
func TestDashboardInChromium(t *testing.T) {
	chromiumPath := need(t, "chromium", "chromium")
	certutil := need(t, "certutil", "libnss3-tools")
	dir := t.TempDir()
	dns := pebbletest.StartDNS(t)
	n, err := node.Start(context.Background(), config.Config{
		DataDir: filepath.Join(dir, "data"), Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Version: "test",
		ACME:   certs.ACMEConfig{Resolver: dns.Addr},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New("http://"+n.APIAddr(), strings.TrimSpace(string(tok)))

	home := filepath.Join(dir, "home")
	nss := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(nss, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-d", "sql:" + nss, "-N", "--empty-password"},
		{"-d", "sql:" + nss, "-A", "-n", "Spine test root", "-t", "C,,", "-i", filepath.Join(dir, "data", "ca", "root.pem")},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<!doctype html><title>shop</title><p>the shop's upstream</p>")
	}))
	defer shop.Close()

	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-features", "HttpsUpgrades,Translate"),
		// shop.test is a name of this test's DNS only: the browser sends it to the edge.
		chromedp.Flag("host-resolver-rules", "MAP *.test 127.0.0.1"),
		chromedp.Flag("user-data-dir", filepath.Join(home, "profile")),
		chromedp.Env("HOME="+home),
	)...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()

	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// The refused form (a bad upstream) answers 400, as the API does,
			// and Chromium notes any 4xx document in its log: that one entry
			// is expected; any other fails the test.
			if m.Source == "network" && strings.Contains(m.Text, "status of 400") && strings.HasSuffix(m.URL, "/ui/services") {
				continue
			}
			if m.Type == "error" || m.Type == "warning" || m.IsException() {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
				mu.Unlock()
			}
		}
	}()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	artifacts := os.Getenv("SPINE_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	}
	artifacts = filepath.Join(artifacts, "dashboard")
	os.MkdirAll(artifacts, 0o755)
	shoot := func(name string) {
		t.Helper()
		for _, w := range []int64{1440, 360} {
			do("viewport", chromedp.EmulateViewport(w, 900))
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("screenshot of %s at %d px: %v", name, w, err)
			}
			if err := os.WriteFile(filepath.Join(artifacts, fmt.Sprintf("%s-%d.png", name, w)), png, 0o644); err != nil {
				t.Fatal(err)
			}
			// Readable contrast (WCAG 2.x) of every text and control as shown.
			checkContrast(t, ctx, fmt.Sprintf("%s at %d px", name, w))
			if w == 360 {
				// Nothing wider than the screen: no sideways scrolling at 360 px.
				if wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth + 1`)); err != nil || wide {
					t.Errorf("%s at 360 px is wider than the screen (%v)", name, err)
				}
			}
		}
		do("viewport", chromedp.EmulateViewport(1440, 900))
	}
	base := n.DashboardURL()

	// Sign in with the one-time link, as `spine up` prints it.
	link, err := n.SignInURL()
	if err != nil {
		t.Fatal(err)
	}
	do("signing in", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS(`.tiles`)))
	if h := text("h1"); h != "Overview" {
		t.Fatalf("after the sign-in link: %q", h)
	}
	// The keyboard reaches the skip link first, then the navigation.
	do("tab", chromedp.KeyEvent("\t"))
	if cls, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className`)); err != nil || cls != "skip" {
		t.Errorf("the first Tab focuses %q (%v), want the skip link", cls, err)
	}
	shoot("overview")

	// Add a domain: the page shows the record to create.
	do("adding a domain", chromedp.Navigate(base+"domains"), chromedp.WaitVisible(chromedp.CSS(`#add-domain`)),
		chromedp.SetValue(chromedp.CSS(`#f-name`), "shop.test"), chromedp.Click(chromedp.CSS(`#add-domain button`)),
		chromedp.WaitVisible(chromedp.CSS(`#rec-shop\.test`)))
	rec := text(`#rec-shop\.test`)
	d, err := admin.Domain(context.Background(), "shop.test")
	if err != nil || rec != d.VerifyRecord || !strings.HasPrefix(rec, "_spine-challenge.shop.test.") {
		t.Fatalf("the page shows the record %q; the API says %q (%v)", rec, d.VerifyRecord, err)
	}
	shoot("domains")

	// A bad upstream: the API's message next to the field.
	do("a bad service", chromedp.Navigate(base+"services"), chromedp.WaitVisible(chromedp.CSS(`#create-service`)),
		chromedp.SetValue(chromedp.CSS(`#f-name`), "shop"), chromedp.SetValue(chromedp.CSS(`#f-upstreams`), "ftp://nowhere"),
		chromedp.Click(chromedp.CSS(`#create-service button`)), chromedp.WaitVisible(chromedp.CSS(`#f-upstreams-error`)))
	shoot("services-refused")

	// Create the service, with a name under the domain not verified yet.
	do("creating a service", chromedp.SetValue(chromedp.CSS(`#f-upstreams`), shop.URL),
		chromedp.SetValue(chromedp.CSS(`#f-hosts`), "shop.shop.test"),
		chromedp.Click(chromedp.CSS(`#create-service button`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-host="shop.shop.test"]`)))
	if st := text(`[data-host="shop.shop.test"]`); st == "active" {
		t.Fatalf("shop.shop.test is active before its domain is verified")
	}
	shoot("service")
	// The page stays open: prove the domain, and the badge turns active
	// through the event stream, without a reload.
	do("marking the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	// The record is created; "Verify now" in a second tab of the same
	// browser (the same session) verifies the domain. The record goes in
	// once that tab shows the button: the node's domain checker (once a
	// minute) may verify the domain as soon as it is there, and a domains
	// page rendered after that has no button to click.
	name, value := zoneTXT(rec)
	tab, closeTab := chromedp.NewContext(ctx)
	// The overview meanwhile, with its problems: the README's picture.
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1440, 900), chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS(`.tiles`))); err != nil {
		t.Fatal(err)
	}
	if png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(filepath.Join(artifacts, "overview-problems-1440.png"), png, 0o644); err != nil {
		t.Fatal(err)
	} else if *updateScreenshot {
		if err := os.WriteFile("../../docs/img/dashboard-overview.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	verify := chromedp.CSS(`#domain-shop\.test form[action$="/verify"] button`)
	if err := chromedp.Do(tab, chromedp.Navigate(base+"domains"), chromedp.WaitVisible(verify)); err != nil {
		t.Fatalf("the domains page: %v", err)
	}
	dns.SetTXT(name, value)
	if err := chromedp.Do(tab, chromedp.Click(verify), chromedp.WaitVisible(chromedp.CSS(`#verify-result`))); err != nil {
		t.Fatalf("verify now: %v", err)
	}
	found, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(`#verify-result`)))
	if err != nil || !strings.Contains(found, "shop.test: verified") {
		t.Fatalf("verify now shows %q (%v)", found, err)
	}
	closeTab()
	if d, err := admin.Domain(context.Background(), "shop.test"); err != nil || d.Status != "verified" {
		t.Fatalf("shop.test after verify now: %+v %v", d, err)
	}
	do("waiting for active", chromedp.WaitVisible(chromedp.CSS(`.badge.active[data-host="shop.shop.test"]`)))
	if same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.notReloaded === true`)); err != nil || !same {
		t.Fatalf("the page was reloaded (%v)", err)
	}
	shoot("service-active")

	// The hostname's HTTPS URL, in the same browser, trusting Spine's root.
	_, port, _ := net.SplitHostPort(n.HTTPSAddr())
	do("opening the service", chromedp.Navigate("https://shop.shop.test:"+port+"/"), chromedp.WaitVisible(chromedp.CSS(`p`)))
	if got := text("p"); got != "the shop's upstream" {
		t.Fatalf("https://shop.shop.test:%s/ showed %q", port, got)
	}

	// Every other page, with the hostname's inspection.
	do("hostname", chromedp.Navigate(base+"hostnames/shop.shop.test"), chromedp.WaitVisible(chromedp.CSS(`h1`)),
		chromedp.Click(chromedp.CSS(`form[action$="/inspect"] button`)), chromedp.WaitVisible(chromedp.CSS(`#inspect-summary`)))
	if s := text(`#inspect-summary`); !strings.Contains(strings.ToLower(s), "ok") && !strings.Contains(s, "works") && !strings.Contains(s, "trusted") {
		t.Logf("inspection summary: %s", s)
	}
	shoot("hostname")
	for _, p := range []string{"services", "hostnames", "events", "tokens", "webhooks", "operator"} {
		do(p, chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS(`h1`)))
		if h := text("h1"); !strings.EqualFold(h, p) {
			t.Errorf("/ui/%s shows %q", p, h)
		}
		shoot(p)
	}
	do("overview again", chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS(`.tiles`)))
	shoot("overview-after")

	// Sign out: the dashboard asks for a token again.
	do("signing out", chromedp.Click(chromedp.CSS(`form[action="/ui/signout"] button`)), chromedp.WaitVisible(chromedp.CSS(`#token`)))
	shoot("signin")
	do("after signing out", chromedp.Navigate(base+"services"), chromedp.WaitVisible(chromedp.CSS(`#token`)))

	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("console: %s", p)
	}
	t.Logf("screenshots in %s", artifacts)
}

// zoneTXT returns the name and value of a zone-file TXT line.
func zoneTXT(line string) (name, value string) {
	f := strings.Fields(line)
	if len(f) < 2 {
		return "", ""
	}
	return strings.TrimSuffix(f[0], "."), strings.Trim(f[len(f)-1], `"`)
}
