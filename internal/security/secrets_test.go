package security

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/dnsserver"
	"github.com/spine-platform/spine/internal/logging"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/pebbletest"
	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// hygiene collects everything a user or an operator sees, the secrets that
// must never be in it, and the CLI commands driven so far.
type hygiene struct {
	bin      string
	commands []string          // every runnable command, from `spine __commands`
	covered  map[string]bool   // commands with a driven case
	secrets  map[string]string // value -> what it is
	seen     []output
	dns      *pebbletest.DNS // every server's resolver
	up       string          // an upstream that answers
}

type output struct{ what, text string }

func (h *hygiene) add(what, text string) { h.seen = append(h.seen, output{what, text}) }

func (h *hygiene) secret(what, value string) { h.secrets[value] = what }

// cover marks the command that args run as driven.
func (h *hygiene) cover(args []string) {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		words = append(words, a)
	}
	for i := len(words); i > 0; i-- {
		if path := strings.Join(words[:i], " "); slices.Contains(h.commands, path) {
			h.covered[path] = true
			return
		}
	}
}

// scan fails the test for every output that shows a private key or a
// secret.
func (h *hygiene) scan(t *testing.T) {
	t.Helper()
	for _, out := range h.seen {
		if strings.Contains(out.text, "PRIVATE KEY") {
			t.Errorf("%s shows a private key", out.what)
		}
		for v, name := range h.secrets {
			if strings.Contains(out.text, v) {
				t.Errorf("%s shows %s", out.what, name)
			}
		}
	}
}

// cliCase is one CLI command and what it must do.
type cliCase struct {
	args   []string
	env    []string
	ok     bool   // it must succeed (else: it must fail)
	want   string // its stdout must show this when it succeeds
	before func(t *testing.T)
}

// byoFiles are the files of `cert upload` cases: a chain for host, its
// key, another key and the root, written by write (the key registered as
// a secret).
type byoFiles struct {
	chain, key, other, root string
	write                   func(t *testing.T)
}

