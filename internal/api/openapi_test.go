package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// openAPI is openapi.json, read as the JSON-schema library reads it.
type openAPI struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema // by JSON pointer
}

const docURL = "https://spine.invalid/openapi.json"

func loadOpenAPI(t *testing.T) *openAPI {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPIDoc))
	if err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1's schema dialect
	c.AssertFormat()                     // date-time and the like are checked, not only annotated
	if err := c.AddResource(docURL, doc); err != nil {
		t.Fatal(err)
	}
	m := doc.(map[string]any)
	if v, _ := m["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi.json declares OpenAPI %q, want 3.1.x", v)
	}
	return &openAPI{doc: m, compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

// schema compiles the schema at the JSON pointer ptr of the document.
func (o *openAPI) schema(t *testing.T, ptr string) *jsonschema.Schema {
	t.Helper()
	if s, ok := o.schemas[ptr]; ok {
		return s
	}
	s, err := o.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		t.Fatalf("compiling the schema at %s: %v", ptr, err)
	}
	o.schemas[ptr] = s
	return s
}

// pointer escapes a JSON-pointer token.
func pointer(tok string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(tok)
}

// operations returns every described operation as "METHOD /path".
func (o *openAPI) operations() []string {
	var out []string
	for path, item := range o.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// opPointer is the JSON pointer of an operation ("POST /v1/services").
func opPointer(op string) string {
	method, path, _ := strings.Cut(op, " ")
	return "/paths/" + pointer(path) + "/" + strings.ToLower(method)
}

// at returns the value at ptr, following one $ref to a component.
func (o *openAPI) at(ptr string) (any, string) {
	var v any = o.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, ptr
		}
		v = m[tok]
	}
	if m, ok := v.(map[string]any); ok {
		if ref, ok := m["$ref"].(string); ok && strings.HasPrefix(ref, "#/") {
			return o.at(strings.TrimPrefix(ref, "#"))
		}
	}
	return v, ptr
}

// The router and openapi.json agree both ways: every pattern New
// registers is described (but the catch-all "/", which answers
// no_such_route), and every described operation is routed.
func TestOpenAPIMatchesRouter(t *testing.T) {
	o := loadOpenAPI(t)
	_, patterns := newHandler(Config{Platform: platform.New(nil, platform.Options{})})
	described := o.operations()
	for _, p := range patterns {
		if p == "/" {
			continue
		}
		if !slices.Contains(described, p) {
			t.Errorf("route %q is not described in internal/api/openapi.json: add its path, method, x-spine-scope, schemas and examples (docs/architecture.md, \"Adding a route\")", p)
		}
	}
	for _, op := range described {
		if !slices.Contains(patterns, op) {
			t.Errorf("openapi.json describes %q, which the router does not have", op)
		}
	}
	if len(described) < 25 {
		t.Errorf("only %d operations described", len(described))
	}
}

// The dashboard (package dashboard, /ui/ on the same listener) is not part
// of the API: its pages are HTML for a browser session, its forms change
// nothing but through the API's own routes, and it is mounted beside the
// API by the node. So no API route and no openapi.json path is under
// /ui/; the dashboard's routes get their isolation cases in
// internal/security's TestDashboardTenantIsolation instead.
func TestOpenAPILeavesTheDashboardOut(t *testing.T) {
	o := loadOpenAPI(t)
	_, patterns := newHandler(Config{Platform: platform.New(nil, platform.Options{})})
	for _, p := range append(patterns, o.operations()...) {
		if _, path, _ := strings.Cut(p, " "); strings.HasPrefix(path, "/ui") {
			t.Errorf("%q is a dashboard path in the API; the dashboard's routes are package dashboard's", p)
		}
	}
}

