package api_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// GET /debug/pprof/{name} serves the operator a runtime profile that
// go tool pprof reads (gzipped, or text with ?debug=1), and refuses a
// project's token (403 missing_scope) and no token (401). cmdline is not
// served: the command line may hold a database password.
func TestPprof(t *testing.T) {
	e := newAPIEnv(t, nil)
	get := func(t *testing.T, tok, path string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", e.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	admin := e.tokens[e.admin]

	code, body := get(t, admin, "/debug/pprof/heap")
	if code != 200 {
		t.Fatalf("the operator's heap profile: %d %s", code, body)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the heap profile is not gzipped (pprof's format): %v", err)
	}
	if raw, err := io.ReadAll(zr); err != nil || len(raw) == 0 {
		t.Errorf("the heap profile: %d bytes, %v", len(raw), err)
	}
	if code, body := get(t, admin, "/debug/pprof/heap?debug=1"); code != 200 || !strings.HasPrefix(string(body), "heap profile:") {
		t.Errorf("the heap profile as text: %d %.80s", code, body)
	}
	if code, body := get(t, admin, "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(string(body), "goroutine profile:") {
		t.Errorf("the goroutine profile as text: %d %.80s", code, body)
	}

	for _, c := range []struct {
		tok, path, code string
		status          int
	}{
		{"", "/debug/pprof/heap", "unauthorized", 401},
		{"spine_not-a-token", "/debug/pprof/heap", "", 401},
		{e.tokens[e.one], "/debug/pprof/heap", "missing_scope", 403},
		{e.tokens[e.two], "/debug/pprof/goroutine", "missing_scope", 403},
		{e.tokens[e.one], "/debug/pprof/cmdline", "missing_scope", 403},
		{admin, "/debug/pprof/cmdline", "no_such_profile", 404},
		{admin, "/debug/pprof/no-such", "no_such_profile", 404},
	} {
		status, body := get(t, c.tok, c.path)
		var out struct{ Error string }
		json.Unmarshal(body, &out)
		if status != c.status || (c.code != "" && out.Error != c.code) {
			t.Errorf("GET %s with token %.12q: %d %s, want %d %s", c.path, c.tok, status, body, c.status, c.code)
		}
		if bytes.Contains(body, []byte("spine serve")) || bytes.Contains(body, []byte(".test")) {
			t.Errorf("GET %s shows the command line: %s", c.path, body)
		}
	}
}