func (h *hygiene) byoFiles(dir, host string) byoFiles {
	f := byoFiles{chain: filepath.Join(dir, "chain.pem"), key: filepath.Join(dir, "key.pem"),
		other: filepath.Join(dir, "other.pem"), root: filepath.Join(dir, "root.pem")}
	f.write = func(t *testing.T) {
		pki := pkitest.NewRoot("Hygiene CLI Root")
		leaf := pki.Issue(pkitest.Leaf{DNSNames: []string{host}})
		other := pki.Issue(pkitest.Leaf{DNSNames: []string{host}})
		h.secret("an uploaded certificate's private key (CLI)", keyBody(leaf.KeyPEM))
		h.secret("a refused upload's private key (CLI)", keyBody(other.KeyPEM))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for path, b := range map[string][]byte{f.chain: leaf.ChainPEM, f.key: leaf.KeyPEM, f.other: other.KeyPEM, f.root: pki.RootPEM()} {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

// keyBody is the first line of a PEM key's base64, which no output may show.
func keyBody(keyPEM []byte) string {
	lines := strings.Split(string(keyPEM), "\n")
	return lines[1]
}

// domainOf is the operator's first verified domain.
func (h *hygiene) domainOf(t *testing.T, c *client.Client) string {
	t.Helper()
	ds, err := c.Domains(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Status == "verified" {
			return d.Name
		}
	}
	t.Fatal("the operator has no verified domain")
	return ""
}

// cli runs each case against p and checks its exit status.
func (h *hygiene) cli(t *testing.T, p *proc, cases []cliCase) {
	t.Helper()
	for _, c := range cases {
		if c.before != nil {
			c.before(t)
		}
		o, e, err := p.cli(t, c.env, c.args...)
		name := "spine " + strings.Join(c.args, " ")
		h.add(name+" (stdout)", o)
		h.add(name+" (stderr)", e)
		h.cover(c.args)
		var exit *exec.ExitError
		switch {
		case err != nil && !errors.As(err, &exit):
			t.Fatalf("%s: %v", name, err)
		case c.ok && err != nil:
			t.Errorf("%s failed, want success: %v\n%s%s", name, err, o, e)
		case !c.ok && err == nil:
			t.Errorf("%s succeeded, want a failure:\n%s", name, o)
		case !c.ok && strings.TrimSpace(e) == "":
			t.Errorf("%s failed without a message", name)
		case c.ok && !strings.Contains(o, c.want):
			t.Errorf("%s: output lacks %q:\n%s", name, c.want, o)
		}
	}
}

// run runs the binary without a server and returns its exit error.
func (h *hygiene) run(t *testing.T, env []string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.bin, args...)
	cmd.Env = append(append(os.Environ(), "SPINE_TOKEN=", "SPINE_API=", "SPINE_DATA=", "SPINE_STORE=", "SPINE_ACME_EAB_HMAC="), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	name := "spine " + strings.Join(args, " ")
	h.add(name+" (stdout)", o.String())
	h.add(name+" (stderr)", e.String())
	h.cover(args)
	return err
}

// verifyTXT publishes the ownership record of domain, as its owner would.
func (h *hygiene) verifyTXT(t *testing.T, c *client.Client, domain string) {
	t.Helper()
	d, err := c.Domain(t.Context(), domain)
	if err != nil {
		t.Fatalf("reading domain %s: %v", domain, err)
	}
	f := strings.Fields(d.VerifyRecord)
	if len(f) < 2 {
		t.Fatalf("domain %s: verify record %q", domain, d.VerifyRecord)
	}
	h.dns.SetTXT(f[0], strings.Trim(f[len(f)-1], `"`))
}

// commonCLI are the commands driven against every server whose project
// serves domain. wait: the server's names resolve here (`--wait` works).
func (h *hygiene) commonCLI(p *proc, domain string, wait bool) []cliCase {
	admin := func(t *testing.T) *client.Client { return p.admin(t) }
	byo := h.byoFiles(filepath.Join(filepath.Dir(p.data), "byo"), "byo."+domain)
	web2 := cliCase{args: []string{"service", "create", "web2", "--upstream", h.up}, ok: true, want: "web2." + domain}
	if wait {
		web2 = cliCase{args: []string{"service", "create", "web2", "--upstream", h.up, "--wait", "--timeout", "20s"}, ok: true, want: "is served over HTTPS"}
	}
	webUpdate := cliCase{args: []string{"service", "update", "web", "--remove-host", "extra." + domain, "-o", "json"}, ok: true, want: `"health_path": "/up"`}
	if wait {
		webUpdate = cliCase{args: []string{"service", "update", "web", "--remove-host", "extra." + domain, "--wait", "--timeout", "20s"}, ok: true, want: "no longer served"}
	}
	return []cliCase{
		{args: []string{"version"}, ok: true, want: "server "},
		{args: []string{"ca", "root"}, ok: true, want: "BEGIN CERTIFICATE"},
		{args: []string{"ech", "config", "app.example.com"}, ok: true, want: "app.example.com. 300 IN HTTPS 1 . "},
		// The browsers' store of a home folder of the test's; the system's is left alone.
		{args: []string{"ca", "trust", "--no-system", "--home", filepath.Join(filepath.Dir(p.data), "trust-home")}, ok: true, want: ": added"},
		{args: []string{"ca", "trust", "--no-system", "--home", filepath.Join(filepath.Dir(p.data), "trust-home")}, ok: true, want: "already there"},
		{args: []string{"ca", "untrust", "--no-system", "--home", filepath.Join(filepath.Dir(p.data), "trust-home")}, ok: true, want: ": removed"},
		{args: []string{"ca", "trust", "--root", "/nonexistent.pem"}},
		{args: []string{"ca", "untrust", "--system-dir", filepath.Dir(p.data)}},
		{args: []string{"domain", "list"}, ok: true, want: domain},
		{args: []string{"domain", "list", "-o", "json"}, ok: true, want: `"` + domain + `"`},
		{args: []string{"domain", "add", "hygiene.test"}, ok: true, want: "pending_verification"},
		{args: []string{"domain", "add", "hygiene.test"}},
		{args: []string{"domain", "verify", "hygiene.test"}, ok: true, want: "verified",
			before: func(t *testing.T) { h.verifyTXT(t, admin(t), "hygiene.test") }},
		{args: []string{"domain", "remove", "hygiene.test"}, ok: true, want: "removed"},
		{args: []string{"domain", "remove", "nothere.test"}},
		{args: []string{"domain", "verify", "nothere.test"}},
		{args: []string{"domain", "add", "bad..name"}},
		{args: []string{"service", "create", "web", "--upstream", h.up}, ok: true, want: "web." + domain},
		{args: []string{"service", "create", "web", "--upstream", h.up}},
		{args: []string{"service", "create", "bad", "--upstream", "ftp://x"}},
		{args: []string{"service", "create", "loop", "--upstream", "https://" + p.https}},
		{args: []string{"service", "create", "creds", "--upstream", "http://user:hunter2@127.0.0.1:9"}},
		web2,
		{args: []string{"service", "list"}, ok: true, want: "web2." + domain},
		{args: []string{"service", "list", "-o", "json"}, ok: true, want: `"web2"`},
		{args: []string{"service", "update", "web", "--upstream", h.up, "--add-host", "extra." + domain, "--health-path", "/up", "--health-interval", "5s"}, ok: true, want: "extra." + domain},
		webUpdate,
		{args: []string{"service", "update", "web", "--upstream", "http://user:hunter2@127.0.0.1:9"}},
		{args: []string{"service", "update", "web", "--upstream", "https://" + p.https}},
		{args: []string{"service", "update", "nothere", "--hsts-max-age", "0"}},
		{args: []string{"service", "show", "web"}, ok: true, want: "web." + domain},
		{args: []string{"service", "show", "web", "-o", "json"}, ok: true, want: `"web"`},
		{args: []string{"service", "show", "nothere"}},
		{args: []string{"service", "delete", "web"}, ok: true, want: "deleted"},
		{args: []string{"service", "delete", "web"}},
		{args: []string{"cert", "list"}, ok: true, want: "web2." + domain},
		{args: []string{"cert", "list", "-o", "json"}, ok: true, want: `"web2.` + domain + `"`},
		{args: []string{"cert", "upload", "--host", "byo." + domain, "--cert", byo.chain, "--key", byo.other, "--root", byo.root}, before: byo.write},
		{args: []string{"cert", "upload", "--host", "byo." + domain, "--cert", byo.chain, "--key", byo.key, "--root", byo.root}, ok: true, want: "uploaded"},
		{args: []string{"cert", "list"}, ok: true, want: "uploaded"},
		{args: []string{"cert", "remove", "--host", "byo." + domain}, ok: true, want: "removed"},
		{args: []string{"cert", "remove", "--host", "byo." + domain}},
		{args: []string{"service", "create", "mtls", "--upstream", h.up, "--client-ca", byo.root, "--client-auth", "optional"}, ok: true, want: "client certificates"},
		{args: []string{"service", "update", "mtls", "--client-auth", "require"}, ok: true, want: "require"},
		{args: []string{"service", "update", "mtls", "--client-ca", byo.key}},
		{args: []string{"service", "delete", "mtls"}, ok: true, want: "deleted"},
		{args: []string{"events"}, ok: true, want: "service.created"},
		{args: []string{"events", "--after", "1", "--limit", "2", "-o", "json"}, ok: true, want: `"id": 2,`},
		{args: []string{"events", "--after", "-1"}},
		{args: []string{"events", "--limit", "x"}},
		{args: []string{"quota"}, ok: true, want: "hostnames"},
		{args: []string{"quota", "-o", "json"}, ok: true, want: `"usage"`},
		{args: []string{"quota", "show", "default"}, ok: true, want: "certificate orders per hour"},
		{args: []string{"quota", "set", "default", "--services", "400", "--domains", "0"}, ok: true, want: "own"},
		{args: []string{"quota", "set", "default", "--services", "default", "--domains", "default"}, ok: true, want: "default"},
		{args: []string{"quota", "set", "default"}},
		{args: []string{"quota", "show", "nobody"}},
		{args: []string{"nodes"}, ok: true, want: "(this)"},
		{args: []string{"nodes", "-o", "json"}, ok: true, want: `"self": true`},
		{args: []string{"service", "list", "-o", "yaml"}},
		{args: []string{"no-such-command"}},
		{args: []string{"service", "list"}, env: []string{"SPINE_TOKEN=" + wrongToken}},
		{args: []string{"help"}, ok: true, want: "Available Commands"},
		{args: []string{"completion", "bash"}, ok: true, want: "bash completion"},
		{args: []string{"completion", "zsh"}, ok: true, want: "zsh completion"},
		{args: []string{"completion", "fish"}, ok: true, want: "fish completion"},
		{args: []string{"completion", "powershell"}, ok: true, want: "powershell completion"},
		{args: []string{"token", "list"}, ok: true, want: "LAST USED"},
		{args: []string{"token", "list", "-o", "json"}, ok: true, want: `"scopes"`},
		{args: []string{"token", "create"}},
		{args: []string{"token", "create", "--name", "x", "--scope", "everything"}},
		{args: []string{"token", "create", "--name", "x", "--expires", "forever"}},
		{args: []string{"token", "revoke", "nothere"}},
		{args: []string{"project", "list"}, ok: true, want: "default"},
		{args: []string{"project", "list", "-o", "json"}, ok: true, want: `"default"`},
		{args: []string{"project", "suspend", "default"}},
		{args: []string{"project", "resume", "nothere"}},
		{args: []string{"project", "delete", "nothere"}},
		{args: []string{"audit"}, ok: true, want: "service.create"},
		{args: []string{"audit", "-o", "json", "--limit", "5"}, ok: true, want: `"action"`},
		{args: []string{"audit", "--limit", "0"}},
		{args: []string{"audit", "--project", "nothere"}},
	}
}

// inspectCLI inspects a service of `spine up` (names under localhost
// resolve to it): its report, with Spine's view read with the admin token
// (or refused for a wrong one), must never show the token.
func (h *hygiene) inspectCLI(p *proc) []cliCase {
	_, port, _ := net.SplitHostPort(p.https)
	u := "https://web2.localhost:" + port + "/"
	return []cliCase{
		{args: []string{"inspect", u}, ok: true, want: "Spine's view"},
		{args: []string{"inspect", u, "-o", "json"}, ok: true, want: `"renew_after"`},
		{args: []string{"inspect", u}, env: []string{"SPINE_TOKEN=" + wrongToken}, ok: true, want: "Spine's API did not answer"},
		{args: []string{"inspect", "https://nothere.localhost:" + port + "/"}},
		{args: []string{"inspect", u, "--ca", "/nonexistent/ca.pem"}},
	}
}

// oneTime runs a command whose stdout shows a new secret by design, once
// (a token's value): that stdout is not scanned, its secret is taken with
// secretOf and registered, so that every other output is scanned for it.
func (h *hygiene) oneTime(t *testing.T, p *proc, env []string, what string, secretOf func(stdout string) string, args ...string) string {
	t.Helper()
	o, e, err := p.cli(t, env, args...)
	name := "spine " + strings.Join(args, " ")
	h.add(name+" (stderr)", e)
	h.cover(args)
	if err != nil {
		t.Fatalf("%s: %v %s", name, err, e)
	}
	v := secretOf(o)
	if !strings.HasPrefix(v, "spine_") {
		t.Fatalf("%s printed %q", name, o)
	}
	h.secret(what, v)
	return v
}

// tokenCLI makes tokens with `spine token create` (their values shown once
// on stdout), uses one within its scope and outside it, and revokes it.
func (h *hygiene) tokenCLI(t *testing.T, p *proc) {
	t.Helper()
	tok := h.oneTime(t, p, nil, "a token made by spine token create", strings.TrimSpace,
		"token", "create", "--name", "hygiene-cli", "--scope", "read", "--expires", "1h")
	h.oneTime(t, p, nil, "a token made by spine token create -o json", func(o string) string {
		var c client.TokenCreated
		json.Unmarshal([]byte(o), &c)
		return c.Value
	}, "token", "create", "--name", "hygiene-json", "-o", "json")
	use := []string{"SPINE_TOKEN=" + tok}
	h.cli(t, p, []cliCase{
		{args: []string{"service", "list"}, env: use, ok: true, want: "NAME"},
		{args: []string{"service", "create", "by-reader", "--upstream", h.up}, env: use},
		{args: []string{"token", "list"}, ok: true, want: "hygiene-cli"},
		{args: []string{"token", "revoke", "hygiene-json"}, env: use},
		{args: []string{"token", "revoke", "hygiene-cli"}, ok: true, want: "revoked"},
		{args: []string{"token", "revoke", "hygiene-json"}, ok: true, want: "revoked"},
		{args: []string{"service", "list"}, env: use},
		{args: []string{"audit"}, ok: true, want: "token.revoke"},
	})
}

// projectCLI creates a project with the operator command (its token is
// printed once on stdout, by design: that stdout is not scanned) and uses
// its token, which must see nothing of the default project's.
func (h *hygiene) projectCLI(t *testing.T, p *proc, storeFlag ...string) {
	t.Helper()
	o, e, err := p.cli(t, nil, append([]string{"project", "create", "hygiene-tenant"}, storeFlag...)...)
	h.add("spine project create (stderr)", e)
	h.cover([]string{"project", "create"})
	if err != nil {
		t.Fatalf("project create: %v %s", err, e)
	}
	tok := strings.TrimSpace(o)
	if !strings.HasPrefix(tok, "spine_") {
		t.Fatalf("project create printed %q", o)
	}
	h.secret("a new project's token", tok)
	use := []string{"SPINE_TOKEN=" + tok}
	h.cli(t, p, []cliCase{
		{args: []string{"service", "list"}, env: use, ok: true, want: "NAME"},
		{args: []string{"service", "show", "web2"}, env: use},
		{args: []string{"nodes"}, env: use},
		{args: []string{"project", "list"}, env: use},
		{args: []string{"audit", "--project", "default"}, env: use},
		{args: []string{"audit"}, env: use, ok: true, want: "ACTION"},
		{args: []string{"project", "list"}, ok: true, want: "hygiene-tenant"},
		{args: []string{"project", "suspend", "hygiene-tenant"}, ok: true, want: "suspended"},
		{args: []string{"service", "create", "x", "--upstream", h.up}, env: use},
		{args: []string{"project", "resume", "hygiene-tenant"}, ok: true, want: "resumed"},
		{args: []string{"project", "delete", "hygiene-tenant"}, ok: true, want: "deleted"},
		{args: []string{"service", "list"}, env: use},
	})
}

// keyFileSecrets registers the keys of a secret key file as secrets.
func (h *hygiene) keyFileSecrets(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			h.secret("a key of "+path, line)
			n++
		}
	}
	if n == 0 {
		t.Fatalf("%s holds no key", path)
	}
}

// secretsCLI: the keys of the node's secret key file, of `spine secrets
// new-key` and of `spine secrets rotate` (which makes its new key and
// reseals the running node's store) are never shown.
func (h *hygiene) secretsCLI(t *testing.T, p *proc, dsn string) {
	t.Helper()
	keyFile := filepath.Join(p.data, "secret.key")
	h.keyFileSecrets(t, keyFile)
	dir := t.TempDir()
	if err := h.run(t, nil, "secrets", "new-key", "--out", filepath.Join(dir, "new.key")); err != nil {
		t.Fatalf("secrets new-key: %v", err)
	}
	h.keyFileSecrets(t, filepath.Join(dir, "new.key"))
	made := filepath.Join(dir, "made.key")
	if err := h.run(t, nil, "secrets", "rotate", "--store", dsn, "--data", p.data, "--new-key-file", made, "--wait", "1m"); err != nil {
		t.Fatalf("secrets rotate: %v", err)
	}
	h.keyFileSecrets(t, made)
	h.keyFileSecrets(t, keyFile)
}

// webhookCLI adds a webhook with the CLI (its secret is printed once on
// stdout, by design: that stdout is not scanned, and the secret must show
// nowhere else) and drives the other webhook commands with it.
func (h *hygiene) webhookCLI(t *testing.T, p *proc) {
	t.Helper()
	o, e, err := p.cli(t, nil, "webhook", "add", h.up+"/cli-hook", "--event", "service.created", "--event", "certificate.failed")
	h.add("spine webhook add (stderr)", e)
	h.cover([]string{"webhook", "add"})
	if err != nil {
		t.Fatalf("webhook add: %v %s", err, e)
	}
	var id, secret string
	for _, line := range strings.Split(o, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "id:":
			id = f[1]
		case len(f) == 2 && f[0] == "secret:":
			secret = f[1]
		}
	}
	if id == "" || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("webhook add printed %q", o)
	}
	h.secret("a webhook's signing secret (CLI)", secret)
	h.cli(t, p, []cliCase{
		{args: []string{"webhook", "list"}, ok: true, want: id},
		{args: []string{"webhook", "list", "-o", "json"}, ok: true, want: `"certificate.failed"`},
		{args: []string{"webhook", "test", id}, ok: true, want: "delivered"},
		{args: []string{"webhook", "test", "wh_000000000000000000000000"}},
		{args: []string{"webhook", "add", "ftp://hooks.test/x"}},
		{args: []string{"webhook", "add", h.up, "--event", "no.such.event"}},
		{args: []string{"webhook", "add", "http://169.254.169.254/latest"}},
	})
	ds, err := p.admin(t).Deliveries(t.Context(), id, 1)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deliveries of %s: %v %v", id, ds, err)
	}
	h.cli(t, p, []cliCase{
		{args: []string{"webhook", "deliveries", id}, ok: true, want: "webhook.test"},
		{args: []string{"webhook", "deliveries", id, "--limit", "5", "-o", "json"}, ok: true, want: `"msg_id"`},
		{args: []string{"webhook", "deliveries", "nothere"}},
		{args: []string{"webhook", "redeliver", ds[0].ID}, ok: true, want: "queued"},
		{args: []string{"webhook", "redeliver", "dlv_x"}},
		{args: []string{"webhook", "enable", id}, ok: true, want: "enabled"},
		{args: []string{"webhook", "remove", id}, ok: true, want: "removed"},
		{args: []string{"webhook", "remove", id}},
	})
}