// Every operation says what it needs (a scope, or none for the public
// routes), and every JSON request body and answer it describes has an
// example that its schema accepts. Error answers are examples too.
func TestOpenAPIExamplesValidate(t *testing.T) {
	o := loadOpenAPI(t)
	// Controls: the schemas refuse what the API refuses.
	for _, c := range []struct {
		ptr string
		v   string
	}{
		{"/components/schemas/DomainCreate", `{"name":1}`},
		{"/components/schemas/DomainCreate", `{"name":"x","owner":"me"}`},
		{"/components/schemas/TokenCreate", `{"name":"ci","scopes":["admin"]}`},
		{"/components/schemas/Token", `{"name":"ci","scopes":[],"created_at":"yesterday"}`},
		{"/components/schemas/TokenCreated", `{"name":"ci","scopes":[],"created_at":"2026-01-01T00:00:00Z","token":"secret"}`},
	} {
		v, _ := jsonschema.UnmarshalJSON(strings.NewReader(c.v))
		if err := o.schema(t, c.ptr).Validate(v); err == nil {
			t.Errorf("%s accepts %s", c.ptr, c.v)
		}
	}
	for _, op := range o.operations() {
		ptr := opPointer(op)
		v, _ := o.at(ptr)
		m := v.(map[string]any)
		if _, ok := m["security"]; !ok {
			t.Errorf("%s: no security requirement (an empty list for a public route)", op)
		}
		if sec, _ := m["security"].([]any); len(sec) > 0 {
			if s, _ := m["x-spine-scope"].(string); s == "" {
				t.Errorf("%s: needs a token but names no x-spine-scope", op)
			}
		}
		var media []string // pointers of the JSON media types of op
		if _, ok := m["requestBody"]; ok {
			media = append(media, ptr+"/requestBody/content/application~1json")
		}
		resps, _ := m["responses"].(map[string]any)
		if len(resps) == 0 {
			t.Errorf("%s: no responses", op)
		}
		for code := range resps {
			rv, rptr := o.at(ptr + "/responses/" + code)
			content, _ := rv.(map[string]any)["content"].(map[string]any)
			if _, ok := content["application/json"]; ok {
				media = append(media, rptr+"/content/application~1json")
			}
		}
		for _, mp := range media {
			mv, _ := o.at(mp)
			mt := mv.(map[string]any)
			ex, ok := mt["example"]
			if !ok {
				t.Errorf("%s: %s has no example", op, mp)
				continue
			}
			if err := o.schema(t, mp+"/schema").Validate(ex); err != nil {
				t.Errorf("%s: the example at %s does not fit its schema: %v", op, mp, err)
			}
		}
	}
}

// step is one call of the scenario that TestOpenAPIAnswersValidate plays.
type step struct {
	route      string // the router's pattern, as described
	method     string
	path, body string
	token      string // "admin" (operator), "tenant", "none"
	want       int
}

