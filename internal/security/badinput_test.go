package security

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/platform"
)

// TestAPIBadInput sends bad input for every field of every API body and
// path: each is refused with its status, a stable error code and a message
// that says what to fix, and nothing is stored. Afterwards a good service
// still goes live, so no refused input reached the edge's route table.
func TestAPIBadInput(t *testing.T) {
	s := startSpine(t, edge.Config{})
	base := "http://" + s.n.APIAddr()
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	ups := `"upstreams":["` + up + `"]`
	s.addService(t, s.admin, client.ServiceCreate{Name: "taken", Upstreams: []string{up}})
	// A domain that is not loopback, whose served names only the store knows.
	if _, err := s.n.Platform().AddDomain(t.Context(), platform.DefaultProjectID, "loop.test", true); err != nil {
		t.Fatal(err)
	}
	s.addService(t, s.admin, client.ServiceCreate{Name: "svc", Domain: "loop.test", Upstreams: []string{up}})
	_, apiPort, _ := net.SplitHostPort(s.n.APIAddr())
	_, httpsPort, _ := net.SplitHostPort(s.n.HTTPSAddr())
	_, httpPort, _ := net.SplitHostPort(s.n.HTTPAddr())

	state := func() string {
		ds, _ := s.admin.Domains(t.Context())
		ss, _ := s.admin.Services(t.Context())
		b, _ := json.Marshal([]any{ds, ss})
		return string(b)
	}
	before := state()

	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
		hint                            string // the message must contain it
	}{
		// Service names.
		{"service name too long", "POST", "/v1/services", "", `{"name":"` + strings.Repeat("a", 64) + `",` + ups + `}`, 400, "invalid_name", "limit is 63"},
		{"service name malformed", "POST", "/v1/services", "", `{"name":"Bad_Name!",` + ups + `}`, 400, "invalid_name", "lower-case letters"},
		{"service name with a leading hyphen", "POST", "/v1/services", "", `{"name":"-x",` + ups + `}`, 400, "invalid_name", "hyphens"},
		{"service name empty", "POST", "/v1/services", "", `{"name":"",` + ups + `}`, 400, "invalid_name", "empty"},
		{"service name taken", "POST", "/v1/services", "", `{"name":"taken",` + ups + `}`, 409, "conflict", "already"},
		// Body shape.
		{"unknown field", "POST", "/v1/services", "", `{"name":"x",` + ups + `,"colour":"red"}`, 400, "unknown_field", "colour"},
		{"name of the wrong type", "POST", "/v1/services", "", `{"name":1,` + ups + `}`, 400, "invalid_json", "name"},
		{"upstreams of the wrong type", "POST", "/v1/services", "", `{"name":"x","upstreams":"` + up + `"}`, 400, "invalid_json", "upstreams"},
		{"hosts of the wrong type", "POST", "/v1/services", "", `{"name":"x","hosts":"a.localhost",` + ups + `}`, 400, "invalid_json", "hosts"},
		{"hsts_max_age of the wrong type", "POST", "/v1/services", "", `{"name":"x","hsts_max_age":"year",` + ups + `}`, 400, "invalid_json", "hsts_max_age"},
		{"hsts_max_age negative", "POST", "/v1/services", "", `{"name":"x","hsts_max_age":-1,` + ups + `}`, 400, "invalid_hsts", "between 0"},
		{"hsts_max_age too large", "POST", "/v1/services", "", `{"name":"x","hsts_max_age":99999999999,` + ups + `}`, 400, "", "hsts_max_age"},
		{"not JSON", "POST", "/v1/services", "", `name=x`, 400, "invalid_json", "not valid JSON"},
		{"empty body", "POST", "/v1/services", "", ``, 400, "invalid_json", "empty"},
		{"two objects", "POST", "/v1/services", "", `{"name":"x",` + ups + `}{"name":"y"}`, 400, "invalid_json", "exactly one"},
		{"a JSON array", "POST", "/v1/services", "", `[1]`, 400, "invalid_json", ""},
		{"wrong content type", "POST", "/v1/services", "text/plain", `{"name":"x",` + ups + `}`, 415, "unsupported_media_type", "application/json"},
		{"oversized body", "POST", "/v1/services", "", `{"name":"x",` + ups + `,"hosts":["` + strings.Repeat("a", 70<<10) + `"]}`, 413, "body_too_large", "larger than"},
		// Hostnames.
		{"host with a wildcard", "POST", "/v1/services", "", `{"name":"x","hosts":["*.localhost"],` + ups + `}`, 400, "invalid_hostname", "wildcard"},
		{"host with a port", "POST", "/v1/services", "", `{"name":"x","hosts":["x.localhost:8443"],` + ups + `}`, 400, "invalid_hostname", "not allowed"},
		{"host with a long label", "POST", "/v1/services", "", `{"name":"x","hosts":["` + strings.Repeat("a", 64) + `.localhost"],` + ups + `}`, 400, "invalid_hostname", "63"},
		{"host too long", "POST", "/v1/services", "", `{"name":"x","hosts":["` + strings.Repeat("a.", 130) + `localhost"],` + ups + `}`, 400, "invalid_hostname", "253"},
		{"host outside the project's domains", "POST", "/v1/services", "", `{"name":"x","hosts":["example.com"],` + ups + `}`, 400, "host_outside_domains", "domain"},
		{"host another service holds", "POST", "/v1/services", "", `{"name":"x","hosts":["taken.localhost"],` + ups + `}`, 409, "conflict", "taken"},
		{"too many hosts", "POST", "/v1/services", "", `{"name":"x","hosts":[` + strings.TrimSuffix(strings.Repeat(`"h.localhost",`, 101), ",") + `],` + ups + `}`, 400, "too_many_hosts", "at most"},
		{"unknown domain", "POST", "/v1/services", "", `{"name":"x","domain":"example.com",` + ups + `}`, 400, "unknown_domain", "spine domain add"},
		// Upstreams.
		{"no upstream", "POST", "/v1/services", "", `{"name":"x"}`, 400, "no_upstream", "--upstream"},
		{"upstream scheme ftp", "POST", "/v1/services", "", `{"name":"x","upstreams":["ftp://127.0.0.1:21"]}`, 400, "invalid_upstream", "http:// or https://"},
		{"upstream scheme file", "POST", "/v1/services", "", `{"name":"x","upstreams":["file:///etc/passwd"]}`, 400, "invalid_upstream", ""},
		{"upstream scheme unix", "POST", "/v1/services", "", `{"name":"x","upstreams":["unix:///run/x.sock"]}`, 400, "invalid_upstream", ""},
		{"upstream without host", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://"]}`, 400, "invalid_upstream", "absolute URL"},
		{"upstream relative", "POST", "/v1/services", "", `{"name":"x","upstreams":["/path"]}`, 400, "invalid_upstream", "absolute URL"},
		{"upstream with credentials", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://user:hunter2@127.0.0.1:9"]}`, 400, "invalid_upstream", "credentials"},
		{"upstream with a query", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:9/?a=b"]}`, 400, "invalid_upstream", "query"},
		{"upstream with an empty query", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:9/?"]}`, 400, "invalid_upstream", ""},
		{"upstream with port 0", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:0"]}`, 400, "invalid_upstream", "port"},
		{"upstream with port 99999", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:99999"]}`, 400, "invalid_upstream", "port"},
		{"upstream with a named port", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:http"]}`, 400, "invalid_upstream", ""},
		{"upstream at Spine's HTTPS listener", "POST", "/v1/services", "", `{"name":"x","upstreams":["https://127.0.0.1:` + httpsPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at Spine's HTTP listener", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at Spine's API", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://localhost:` + apiPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at Spine through ::1", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://[::1]:` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at Spine through a served name", "POST", "/v1/services", "", `{"name":"x","upstreams":["https://taken.localhost:` + httpsPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at a name Spine serves", "POST", "/v1/services", "", `{"name":"x","upstreams":["https://svc.loop.test:` + httpsPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream at the service's own new name", "POST", "/v1/services", "", `{"name":"x","hosts":["self.loop.test"],"upstreams":["http://SELF.loop.test.:` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"upstream with an empty port", "POST", "/v1/services", "", `{"name":"x","upstreams":["http://127.0.0.1:"]}`, 400, "invalid_upstream", "port"},
		{"upstream at Spine in upper case", "POST", "/v1/services", "", `{"name":"x","upstreams":["HTTP://LOCALHOST:` + httpPort + `"]}`, 400, "proxy_loop", "proxy loop"},
		{"too many upstreams", "POST", "/v1/services", "", `{"name":"x","upstreams":[` + strings.TrimSuffix(strings.Repeat(`"`+up+`",`, 33), ",") + `]}`, 400, "too_many_upstreams", "at most"},
		// Domains.
		{"domain empty", "POST", "/v1/domains", "", `{"name":""}`, 400, "invalid_hostname", "empty"},
		{"domain malformed", "POST", "/v1/domains", "", `{"name":"exa mple.com"}`, 400, "invalid_hostname", "not allowed"},
		{"domain too long", "POST", "/v1/domains", "", `{"name":"` + strings.Repeat("a.", 127) + `com"}`, 400, "invalid_hostname", "253"},
		{"domain with an unknown field", "POST", "/v1/domains", "", `{"name":"x.test","owner":"me"}`, 400, "unknown_field", "owner"},
		{"domain of the wrong type", "POST", "/v1/domains", "", `{"name":["x.test"]}`, 400, "invalid_json", "name"},
		{"domain taken", "POST", "/v1/domains", "", `{"name":"localhost"}`, 409, "conflict", "already"},
		// Paths.
		{"get a malformed domain", "GET", "/v1/domains/bad..name", "", "", 400, "invalid_hostname", "empty label"},
		{"delete a malformed domain", "DELETE", "/v1/domains/bad..name", "", "", 400, "invalid_hostname", "empty label"},
		{"delete a domain in use", "DELETE", "/v1/domains/localhost", "", "", 409, "in_use", "delete them first"},
		{"get a missing service", "GET", "/v1/services/nothere", "", "", 404, "not_found", "does not exist"},
		{"delete a missing service", "DELETE", "/v1/services/nothere", "", "", 404, "not_found", "does not exist"},
		{"unknown route", "GET", "/v1/servces", "", "", 404, "no_such_route", "/v1/services"},
		{"wrong method", "PUT", "/v1/services/taken", "", `{}`, 404, "no_such_route", "not part of the API"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+s.token)
			ct := tc.ctype
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e client.Error
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d (%s: %s), want %d", resp.StatusCode, e.Code, e.Message, tc.status)
			}
			if e.Code == "" || e.Message == "" {
				t.Errorf("answer without an error code and message: %+v", e)
			}
			if tc.code != "" && e.Code != tc.code {
				t.Errorf("code %q (%s), want %q", e.Code, e.Message, tc.code)
			}
			if !strings.Contains(e.Message, tc.hint) {
				t.Errorf("message %q does not say %q", e.Message, tc.hint)
			}
			if strings.Contains(e.Message, "hunter2") {
				t.Errorf("message shows the upstream's password: %q", e.Message)
			}
		})
	}
	if after := state(); after != before {
		t.Errorf("refused requests changed what is stored:\nbefore %s\nafter  %s", before, after)
	}
	// The edge still takes route updates: nothing refused poisoned them.
	s.addService(t, s.admin, client.ServiceCreate{Name: "after", Upstreams: []string{up}})
	reportf(t, "%d kinds of bad API input refused with a code and a message that says what to fix; nothing stored", len(cases))
}

// TestCLIBadInput checks that bad command-line arguments are refused with a
// message that says what to fix, before anything reaches the API.
func TestCLIBadInput(t *testing.T) {
	t.Parallel()
	bin := buildSpine(t)
	u := startSpineUp(t, bin)
	cases := []struct {
		args []string
		hint string
	}{
		{[]string{"service", "create"}, "accepts 1 arg"},
		{[]string{"service", "create", "a", "b"}, "accepts 1 arg"},
		{[]string{"service", "create", "x"}, "--upstream"},
		{[]string{"service", "create", "x", "--upstream", "http://127.0.0.1:9", "--hsts-max-age", "year"}, "invalid argument"},
		{[]string{"service", "create", "x", "--upstream", "gopher://h"}, "http:// or https://"},
		{[]string{"service", "create", "UPPER_case", "--upstream", "http://127.0.0.1:9"}, "lower-case letters"},
		{[]string{"service", "create", "x", "--upstream", "http://127.0.0.1:9", "--timeout", "soon"}, "invalid argument"},
		{[]string{"service", "show"}, "accepts 1 arg"},
		{[]string{"service", "list", "extra"}, "unknown command"},
		{[]string{"service", "list", "-o", "yaml"}, "--output must be text or json"},
		{[]string{"domain", "add"}, "accepts 1 arg"},
		{[]string{"domain", "add", "bad..name"}, "empty label"},
		{[]string{"domain", "remove", strings.Repeat("a", 64) + ".test"}, "limit is 63"},
		{[]string{"project", "create"}, "accepts 1 arg"},
		{[]string{"project", "create", "Bad Name"}, "lower-case letters"},
		{[]string{"up", "--https-addr", "nonsense"}, "--https-addr"},
		{[]string{"no-such-command"}, "unknown command"},
		{[]string{"service", "list", "--no-such-flag"}, "unknown flag"},
	}
	for _, tc := range cases {
		o, e, err := u.cli(t, nil, tc.args...)
		if err == nil {
			t.Errorf("spine %s succeeded: %s", strings.Join(tc.args, " "), o)
			continue
		}
		if !strings.Contains(e, tc.hint) {
			t.Errorf("spine %s: error %q does not say %q", strings.Join(tc.args, " "), strings.TrimSpace(e), tc.hint)
		}
	}
	reportf(t, "%d kinds of bad CLI arguments refused with a message that says what to fix", len(cases))
}