var wrongToken = "spine_" + strings.Repeat("Z", 43)

// apiCase is one call of an API route with the admin token.
type apiCase struct {
	route              string // as package api registers it
	method, path, body string
	want               int // status with the admin token
	before             func(t *testing.T)
	stream             bool // a server-sent-events stream: read up to its opening
	// oneTime: the answer shows a new token's value, once, by design; it
	// is not scanned, and the value is registered as a secret.
	oneTime bool
}

// publicRoutes answer without a token.
var publicRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /v1/version", "GET /v1/ca/root", "GET /v1/ech", "GET /v1/openapi.json", "/"}

// api calls every route of package api against base: with the admin token
// (each must answer as expected), with a wrong token and with none (each
// route but the public ones must answer 401). A route without a case fails
// the test, so that a new route cannot be forgotten.
func (h *hygiene) api(t *testing.T, base, admin string, c *client.Client) {
	t.Helper()
	svc := `{"name":"api-x","upstreams":["` + h.up + `"]}`
	// A webhook and a delivery to it, for the routes that name them.
	hook, err := c.AddWebhook(t.Context(), client.WebhookCreate{URL: h.up + "/api-hook"})
	if err != nil {
		t.Fatal(err)
	}
	h.secret("a webhook's signing secret (API)", hook.Secret)
	dlv, err := c.TestWebhook(t.Context(), hook.ID)
	if err != nil || dlv.Status != "delivered" {
		t.Fatalf("testing the webhook: %+v %v", dlv, err)
	}
	// A certificate of the operator's own, uploaded and removed; its key
	// must show nowhere.
	pki := pkitest.NewRoot("Hygiene API Root")
	byo := pki.Issue(pkitest.Leaf{DNSNames: []string{"byo-api." + h.domainOf(t, c)}})
	h.secret("an uploaded certificate's private key (API)", keyBody(byo.KeyPEM))
	upload, _ := json.Marshal(client.CertificateUpload{Certificate: string(byo.ChainPEM), PrivateKey: string(byo.KeyPEM), Root: string(pki.RootPEM())})
	mismatch, _ := json.Marshal(client.CertificateUpload{Certificate: string(pki.Issue(pkitest.Leaf{DNSNames: byo.Cert.DNSNames}).ChainPEM), PrivateKey: string(byo.KeyPEM), Root: string(pki.RootPEM())})
	byoPath := "/v1/certificates/" + byo.Cert.DNSNames[0]
	cases := []apiCase{
		{route: "GET /healthz", method: "GET", path: "/healthz", want: 200},
		{route: "GET /readyz", method: "GET", path: "/readyz", want: 200},
		{route: "GET /v1/version", method: "GET", path: "/v1/version", want: 200},
		{route: "GET /v1/ca/root", method: "GET", path: "/v1/ca/root", want: 200},
		{route: "GET /v1/ech", method: "GET", path: "/v1/ech", want: 200},
		{route: "GET /v1/project", method: "GET", path: "/v1/project", want: 200},
		{route: "GET /v1/domains", method: "GET", path: "/v1/domains", want: 200},
		{route: "POST /v1/domains", method: "POST", path: "/v1/domains", body: `{"name":"api-hygiene.test"}`, want: 201},
		{route: "GET /v1/domains/{name}", method: "GET", path: "/v1/domains/api-hygiene.test", want: 200},
		{route: "POST /v1/domains/{name}/verify", method: "POST", path: "/v1/domains/api-hygiene.test/verify", want: 200,
			before: func(t *testing.T) { h.verifyTXT(t, c, "api-hygiene.test") }},
		{route: "DELETE /v1/domains/{name}", method: "DELETE", path: "/v1/domains/api-hygiene.test", want: 204},
		{route: "GET /v1/services", method: "GET", path: "/v1/services", want: 200},
		{route: "POST /v1/services", method: "POST", path: "/v1/services", body: svc, want: 201},
		{route: "GET /v1/services/{name}", method: "GET", path: "/v1/services/api-x", want: 200},
		{route: "PATCH /v1/services/{name}", method: "PATCH", path: "/v1/services/api-x", want: 200,
			body: `{"upstreams":["` + h.up + `"],"hsts_max_age":600,"health_path":"/up","health_interval":"5s"}`},
		{route: "DELETE /v1/services/{name}", method: "DELETE", path: "/v1/services/api-x", want: 204},
		{route: "GET /v1/certificates", method: "GET", path: "/v1/certificates", want: 200},
		{route: "PUT /v1/certificates/{name}", method: "PUT", path: byoPath, body: string(mismatch), want: 400},
		{route: "PUT /v1/certificates/{name}", method: "PUT", path: byoPath, body: string(upload), want: 200},
		{route: "GET /v1/certificates", method: "GET", path: "/v1/certificates", want: 200},
		{route: "DELETE /v1/certificates/{name}", method: "DELETE", path: byoPath, want: 204},
		{route: "GET /v1/nodes", method: "GET", path: "/v1/nodes", want: 200},
		{route: "GET /v1/events", method: "GET", path: "/v1/events?after=0", want: 200},
		{route: "GET /v1/events/stream", method: "GET", path: "/v1/events/stream?after=0", want: 200, stream: true},
		{route: "GET /v1/quota", method: "GET", path: "/v1/quota", want: 200},
		{route: "GET /v1/projects/{id}/quota", method: "GET", path: "/v1/projects/default/quota", want: 200},
		{route: "PUT /v1/projects/{id}/quota", method: "PUT", path: "/v1/projects/default/quota", body: `{"services":500}`, want: 200},
		{route: "GET /v1/webhooks", method: "GET", path: "/v1/webhooks", want: 200},
		{route: "POST /v1/webhooks", method: "POST", path: "/v1/webhooks", body: `{"url":"` + h.up + `/api-hook2","events":["service.created"]}`, want: 201},
		{route: "GET /v1/webhooks/{id}", method: "GET", path: "/v1/webhooks/" + hook.ID, want: 200},
		{route: "POST /v1/webhooks/{id}/test", method: "POST", path: "/v1/webhooks/" + hook.ID + "/test", want: 200},
		{route: "GET /v1/webhooks/{id}/deliveries", method: "GET", path: "/v1/webhooks/" + hook.ID + "/deliveries", want: 200},
		{route: "GET /v1/deliveries/{id}", method: "GET", path: "/v1/deliveries/" + dlv.ID, want: 200},
		{route: "POST /v1/deliveries/{id}/redeliver", method: "POST", path: "/v1/deliveries/" + dlv.ID + "/redeliver", want: 202},
		{route: "POST /v1/webhooks/{id}/enable", method: "POST", path: "/v1/webhooks/" + hook.ID + "/enable", want: 200},
		{route: "DELETE /v1/webhooks/{id}", method: "DELETE", path: "/v1/webhooks/" + hook.ID, want: 204},
		{route: "GET /v1/openapi.json", method: "GET", path: "/v1/openapi.json", want: 200},
		{route: "GET /v1/tokens", method: "GET", path: "/v1/tokens", want: 200},
		{route: "POST /v1/tokens", method: "POST", path: "/v1/tokens", body: `{"name":"api-hygiene","scopes":["read"],"expires_in":"1h"}`, want: 201, oneTime: true},
		{route: "DELETE /v1/tokens/{name}", method: "DELETE", path: "/v1/tokens/api-hygiene", want: 204},
		{route: "GET /v1/projects", method: "GET", path: "/v1/projects", want: 200},
		{route: "POST /v1/projects", method: "POST", path: "/v1/projects", body: `{"name":"api-hygiene"}`, want: 201, oneTime: true},
		{route: "GET /v1/projects/{name}", method: "GET", path: "/v1/projects/api-hygiene", want: 200},
		{route: "POST /v1/projects/{name}/suspend", method: "POST", path: "/v1/projects/api-hygiene/suspend", want: 200},
		{route: "POST /v1/projects/{name}/resume", method: "POST", path: "/v1/projects/api-hygiene/resume", want: 200},
		{route: "DELETE /v1/projects/{name}", method: "DELETE", path: "/v1/projects/api-hygiene", want: 204},
		{route: "GET /v1/audit", method: "GET", path: "/v1/audit", want: 200}, // after the changes, which it lists
		// The node's heap and goroutine stacks (as text) hold no secret either.
		{route: "GET /debug/pprof/{name}", method: "GET", path: "/debug/pprof/heap?debug=1", want: 200},
		{route: "GET /debug/pprof/{name}", method: "GET", path: "/debug/pprof/goroutine?debug=2", want: 200},
		// Last: the metrics of a node that has had every kind of object,
		// each answer scanned for the secrets like every other.
		{route: "GET /metrics", method: "GET", path: "/metrics", want: 200},
		{route: "/", method: "GET", path: "/v1/no-such-route", want: 404},
	}
	routes := apiRoutes(t)
	for _, r := range routes {
		if !slices.ContainsFunc(cases, func(c apiCase) bool { return c.route == r }) {
			t.Errorf("API route %q has no case in TestSecretHygiene: add one", r)
		}
	}
	for _, ac := range cases {
		if !slices.Contains(routes, ac.route) {
			t.Errorf("case %q names no route of package api", ac.route)
		}
		// Refused tokens first: the admin call may delete what they name.
		call := apiCall
		if ac.stream {
			call = apiStreamOpening
		}
		for _, tok := range []string{wrongToken, ""} {
			code, out := call(t, base, tok, ac.method, ac.path, ac.body)
			h.add(fmt.Sprintf("API %s %s with token %q (%d)", ac.method, ac.path, tok, code), out)
			want := 401
			if slices.Contains(publicRoutes, ac.route) {
				want = ac.want
			}
			if code != want {
				t.Errorf("%s %s with token %q: %d %s, want %d", ac.method, ac.path, tok, code, out, want)
			}
		}
		if ac.before != nil {
			ac.before(t)
		}
		code, out := call(t, base, admin, ac.method, ac.path, ac.body)
		if ac.oneTime {
			var v struct{ Token string }
			json.Unmarshal([]byte(out), &v)
			if !strings.HasPrefix(v.Token, "spine_") {
				t.Errorf("%s %s: no new token in %d %s", ac.method, ac.path, code, out)
			}
			h.secret(fmt.Sprintf("a token made by %s %s", ac.method, ac.path), v.Token)
		} else {
			h.add(fmt.Sprintf("API %s %s (%d)", ac.method, ac.path, code), out)
		}
		if code != ac.want {
			t.Errorf("%s %s: %d %s, want %d", ac.method, ac.path, code, out, ac.want)
		}
	}
}

