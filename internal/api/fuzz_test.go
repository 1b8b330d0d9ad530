package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// fuzzAPI is the API handler over a real SQLite store, with the default
// project holding the domain "localhost".
func fuzzAPI(f *testing.F) (http.Handler, string, *platform.Platform) {
	f.Helper()
	dir := f.TempDir()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "spine.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	p := platform.New(db, platform.Options{OwnAddrs: []string{"127.0.0.1:8443", "127.0.0.1:8080", "127.0.0.1:2019"}})
	if _, err := p.Bootstrap(ctx, filepath.Join(dir, "admin.token")); err != nil {
		f.Fatal(err)
	}
	if _, err := p.EnsureDomain(ctx, platform.DefaultProjectID, "localhost", true); err != nil {
		f.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		f.Fatal(err)
	}
	h := New(Config{Platform: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return h, strings.TrimSpace(string(tok)), p
}

// fuzzPost sends body to path and checks the answer: a known status, never
// a 5xx, and on refusal a JSON error with a code and a message.
func fuzzPost(t *testing.T, h http.Handler, tok, path, body string, ok int) int {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !slices.Contains([]int{ok, 400, 404, 409, 413}, rec.Code) {
		t.Fatalf("POST %s %q: status %d %s", path, body, rec.Code, rec.Body)
	}
	if rec.Code != ok {
		var e client.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
			t.Fatalf("POST %s %q: %d with answer %q, not a JSON error with code and message", path, body, rec.Code, rec.Body)
		}
	}
	return rec.Code
}

// FuzzCreateService decodes arbitrary bodies of POST /v1/services through
// the real handler, platform and store: every answer is defined, and a
// refused body stores nothing.
func FuzzCreateService(f *testing.F) {
	for _, s := range []string{
		`{"name":"api","upstreams":["http://127.0.0.1:9000"]}`,
		`{"name":"x","hosts":["a.localhost","B.LOCALHOST."],"upstreams":["https://10.0.0.1/v1/"],"hsts_max_age":0}`,
		`{"name":"x","upstreams":["http://127.0.0.1:8443"]}`, `{"name":1}`, `{"name":"x","colour":1}`, `[]`, `{}`, `{"name":"x"}{}`,
		`{"name":"x","upstreams":["http://h:99999"]}`, `{"name":"x","hsts_max_age":-1,"upstreams":["http://h"]}`, ``, `nul`,
	} {
		f.Add(s)
	}
	h, tok, p := fuzzAPI(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body string) {
		before, err := p.ListServices(ctx, platform.DefaultProjectID)
		if err != nil {
			t.Fatal(err)
		}
		code := fuzzPost(t, h, tok, "/v1/services", body, http.StatusCreated)
		after, err := p.ListServices(ctx, platform.DefaultProjectID)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case code != http.StatusCreated && len(after) != len(before):
			t.Fatalf("refused body %q (%d) stored a service", body, code)
		case code == http.StatusCreated:
			if len(after) != len(before)+1 {
				t.Fatalf("accepted body %q stored %d services", body, len(after)-len(before))
			}
			var s client.Service
			json.Unmarshal([]byte(body), &s)
			p.DeleteService(ctx, platform.DefaultProjectID, s.Name) // keep names free for later inputs
		}
	})
}

// FuzzAddDomain does the same for POST /v1/domains.
func FuzzAddDomain(f *testing.F) {
	for _, s := range []string{`{"name":"example.com"}`, `{"name":"Bücher.example."}`, `{"name":"localhost"}`, `{"name":"a..b"}`, `{"name":["x"]}`, `{"name":"x","y":1}`} {
		f.Add(s)
	}
	h, tok, p := fuzzAPI(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body string) {
		before, _ := p.ListDomains(ctx, platform.DefaultProjectID)
		code := fuzzPost(t, h, tok, "/v1/domains", body, http.StatusCreated)
		after, _ := p.ListDomains(ctx, platform.DefaultProjectID)
		if code != http.StatusCreated && len(after) != len(before) {
			t.Fatalf("refused body %q (%d) stored a domain", body, code)
		}
		for _, d := range after {
			if d.Name != "localhost" {
				p.RemoveDomain(ctx, platform.DefaultProjectID, d.Name)
			}
		}
	})
}