// Real answers fit the description: a scenario calls every described
// operation against the API over a real SQLite store, and each answer's
// status must be described for its operation and its body must fit that
// status's schema. An operation the scenario never calls fails the test.
func TestOpenAPIAnswersValidate(t *testing.T) {
	o := loadOpenAPI(t)
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := platform.New(db, platform.Options{AllowPrivateWebhooks: true, Ownership: func(context.Context, string, string) (bool, string, error) { return true, "verified", nil }})
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if _, err := p.Bootstrap(ctx, tokenFile); err != nil {
		t.Fatal(err)
	}
	admin := readToken(t, tokenFile)
	if _, err := p.EnsureDomain(ctx, platform.DefaultProjectID, "localhost", true); err != nil {
		t.Fatal(err)
	}
	_, tenant, err := p.CreateProject(ctx, "tenant")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Platform: p, CARoot: func() []byte { return []byte("-----BEGIN CERTIFICATE-----\n") }, Version: "test", StoreKind: "sqlite",
		ECH: func() (client.ECHInfo, bool) {
			return client.ECHInfo{PublicName: "ech.example.com", ConfigList: []byte{0, 4, 0xfe, 0x0d, 0, 0}, ALPN: []string{"h3", "h2"}}, true
		},
		Webhooks: recordingTester{db}, Metrics: metrics.New(metrics.Sources{}).Handler()}))
	t.Cleanup(srv.Close)

	up := `"upstreams":["http://127.0.0.1:9000"]`
	pki := pkitest.NewRoot("OpenAPI Test Root")
	leaf := pki.Issue(pkitest.Leaf{DNSNames: []string{"shop.localhost"}})
	upload, _ := json.Marshal(client.CertificateUpload{Certificate: string(leaf.ChainPEM), PrivateKey: string(leaf.KeyPEM), Root: string(pki.RootPEM())})
	badUpload, _ := json.Marshal(client.CertificateUpload{Certificate: string(leaf.ChainPEM), PrivateKey: string(leaf.KeyPEM)}) // no root: no chain
	steps := []step{
		{"GET /healthz", "GET", "/healthz", "", "none", 200},
		{"GET /readyz", "GET", "/readyz", "", "none", 200},
		{"GET /metrics", "GET", "/metrics", "", "none", 200},
		{"GET /v1/version", "GET", "/v1/version", "", "none", 200},
		{"GET /v1/ca/root", "GET", "/v1/ca/root", "", "none", 200},
		{"GET /v1/ech", "GET", "/v1/ech", "", "none", 200},
		{"GET /v1/openapi.json", "GET", "/v1/openapi.json", "", "none", 200},
		{"GET /v1/project", "GET", "/v1/project", "", "admin", 200},
		{"GET /v1/project", "GET", "/v1/project", "", "none", 401},
		{"POST /v1/domains", "POST", "/v1/domains", `{"name":"example.com"}`, "admin", 201},
		{"POST /v1/domains", "POST", "/v1/domains", `{"name":"example.com"}`, "admin", 409},
		{"POST /v1/domains", "POST", "/v1/domains", `{"name":"bad..name"}`, "admin", 400},
		{"GET /v1/domains", "GET", "/v1/domains", "", "admin", 200},
		{"GET /v1/domains/{name}", "GET", "/v1/domains/example.com", "", "admin", 200},
		{"GET /v1/domains/{name}", "GET", "/v1/domains/nothere.com", "", "admin", 404},
		{"POST /v1/domains/{name}/verify", "POST", "/v1/domains/example.com/verify", "", "admin", 200},
		{"POST /v1/services", "POST", "/v1/services", `{"name":"api","domain":"example.com",` + up + `}`, "admin", 201},
		{"POST /v1/services", "POST", "/v1/services", `{"name":"api","hsts_max_age":0,` + up + `}`, "tenant", 400}, // the tenant has no domain
		{"GET /v1/services", "GET", "/v1/services", "", "admin", 200},
		{"GET /v1/services", "GET", "/v1/services?offset=0&limit=1", "", "admin", 200},
		{"GET /v1/services", "GET", "/v1/services?limit=1001", "", "admin", 400},
		{"GET /v1/services", "GET", "/v1/services?offset=-1", "", "admin", 400},
		{"GET /v1/services", "GET", "/v1/services?after=api&limit=1", "", "admin", 200},
		{"GET /v1/services/{name}", "GET", "/v1/services/api", "", "admin", 200},
		{"GET /v1/certificates", "GET", "/v1/certificates", "", "admin", 200},
		{"POST /v1/services", "POST", "/v1/services", `{"name":"mtls","domain":"example.com",` + up + `,"client_auth":"optional","client_ca":` + strconv.Quote(string(pki.RootPEM())) + `}`, "admin", 201},
		{"PATCH /v1/services/{name}", "PATCH", "/v1/services/mtls", `{"client_auth":"off"}`, "admin", 200},
		{"DELETE /v1/services/{name}", "DELETE", "/v1/services/mtls", "", "admin", 204},
		{"PUT /v1/certificates/{name}", "PUT", "/v1/certificates/shop.localhost", string(upload), "admin", 200},
		{"PUT /v1/certificates/{name}", "PUT", "/v1/certificates/shop.localhost", string(badUpload), "admin", 400},
		{"PUT /v1/certificates/{name}", "PUT", "/v1/certificates/shop.localhost", string(upload), "tenant", 400}, // not the tenant's domain
		{"GET /v1/certificates", "GET", "/v1/certificates", "", "admin", 200},
		{"DELETE /v1/certificates/{name}", "DELETE", "/v1/certificates/shop.localhost", "", "admin", 204},
		{"DELETE /v1/certificates/{name}", "DELETE", "/v1/certificates/shop.localhost", "", "admin", 404},
		{"PATCH /v1/services/{name}", "PATCH", "/v1/services/api", `{"upstreams":["http://127.0.0.1:9001"],"health_path":"/healthz"}`, "admin", 200},
		{"PATCH /v1/services/{name}", "PATCH", "/v1/services/nothere", `{"hsts_max_age":0}`, "admin", 404},
		{"DELETE /v1/domains/{name}", "DELETE", "/v1/domains/example.com", "", "admin", 409},
		{"DELETE /v1/services/{name}", "DELETE", "/v1/services/api", "", "admin", 204},
		{"DELETE /v1/domains/{name}", "DELETE", "/v1/domains/example.com", "", "admin", 204},
		{"POST /v1/tokens", "POST", "/v1/tokens", `{"name":"ci","scopes":["read"],"expires_in":"30d"}`, "admin", 201},
		{"GET /v1/tokens", "GET", "/v1/tokens", "", "admin", 200},
		{"DELETE /v1/tokens/{name}", "DELETE", "/v1/tokens/ci", "", "admin", 204},
		{"DELETE /v1/tokens/{name}", "DELETE", "/v1/tokens/ci", "", "admin", 404},
		{"POST /v1/projects", "POST", "/v1/projects", `{"name":"acme"}`, "admin", 201},
		{"POST /v1/projects", "POST", "/v1/projects", `{"name":"acme"}`, "tenant", 403},
		{"GET /v1/projects", "GET", "/v1/projects", "", "admin", 200},
		{"GET /v1/projects/{name}", "GET", "/v1/projects/acme", "", "admin", 200},
		{"POST /v1/projects/{name}/suspend", "POST", "/v1/projects/acme/suspend", "", "admin", 200},
		{"POST /v1/projects/{name}/resume", "POST", "/v1/projects/acme/resume", "", "admin", 200},
		{"DELETE /v1/projects/{name}", "DELETE", "/v1/projects/acme", "", "admin", 204},
		{"GET /v1/nodes", "GET", "/v1/nodes", "", "admin", 200},
		{"GET /debug/pprof/{name}", "GET", "/debug/pprof/heap", "", "admin", 200},
		{"GET /debug/pprof/{name}", "GET", "/debug/pprof/goroutine?debug=1", "", "admin", 200},
		{"GET /debug/pprof/{name}", "GET", "/debug/pprof/heap", "", "tenant", 403},
		{"GET /debug/pprof/{name}", "GET", "/debug/pprof/cmdline", "", "admin", 404},
		{"GET /v1/audit", "GET", "/v1/audit?limit=50", "", "admin", 200},
		{"GET /v1/audit", "GET", "/v1/audit?limit=0", "", "admin", 400},
		{"GET /v1/events", "GET", "/v1/events?after=0", "", "admin", 200},
		{"GET /v1/events", "GET", "/v1/events?after=latest", "", "admin", 400},
		{"GET /v1/events/stream", "GET", "/v1/events/stream", "", "admin", 503}, // no event hub in this test
		// {wh} and {dlv} stand for the IDs the answers before them gave.
		{"POST /v1/webhooks", "POST", "/v1/webhooks", `{"url":"http://127.0.0.1:9/hook","events":["service.created"]}`, "admin", 201},
		{"POST /v1/webhooks", "POST", "/v1/webhooks", `{"url":"ftp://x"}`, "admin", 400},
		{"GET /v1/webhooks", "GET", "/v1/webhooks", "", "admin", 200},
		{"GET /v1/webhooks/{id}", "GET", "/v1/webhooks/{wh}", "", "admin", 200},
		{"POST /v1/webhooks/{id}/test", "POST", "/v1/webhooks/{wh}/test", "", "admin", 200},
		{"GET /v1/webhooks/{id}/deliveries", "GET", "/v1/webhooks/{wh}/deliveries", "", "admin", 200},
		{"GET /v1/deliveries/{id}", "GET", "/v1/deliveries/{dlv}", "", "admin", 200},
		{"POST /v1/deliveries/{id}/redeliver", "POST", "/v1/deliveries/{dlv}/redeliver", "", "admin", 202},
		{"POST /v1/webhooks/{id}/enable", "POST", "/v1/webhooks/{wh}/enable", "", "admin", 200},
		{"DELETE /v1/webhooks/{id}", "DELETE", "/v1/webhooks/{wh}", "", "admin", 204},
		{"GET /v1/webhooks/{id}", "GET", "/v1/webhooks/{wh}", "", "admin", 404},
		{"GET /v1/quota", "GET", "/v1/quota", "", "tenant", 200},
		{"PUT /v1/projects/{id}/quota", "PUT", "/v1/projects/default/quota", `{"services":500,"domains":null}`, "admin", 200},
		{"PUT /v1/projects/{id}/quota", "PUT", "/v1/projects/default/quota", `{"services":-1}`, "admin", 400},
		{"GET /v1/projects/{id}/quota", "GET", "/v1/projects/default/quota", "", "admin", 200},
		{"GET /v1/projects/{id}/quota", "GET", "/v1/projects/default/quota", "", "tenant", 403},
	}
	called := map[string]bool{}
	ids := map[string]string{} // "{wh}", "{dlv}" -> the ID an earlier answer gave
	for _, st := range steps {
		called[st.route] = true
		tok := map[string]string{"admin": admin, "tenant": tenant, "none": ""}[st.token]
		path := st.path
		for k, v := range ids {
			path = strings.ReplaceAll(path, k, v)
		}
		code, ctype, body := call(t, srv.URL, tok, st.method, path, st.body)
		if code < 300 && (st.route == "POST /v1/webhooks" || st.route == "POST /v1/webhooks/{id}/test") {
			var v struct{ ID string }
			json.Unmarshal(body, &v)
			ids[map[string]string{"POST /v1/webhooks": "{wh}", "POST /v1/webhooks/{id}/test": "{dlv}"}[st.route]] = v.ID
		}
		name := fmt.Sprintf("%s %s (%s token)", st.method, st.path, st.token)
		if code != st.want {
			t.Errorf("%s: %d %s, want %d", name, code, body, st.want)
			continue
		}
		rv, rptr := o.at(opPointer(st.route) + "/responses/" + fmt.Sprint(code))
		if rv == nil {
			t.Errorf("%s answered %d, which openapi.json does not describe for %s", name, code, st.route)
			continue
		}
		content, _ := rv.(map[string]any)["content"].(map[string]any)
		if len(content) == 0 {
			if len(body) > 0 {
				t.Errorf("%s: %d with a body, described without one", name, code)
			}
			continue
		}
		mt, _ := strings.CutSuffix(strings.Split(ctype, ";")[0], " ")
		if _, ok := content[mt]; !ok {
			t.Errorf("%s: answered %s, described as %v", name, mt, keys(content))
			continue
		}
		if mt != "application/json" {
			continue
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			t.Errorf("%s: answer is not JSON: %v", name, err)
			continue
		}
		if err := o.schema(t, rptr+"/content/application~1json/schema").Validate(v); err != nil {
			t.Errorf("%s: the answer does not fit the schema at %s: %v\n%s", name, rptr, err, body)
		}
	}
	for _, op := range o.operations() {
		if !called[op] {
			t.Errorf("%s is described but the scenario never calls it: add a step to TestOpenAPIAnswersValidate", op)
		}
	}
}

func call(t *testing.T, base, tok, method, path, body string) (int, string, []byte) {
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
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func readToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// recordingTester records a test message as a failed delivery without
// sending it: this test checks the API's answers, not the sender.
type recordingTester struct{ db *store.DB }

func (r recordingTester) Test(ctx context.Context, w store.Webhook) (store.Delivery, error) {
	now := time.Now().UTC()
	d := store.Delivery{ID: "dlv_0123456789abcdef01234567", ProjectID: w.ProjectID, WebhookID: w.ID, MsgID: "msg_0123456789abcdef01234567",
		Type: "webhook.test", Payload: []byte(`{"type":"webhook.test"}`), Status: store.DeliveryFailed, Attempts: 1,
		LastError: "not sent (test)", CreatedAt: now, UpdatedAt: now}
	return d, r.db.AddDelivery(ctx, d)
}