// apiStreamOpening is apiCall for an event stream: a refusal is read
// whole; an open stream up to its opening and every event already kept
// (up to the latest one GET /v1/events shows the same token).
func apiStreamOpening(t *testing.T, base, tok, method, path, body string) (int, string) {
	t.Helper()
	var last int64
	if code, out := apiCall(t, base, tok, "GET", "/v1/events?after=0&limit=1000", ""); code == 200 {
		if es := ownEvents(t, out); len(es) > 0 {
			last = es[len(es)-1].ID
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var out strings.Builder
	sc := bufio.NewScanner(resp.Body)
	want, id := fmt.Sprintf("id: %d", last), ""
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if strings.HasPrefix(line, "id: ") {
			id = line
		}
		if (line == "" && last == 0) || (strings.HasPrefix(line, "data: ") && id == want) {
			return resp.StatusCode, out.String()
		}
	}
	t.Errorf("%s %s: the stream ended or stalled before event %d: %q", method, path, last, out.String())
	return resp.StatusCode, out.String()
}

// randomSecret returns n random bytes in enc.
func randomSecret(enc *base64.Encoding, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return enc.EncodeToString(b)
}

// TestSecretHygiene runs the real binary (`spine up`, and `spine serve` on
// SQLite and on PostgreSQL with every secret-bearing flag: a store
// password, an ACME EAB HMAC key, a TSIG secret, each of them put to use
// by getting a wildcard certificate from Pebble through RFC 2136), drives
// every CLI command (listed by `spine __commands`) and every API route
// (found in package api's sources) and checks that each call that should
// succeed did. It also starts invalid servers whose flags hold secrets,
// and an in-process node whose Debug-level logs it keeps. Then it scans
// everything a user or an operator sees (logs, command output, API
// answers, error messages) for private keys and for the secrets, and
// checks the modes of the data folders' files.
func TestSecretHygiene(t *testing.T) {
	t.Parallel()
	h := &hygiene{bin: spineBinary(t), covered: map[string]bool{}, secrets: map[string]string{}}
	out, err := exec.Command(h.bin, "__commands").Output()
	if err != nil {
		t.Fatalf("spine __commands: %v", err)
	}
	h.commands = strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(h.commands) < 15 || !slices.Contains(h.commands, "service create") {
		t.Fatalf("spine __commands lists %q", h.commands)
	}
	h.secret("a wrong token", wrongToken)
	h.secret("an upstream's password", "hunter2")
	h.up = startUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	h.dns = pebbletest.StartDNS(t)

	// The ACME CA requires EAB; the zone's DNS server requires TSIG.
	const zone, kid, tsigKey = "hygiene-acme.test", "hygiene-kid", "spine-update."
	hmacKey := randomSecret(base64.RawURLEncoding, 32)
	tsigSecret := randomSecret(base64.StdEncoding, 32)
	h.secret("the EAB HMAC key", hmacKey)
	h.secret("the TSIG secret", tsigSecret)
	zoneDNS, err := dnsserver.New(dnsserver.Config{Zone: zone, Records: &dnsserver.MemoryStore{}, TSIG: map[string]string{tsigKey: tsigSecret}})
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp, err := dnsserver.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go zoneDNS.Serve(udp, tcp)
	t.Cleanup(func() { zoneDNS.Shutdown(context.Background()) })
	h.dns.Forward(zone, udp.LocalAddr().String())
	// Only DNS-01 can succeed: Pebble's HTTP-01 and TLS-ALPN-01 ports are closed.
	pebble := pebbletest.Start(t, pebbletest.Options{HTTPPort: 1, TLSPort: 1, Resolver: h.dns.Addr, EAB: map[string]string{kid: hmacKey}})
	pebbleRoot := filepath.Join(t.TempDir(), "pebble.pem")
	if err := os.WriteFile(pebbleRoot, pebble.ServerRootPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	secretFlags := []string{
		"--domain", zone, "--dns-resolver", h.dns.Addr,
		"--acme-ca", pebble.DirectoryURL(), "--acme-ca-root", pebbleRoot, "--acme-email", "ops@" + zone,
		"--acme-eab-kid", kid, "--acme-eab-hmac", hmacKey,
		"--dns-rfc2136", zone + "=" + udp.LocalAddr().String() + "," + tsigKey + "," + tsigSecret,
	}
	listen := []string{"--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"}
	var modes []string
	ran := map[string]bool{} // subtests that ran (-run may select some)

	t.Run("up", func(t *testing.T) {
		ran["up"] = true
		p := startProc(t, h.bin, filepath.Join(t.TempDir(), "data"), nil, append([]string{"up", "--dns-resolver", h.dns.Addr}, listen...)...)
		h.cover([]string{"up"})
		h.secret("up's admin token", p.token(t))
		h.cli(t, p, h.commonCLI(p, "localhost", true))
		h.cli(t, p, h.inspectCLI(p))
		h.tokenCLI(t, p)
		h.projectCLI(t, p)
		h.webhookCLI(t, p)
		h.api(t, p.api, p.token(t), p.admin(t))
		// spine up's access log goes to stderr (p.logs, scanned below).
		h.edgeRequests(t, p.https, filepath.Join(p.data, "ca", "root.pem"), "hello.localhost", p.token(t), p.logs.String)
		running := dataModes(t, p.data)
		p.stop()
		modes = append(modes, "up running: "+running, "up stopped: "+dataModes(t, p.data))
		h.add("spine up (stdout)", p.stdout.String())
		h.add("spine up (logs)", p.logs.String())
	})

	// serve drives a production node on the store dsn, with every secret
	// flag, and waits for the wildcard certificate from Pebble.
	serve := func(t *testing.T, dsn string, flags ...string) *proc {
		p := startProc(t, h.bin, filepath.Join(t.TempDir(), "data"), nil, slices.Concat([]string{"serve", "--store", dsn, "--webhook-allow-private"}, listen, secretFlags, flags)...)
		h.cover([]string{"serve"})
		h.secret("serve's admin token", p.token(t))
		h.cli(t, p, h.commonCLI(p, zone, false))
		h.tokenCLI(t, p)
		h.projectCLI(t, p, "--store", dsn)
		h.webhookCLI(t, p)
		h.api(t, p.api, p.token(t), p.admin(t))
		// The EAB key and the TSIG secret were put to use: Pebble requires
		// EAB, and only DNS-01 through RFC 2136 can get a wildcard.
		leaf := waitACME(t, p, "web2."+zone, pebble.Roots())
		if !slices.Equal(leaf.DNSNames, []string{"*." + zone}) {
			t.Errorf("web2.%s: certificate for %v, want *.%s", zone, leaf.DNSNames, zone)
		}
		return p
	}
	t.Run("serve-sqlite", func(t *testing.T) {
		ran["serve-sqlite"] = true
		storeDir := filepath.Join(t.TempDir(), "store")
		// Debug logs in JSON: every step of certmagic and acmez, whose
		// values JSON shows unabridged, is scanned for the secrets.
		p := serve(t, "sqlite:"+filepath.Join(storeDir, "spine.db"), "--log-format", "json", "--log-level", "debug")
		h.secretsCLI(t, p, "sqlite:"+filepath.Join(storeDir, "spine.db"))
		p.stop()
		checkJSONLogs(t, p.logs.String(), "certmagic.obtain", "acmez")
		modes = append(modes, "serve: "+dataModes(t, p.data), "serve's store: "+dataModes(t, storeDir))
		h.add("spine serve sqlite (stdout)", p.stdout.String())
		h.add("spine serve sqlite (logs)", p.logs.String())
	})
	t.Run("serve-postgres", func(t *testing.T) {
		u, err := url.Parse(storetest.PostgresDSN(t)) // skips if SPINE_TEST_POSTGRES=skip
		if err != nil {
			t.Fatal(err)
		}
		pw := "SECRETPW" + randomSecret(base64.RawURLEncoding, 9) // ignored by trust auth, sent all the same
		h.secret("the store's password", pw)
		u.User = url.UserPassword(u.User.Username(), pw)
		p := serve(t, u.String())
		p.stop()
		h.add("spine serve postgres (stdout)", p.stdout.String())
		h.add("spine serve postgres (logs)", p.logs.String())
	})

	// Starts refused for a bad flag or an unreachable store: the message
	// must not show the secret next to it.
	t.Run("refused starts", func(t *testing.T) {
		ran["refused starts"] = true
		pw := "SECRETPW" + randomSecret(base64.RawURLEncoding, 9)
		h.secret("a refused store's password", pw)
		data := filepath.Join(t.TempDir(), "data")
		for _, tc := range []struct {
			args []string
			want string // the reason it must be refused for
		}{
			{[]string{"serve", "--store", "postgres://spine:" + pw + "@127.0.0.1:1/spine"}, "is the database running"},
			{[]string{"serve", "--store", "postgres://spine:" + pw + "@127.0.0.1:notaport/spine"}, "--store"},
			{[]string{"serve", "--store", "mysql://spine:" + pw + "@127.0.0.1/spine"}, "unknown kind of store"},
			{[]string{"serve", "--acme-ca", "https://spine:" + pw + "@127.0.0.1:1/dir"}, "without credentials"},
			{[]string{"serve", "--dns-rfc2136", zone + "=127.0.0.1," + tsigKey + "," + tsigSecret + ",extra"}, "want 1 or 3"},
			{[]string{"serve", "--dns-rfc2136", zone + "=127.0.0.1," + tsigSecret}, "want 1 or 3"},
			{[]string{"serve", "--dns-rfc2136", zone + "=127.0.0.1:" + tsigKey + ":" + tsigSecret}, "HOST or HOST:PORT"},
			{[]string{"serve", "--dns-rfc2136", zone + "=127.0.0.1," + tsigKey + "," + tsigSecret + "!"}, "not base64"},
			{[]string{"serve", "--dns-rfc2136", tsigSecret}, "ZONE="},
			{[]string{"serve", "--acme-eab-hmac", hmacKey}, "go together"},
			{[]string{"serve", "--acme-eab-kid", kid, "--acme-eab-hmac", hmacKey + "!"}, "not base64url"},
			{[]string{"up", "--acme-eab-kid", kid, "--acme-eab-hmac", hmacKey + "!"}, "not base64url"},
		} {
			if err := h.run(t, nil, append(append(tc.args, "--data", data), listen...)...); err == nil {
				t.Errorf("spine %s started", strings.Join(tc.args, " "))
			} else if last := h.seen[len(h.seen)-1].text; !strings.Contains(last, tc.want) {
				t.Errorf("spine %s: refused with %q, want it refused for %q", tc.args[0], last, tc.want)
			}
		}
		// The operator command that opens the store itself.
		if err := h.run(t, nil, "project", "create", "x", "--data", data, "--store", "postgres://spine:"+pw+"@127.0.0.1:1/spine"); err == nil {
			t.Error("project create on an unreachable store succeeded")
		} else if last := h.seen[len(h.seen)-1].text; !strings.Contains(last, "is the database running") {
			t.Errorf("project create on an unreachable store: %q", last)
		}
		// Secrets from the environment stay out of --help's defaults.
		env := []string{"SPINE_STORE=postgres://spine:" + pw + "@127.0.0.1/spine", "SPINE_ACME_EAB_HMAC=" + hmacKey}
		for _, args := range [][]string{{"serve", "--help"}, {"up", "--help"}, {"project", "create", "--help"}} {
			if err := h.run(t, env, args...); err != nil {
				t.Errorf("spine %s: %v", strings.Join(args, " "), err)
			}
		}
	})

	// The harness's in-process node logs at Debug level; drive it too.
	t.Run("debug logs", func(t *testing.T) {
		accessLog := filepath.Join(t.TempDir(), "access.log")
		s := startSpineWith(t, func(c *config.Config) {
			c.ACME.Resolver = h.dns.Addr
			c.Webhooks.AllowPrivate = true
			c.AccessLog, c.AccessLogFormat = accessLog, logging.JSON
		})
		h.secret("the in-process node's admin token", s.token)
		h.api(t, "http://"+s.n.APIAddr(), s.token, s.admin)
		s.addService(t, s.admin, client.ServiceCreate{Name: "debug", Upstreams: []string{h.up}})
		root := filepath.Join(t.TempDir(), "root.pem")
		if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.n.CA().Root().Raw}), 0o644); err != nil {
			t.Fatal(err)
		}
		readLog := func() string { b, _ := os.ReadFile(accessLog); return string(b) }
		h.edgeRequests(t, s.n.HTTPSAddr(), root, "debug.localhost", s.token, readLog)
		h.add("in-process node (access log, JSON)", readLog())
		// A handshake for a name Spine does not serve is logged at Debug.
		if c, err := s.dialTLS("unknown.localhost"); err == nil {
			c.Close()
			t.Error("a handshake for an unknown name succeeded")
		}
		poll.Until(t, "a line at Debug level", time.Minute, func() error {
			if !strings.Contains(s.logs.String(), "level=DEBUG") {
				return fmt.Errorf("the node logged nothing at Debug level:\n%s", s.logs.String())
			}
			return nil
		})
		h.add("in-process node (Debug logs)", s.logs.String())
	})

	h.scan(t)
	if !ran["up"] || !ran["serve-sqlite"] || !ran["refused starts"] {
		return // a part of the test was left out: the commands cannot all be covered
	}
	for _, c := range h.commands {
		if !h.covered[c] {
			t.Errorf("CLI command %q has no case in TestSecretHygiene: drive it (success and failure)", c)
		}
	}
	reportf(t, "scanned %d outputs (CLI stdout/stderr of all %d commands against spine up and spine serve on SQLite and PostgreSQL, every API route with three tokens, refused starts, logs incl. an in-process node's Debug logs and serve's Debug logs in JSON with certmagic's and acmez's lines) for private keys and %d secrets: none shown; modes: %s",
		len(h.seen), len(h.commands), len(h.secrets), strings.Join(modes, "; "))
}