// FuzzUpdateService sends arbitrary bodies as PATCH /v1/services/web
// through the real handler, platform and store: every answer is defined; a
// refused body changes nothing; an accepted one leaves a service whose
// every route the edge takes (so that no update can stop the route table
// from going live), with its own name first and at least one upstream.
func FuzzUpdateService(f *testing.F) {
	for _, s := range []string{
		`{"upstreams":["http://127.0.0.1:9001"]}`, `{"add_hosts":["a.localhost"],"remove_hosts":["www.localhost"]}`,
		`{"remove_hosts":["web.localhost"]}`, `{"health_path":"/h?x=1","health_interval":"2s"}`, `{"health_path":"h"}`,
		`{"health_interval":"1ms"}`, `{"hsts_max_age":0}`, `{"upstreams":[]}`, `{}`, `{"add_hosts":["*.localhost"]}`,
		`{"health_path":"/\u0000"}`, `{"upstreams":["http://127.0.0.1:8443"]}`, ``, `[]`,
	} {
		f.Add(s)
	}
	h, tok, p := fuzzAPI(f)
	ctx := context.Background()
	initial, err := p.CreateService(ctx, platform.DefaultProjectID, platform.ServiceSpec{Name: "web", Hosts: []string{"www.localhost"}, Upstreams: []string{"http://127.0.0.1:9000"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		before, err := p.GetService(ctx, platform.DefaultProjectID, "web")
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("PATCH", "/v1/services/web", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		after, err := p.GetService(ctx, platform.DefaultProjectID, "web")
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Code {
		case http.StatusOK:
			if len(after.Upstreams) == 0 || after.Hostnames[0] != "web.localhost" {
				t.Fatalf("body %q left %+v", body, after)
			}
			for _, hn := range after.Hostnames {
				r := edge.Route{Host: hn, Upstreams: after.Upstreams, HSTSMaxAge: after.HSTSMaxAge, HealthPath: after.HealthPath, HealthInterval: after.HealthInterval}
				if err := edge.CheckRoute(r); err != nil {
					t.Fatalf("body %q left a service the edge refuses: %v", body, err)
				}
			}
			// Back to the start, for the next input.
			hsts, path, every := initial.HSTSMaxAge, "", time.Duration(0)
			var remove []string
			for _, hn := range after.Hostnames[1:] {
				if hn != "www.localhost" {
					remove = append(remove, hn)
				}
			}
			var add []string
			if !slices.Contains(after.Hostnames, "www.localhost") {
				add = []string{"www.localhost"}
			}
			if _, err := p.UpdateService(ctx, platform.DefaultProjectID, "web", platform.ServiceUpdate{Upstreams: initial.Upstreams,
				AddHosts: add, RemoveHosts: remove, HSTSMaxAge: &hsts, HealthPath: &path, HealthInterval: &every}); err != nil {
				t.Fatalf("resetting after %q: %v", body, err)
			}
		case 400, 404, 409, 413, 415:
			var e client.Error
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("PATCH %q: %d with answer %q, not a JSON error with code and message", body, rec.Code, rec.Body)
			}
			if !slices.Equal(before.Hostnames, after.Hostnames) || !slices.Equal(before.Upstreams, after.Upstreams) ||
				before.HSTSMaxAge != after.HSTSMaxAge || before.HealthPath != after.HealthPath ||
				before.HealthInterval != after.HealthInterval || !before.UpdatedAt.Equal(after.UpdatedAt) {
				t.Fatalf("refused body %q (%d) changed the service: %+v -> %+v", body, rec.Code, before, after)
			}
		default:
			t.Fatalf("PATCH %q: status %d %s", body, rec.Code, rec.Body)
		}
	})
}
