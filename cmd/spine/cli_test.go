package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/node/config"
)

// spine runs the CLI in-process with args and returns what it printed.
func spine(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetContext(context.Background())
	err := root.Execute()
	return out.String(), err
}

func TestCLIAgainstRunningNode(t *testing.T) {
	dir := t.TempDir()
	n, err := node.Start(context.Background(), config.Config{
		DataDir: dir, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	t.Setenv("SPINE_TOKEN", "")
	api := "http://" + n.APIAddr()
	common := []string{"--data", dir, "--api", api}
	_, httpsPort, _ := net.SplitHostPort(n.HTTPSAddr())

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from upstream") })}
	go up.Serve(ln)
	defer up.Close()

	// create --wait shows each step and returns once HTTPS answers.
	out, err := spine(t, append([]string{"service", "create", "api", "--upstream", "http://" + ln.Addr().String(), "--wait", "--timeout", "30s"}, common...)...)
	if err != nil {
		t.Fatalf("create --wait: %v\n%s", err, out)
	}
	for _, want := range []string{"registered", "api.localhost", "certificate issued by Spine", "serving", "answered 200", "is served over HTTPS"} {
		if !strings.Contains(out, want) {
			t.Fatalf("create --wait output lacks %q:\n%s", want, out)
		}
	}

	// list --output json is machine-readable.
	out, err = spine(t, append([]string{"service", "list", "--output", "json"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var svcs []client.Service
	if err := json.Unmarshal([]byte(out), &svcs); err != nil || len(svcs) != 2 {
		t.Fatalf("service list json: %v %q", err, out)
	}
	// A page at a time prints the same: the JSON byte for byte, the table
	// with its header once.
	paged, err := spine(t, append([]string{"service", "list", "--output", "json", "--page-size", "1"}, common...)...)
	if err != nil || paged != out {
		t.Fatalf("service list json by pages of 1: %v\n%s\nwant\n%s", err, paged, out)
	}
	paged, err = spine(t, append([]string{"service", "list", "--page-size", "1"}, common...)...)
	if err != nil || strings.Count(paged, "UPSTREAMS") != 1 || strings.Count(paged, "\n") != 3 || !strings.Contains(paged, svcs[0].Name) || !strings.Contains(paged, svcs[1].Name) {
		t.Fatalf("service list by pages of 1: %v\n%s", err, paged)
	}

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"service", "show", "api"}, []string{"api.localhost", "max-age=31536000", "https://api.localhost:", "health check:  / every 10s"}},
		// update --wait: the added name's steps as create's, then the service as updated.
		{[]string{"service", "update", "api", "--add-host", "www.localhost", "--health-path", "/healthz", "--health-interval", "30s", "--wait"},
			[]string{"certificate issued by Spine", "www.localhost", "answered 200", "is served as updated"}},
		{[]string{"service", "update", "api", "--remove-host", "www.localhost", "--hsts-max-age", "0", "--wait"},
			[]string{"removed", "www.localhost: no longer served", "is served as updated"}},
		{[]string{"service", "show", "api"}, []string{"hsts:          off", "health check:  /healthz every 30s"}},
		{[]string{"cert", "list"}, []string{"HOSTNAME", "api.localhost", "active", "Spine Internal CA"}},
		{[]string{"domain", "add", "example.test"}, []string{"pending_verification", `_spine-challenge.example.test. 300 IN TXT "spine-verify=`}},
		{[]string{"domain", "list"}, []string{"localhost", "verified", "example.test"}},
		{[]string{"domain", "remove", "example.test"}, []string{"removed"}},
		{[]string{"ca", "root"}, []string{"-----BEGIN CERTIFICATE-----"}},
		{[]string{"ech", "config"}, []string{"; ECH public name ech.localhost", "api.localhost. 300 IN HTTPS 1 . alpn=\"h3,h2\" ech=\""}},
		{[]string{"version"}, []string{"spine ", "server test (store: sqlite)"}},
		{[]string{"inspect", "https://api.localhost:" + httpsPort + "/"}, []string{"ClientHello", "trusted from Spine's root", "Spine's view", "renewal   due from", "Result: OK"}},
		{[]string{"service", "delete", "api"}, []string{"deleted"}},
	} {
		out, err := spine(t, append(tc.args, common...)...)
		if err != nil {
			t.Fatalf("spine %v: %v\n%s", tc.args, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Fatalf("spine %v output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}

	// Errors say what to fix.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "create", "bad_name", "--upstream", "http://127.0.0.1:1"}, "lower-case letters"},
		{[]string{"service", "create", "x", "--upstream", "ftp://127.0.0.1:1"}, "use http:// or https://"},
		{[]string{"service", "create", "x", "--upstream", "http://" + n.HTTPSAddr()}, "proxy loop"},
		{[]string{"service", "create", "x"}, "at least one upstream"},
		{[]string{"service", "show", "nope"}, "does not exist"},
		{[]string{"service", "list", "--output", "yaml"}, "--output must be text or json"},
		{[]string{"service", "list", "--page-size", "0"}, "--page-size must be 1 to 1000"},
		{[]string{"service", "list", "--page-size", "1001"}, "--page-size must be 1 to 1000"},
	} {
		out, err := spine(t, append(tc.args, common...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("spine %v: err %v (want %q)\n%s", tc.args, err, tc.want, out)
		}
	}
	// inspect's exit status says how the connection failed: 2 without a
	// handshake, 1 for a bad argument.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect", "https://nothere.localhost:" + httpsPort + "/"}, 2, "no certificate for nothere.localhost"},
		{[]string{"inspect", "api.localhost:" + httpsPort, "--ca", "/nonexistent.pem"}, 0, "--ca: /nonexistent.pem does not exist"},
	} {
		out, err := spine(t, append(tc.args, common...)...)
		var exit *exitError
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &exit) != (tc.code != 0) || (tc.code != 0 && exit.code != tc.code) {
			t.Fatalf("spine %v: err %v (want %q, exit status %d)\n%s", tc.args, err, tc.want, tc.code, out)
		}
	}

	// Without a token the CLI says where it looked.
	if _, err := spine(t, "service", "list", "--data", t.TempDir(), "--api", api); err == nil || !strings.Contains(err.Error(), "SPINE_TOKEN") {
		t.Fatalf("no token: %v", err)
	}
}

// Flag errors of `spine serve` and `spine up` name the flag, say what to
// write, and never repeat a secret given in a flag (TSIG secret, EAB HMAC
// key, store password). All of them come before anything is started.
func TestServeFlagErrors(t *testing.T) {
	const tsig, hmac, pw = "c2VjcmV0LXRzaWctc2VjcmV0", "SECRET-hmac_key", "SECRETPW"
	t.Setenv("SPINE_STORE", "")
	t.Setenv("SPINE_ACME_EAB_HMAC", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dns-rfc2136", "ex.test=ns1.ex.test," + tsig}, "want 1 or 3"},
		{[]string{"--dns-rfc2136", "ex.test=ns1.ex.test,key.," + tsig + ",extra"}, "want 1 or 3"},
		{[]string{"--dns-rfc2136", "ex.test=ns1.ex.test,key.," + tsig + "*"}, "not base64"},
		{[]string{"--dns-rfc2136", "ex.test=ns1:key.:" + tsig}, "HOST or HOST:PORT"},
		{[]string{"--dns-rfc2136", tsig}, "ZONE="},
		{[]string{"--dns-rfc2136", "bad..zone=ns1," + tsig}, "empty label"},
		{[]string{"--acme-eab-hmac", hmac}, "go together"},
		{[]string{"--acme-eab-hmac", hmac + "*", "--acme-eab-kid", "kid"}, "not base64url"},
		{[]string{"--acme-ca", "https://user:" + pw + "@ca.test/dir"}, "without credentials"},
		{[]string{"--store", "mysql://root:" + pw + "@db.test/spine"}, "sqlite:PATH or postgres://"},
		{[]string{"--store", "postgres://root:" + pw + "@db.test:notaport/spine"}, "not a PostgreSQL URL"},
		{[]string{"--store", "postgres://root@db.test/spine?password=" + pw + "&connect_timeout=soon"}, "not a PostgreSQL URL"},
		{[]string{"--cert-lifetime", "-1h"}, "from 1h to 8760h"},
		{[]string{"--cert-cache-size", "0"}, "or -1 for no bound"},
		{[]string{"--resync-interval", "0s"}, "positive duration"},
		{[]string{"--cert-lifetime", "0s"}, "from 1h to 8760h"},
		{[]string{"--api-addr", ""}, "write HOST:PORT"},
		{[]string{"--metrics", "everywhere"}, "write api (the API's listener), off, or HOST:PORT"},
		{[]string{"--metrics", ""}, "write api, off, or HOST:PORT"},
		{[]string{"--metrics-max-series", "-1"}, "must be 0 (the default, 10000) or more"},
		{[]string{"--renew-check-interval", "-1m"}, "positive duration"},
		{[]string{"--renewal-window-ratio", "1"}, "between 0 and 1"},
		{[]string{"--log-format", "logfmt"}, "give text or json"},
		{[]string{"--log-level", "trace"}, "give debug, info, warn or error"},
		{[]string{"--https-addr", "127.0.0.1:99999"}, "port from 0 to 65535"},
	} {
		for _, cmd := range []string{"serve", "up"} {
			args := append([]string{cmd, "--data", t.TempDir() + "/data", "--https-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"}, tc.args...)
			out, err := spine(t, args...)
			if err == nil {
				t.Fatalf("spine %v succeeded", tc.args)
			}
			msg := err.Error() + out
			if !strings.Contains(msg, tc.args[0]) || !strings.Contains(msg, tc.want) {
				t.Errorf("spine %s %v: %q does not name %s and say %q", cmd, tc.args, msg, tc.args[0], tc.want)
			}
			for _, s := range []string{tsig, hmac, pw} {
				if strings.Contains(msg, s) {
					t.Errorf("spine %s %v: the error shows a secret: %q", cmd, tc.args, msg)
				}
			}
		}
	}
	// --help prints flag defaults: secrets from the environment stay out.
	t.Setenv("SPINE_STORE", "postgres://spine:"+pw+"@db.test/spine")
	t.Setenv("SPINE_ACME_EAB_HMAC", hmac)
	for _, cmd := range []string{"serve", "up", "project create"} {
		out, err := spine(t, append(strings.Fields(cmd), "--help")...)
		if err != nil || !strings.Contains(out, "--store") {
			t.Fatalf("spine %s --help: %v\n%s", cmd, err, out)
		}
		if strings.Contains(out, pw) || strings.Contains(out, hmac) {
			t.Errorf("spine %s --help shows a secret from the environment:\n%s", cmd, out)
		}
	}
}