// edgeRequests sends requests through the edge at addr to host (its
// certificate verified against the root at rootFile) that carry token in
// every place a client puts a credential: Authorization,
// Proxy-Authorization, Cookie, X-Api-Key, a query parameter and the body.
// It waits until logs (the node's access log) holds their lines, so that
// the scan that follows sees them, and registers the other credentials as
// secrets.
func (h *hygiene) edgeRequests(t *testing.T, addr, rootFile, host, token string, logs func() string) {
	t.Helper()
	pemBytes, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	cookie, apiKey, basic := "SECRETcookie"+randomSecret(base64.RawURLEncoding, 9), "SECRETkey"+randomSecret(base64.RawURLEncoding, 9),
		"SECRETbasic"+randomSecret(base64.RawURLEncoding, 9)
	h.secret("a session cookie sent through the edge", cookie)
	h.secret("an API key sent through the edge", apiKey)
	h.secret("a basic-auth password sent through the edge", basic)
	for _, h2 := range []bool{false, true} {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: h2,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}}
		for i, method := range []string{"GET", "POST"} {
			id := fmt.Sprintf("hygiene-edge-%v-%d", h2, i)
			// The first request may come before the name's certificate.
			poll.Until(t, method+" https://"+host+" through the edge", time.Minute, func() error {
				req, _ := http.NewRequest(method, "https://"+host+"/login?access_token="+url.QueryEscape(token)+"&next=%2F", strings.NewReader("token="+token))
				req.Header.Set("X-Request-ID", id)
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("ops:"+basic)))
				req.Header.Set("Cookie", "session="+cookie)
				req.Header.Set("X-Api-Key", apiKey)
				resp, err := c.Do(req)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			})
			poll.Until(t, "the access line of "+id, time.Minute, poll.True(func() bool { return strings.Contains(logs(), id) }))
		}
	}
}

// checkJSONLogs checks that every line of logs (a server's stderr with
// --log-format json) is a JSON object with time, level and msg, and that
// some lines come from each of loggers (the "logger" attribute of the
// libraries' lines).
func checkJSONLogs(t *testing.T, logs string, loggers ...string) {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("a --log-format json line is not a JSON object: %q", line)
			continue
		}
		if m["time"] == nil || m["level"] == nil || m["msg"] == nil {
			t.Errorf("a --log-format json line lacks time, level or msg: %q", line)
		}
		if l, ok := m["logger"].(string); ok {
			seen[l] = true
		}
	}
	for _, l := range loggers {
		if !seen[l] {
			t.Errorf("no line from logger %q in the JSON logs", l)
		}
	}
}

// waitACME waits until host's certificate is active, and returns the leaf
// served for it, verified against roots.
func waitACME(t *testing.T, p *proc, host string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	c := p.admin(t)
	var leaf *x509.Certificate
	poll.Until(t, "an active certificate for "+host, 3*time.Minute, func() error {
		certs, err := c.Certificates(t.Context())
		if err != nil {
			return poll.Stop(fmt.Errorf("listing certificates: %w", err))
		}
		for _, cert := range certs {
			if cert.Hostname != host {
				continue
			}
			switch cert.Status {
			case "active":
				conn, err := tls.Dial("tcp", p.https, &tls.Config{ServerName: host, RootCAs: roots})
				if err != nil {
					return poll.Stop(fmt.Errorf("verified handshake for %s (issuer %s): %w", host, cert.Issuer, err))
				}
				defer conn.Close()
				leaf = conn.ConnectionState().PeerCertificates[0]
				return nil
			case "failed":
				return poll.Stop(fmt.Errorf("certificate for %s failed: %s", host, cert.Error))
			}
		}
		return fmt.Errorf("not active: %+v", certs)
	})
	return leaf
}

// dataModes checks the modes of the data folder (0700) and of every file
// that holds a secret (0600), and returns them all for the report.
func dataModes(t *testing.T, data string) string {
	t.Helper()
	var modes []string
	filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		rel, _ := filepath.Rel(data, path)
		modes = append(modes, fmt.Sprintf("%s %v", rel, fi.Mode().Perm()))
		content, _ := os.ReadFile(path)
		secret := rel == "admin.token" || strings.HasPrefix(filepath.Base(path), "spine.db") || bytes.Contains(content, []byte("PRIVATE KEY"))
		switch {
		case path == data && fi.Mode().Perm() != 0o700:
			t.Errorf("data folder mode %v, want 0700", fi.Mode().Perm())
		case d.IsDir() && fi.Mode().Perm()&0o077 != 0 && path != data:
			t.Errorf("folder %s mode %v: others can enter it", rel, fi.Mode().Perm())
		case !d.IsDir() && secret && fi.Mode().Perm() != 0o600:
			t.Errorf("%s holds secrets and has mode %v, want 0600", rel, fi.Mode().Perm())
		}
		return nil
	})
	return strings.Join(modes, ", ")
}
