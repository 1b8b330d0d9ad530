// Package api serves Spine's JSON HTTP API: domains, services, certificates
// and health, each request authenticated by a project's Bearer token and
// confined to that project. The wire types are those of the public client
// package, so server and client cannot drift apart.
//
// Package api maps platform errors to HTTP status codes; it never touches the
// edge or the certificate manager, and reaches the store only through the
// platform. StaleReads (stalereads.go) is the store as the node hands it to
// the platform: it answers the API's reads from the last known state, marked
// stale, while the store is away.
//
// Imports: never internal/node, internal/edge, internal/certs.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/buildinfo"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// MaxBodyBytes is the largest request body the API reads.
const MaxBodyBytes = 64 << 10

// Config configures the API handler.
type Config struct {
	// Platform applies the rules. Required.
	Platform *platform.Platform
	// CARoot returns the internal CA's root certificate (PEM). Default: 404.
	CARoot func() []byte
	// ECH returns what the server publishes of Encrypted Client Hello, or
	// false when ECH is off. Default: off (404).
	ECH func() (client.ECHInfo, bool)
	// Ready reports whether the node can serve; /readyz answers 503 with its
	// error. Default: always ready.
	Ready func(ctx context.Context) error
	// HTTPSPort is the edge's public HTTPS port, used in service URLs. Default 443.
	HTTPSPort int
	// Version and StoreKind are reported by /v1/version.
	Version, StoreKind string
	// Nodes lists the fleet's nodes for GET /v1/nodes. With the store
	// unreachable it may return this node alone with an error wrapping
	// store.ErrUnavailable; the answer is then marked stale. Default: none.
	Nodes func(ctx context.Context) ([]client.Node, error)
	// Events feeds GET /v1/events/stream. Default: none (the stream answers 503).
	Events EventHub
	// Webhooks sends POST /v1/webhooks/{id}/test. Default: none (503).
	Webhooks WebhookTester
	// Metrics serves GET /metrics (Prometheus), without a token. Default:
	// none (404: the node serves its metrics elsewhere, or not at all).
	Metrics http.Handler
	// StreamHeartbeat is how often an idle event stream sends a comment,
	// so that proxies and clients see it alive. Default 15 s.
	StreamHeartbeat time.Duration
	// Logger receives one line per failed request. Default: slog.Default().
	Logger *slog.Logger
	// RenewalWindowRatio is the part of a certificate's lifetime, at its
	// end, in which it is renewed (certs.Config.RenewalWindowRatio): it
	// dates each certificate's renew_after. Default 1/3, certmagic's.
	RenewalWindowRatio float64
	// UnauthenticatedAudit bounds the audit entries of changes refused for
	// want of a valid token (no project to charge them to): per second,
	// with bursts of 60. Default 1; the rest are counted in the log.
	UnauthenticatedAudit float64
}

type server struct {
	cfg   Config
	log   *slog.Logger
	anons *rate.Limiter // audit entries of unauthenticated refusals
}

// New returns the API's HTTP handler.
func New(cfg Config) http.Handler {
	return NewLocal(cfg).Handler()
}

// routeMux is an http.ServeMux that remembers the patterns registered on
// it, so that a test can hold them and openapi.json to each other.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

// newHandler is New, with the route patterns.
func newHandler(cfg Config) (http.Handler, []string) {
	s := newServer(cfg)
	return s.routes()
}

func newServer(cfg Config) *server {
	if cfg.HTTPSPort == 0 {
		cfg.HTTPSPort = 443
	}
	if cfg.RenewalWindowRatio <= 0 || cfg.RenewalWindowRatio >= 1 {
		cfg.RenewalWindowRatio = 1.0 / 3
	}
	if cfg.UnauthenticatedAudit <= 0 {
		cfg.UnauthenticatedAudit = 1
	}
	s := &server{cfg: cfg, log: cfg.Logger, anons: rate.NewLimiter(rate.Limit(cfg.UnauthenticatedAudit), 60)}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "api")
	return s
}

// routes returns the API's handler and its route patterns.
func (s *server) routes() (http.Handler, []string) {
	mux := &routeMux{ServeMux: http.NewServeMux()}
	// Every route is described in openapi.json (TestOpenAPIMatchesRouter).
	// Reads take s.auth(scope, h); changes take s.change(scope, action, h),
	// which also records each attempt in the audit trail.
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("GET /v1/version", s.public(s.version))
	mux.HandleFunc("GET /v1/ca/root", s.public(s.caRoot))
	mux.HandleFunc("GET /v1/ech", s.public(s.ech))
	mux.HandleFunc("GET /v1/openapi.json", s.public(s.openAPI))
	mux.HandleFunc("GET /v1/project", s.auth(platform.ScopeRead, s.project))
	mux.HandleFunc("GET /v1/domains", s.auth(platform.ScopeRead, s.listDomains))
	mux.HandleFunc("POST /v1/domains", s.change(platform.ScopeDomainsWrite, "domain.add", s.addDomain))
	mux.HandleFunc("GET /v1/domains/{name}", s.auth(platform.ScopeRead, s.getDomain))
	mux.HandleFunc("DELETE /v1/domains/{name}", s.change(platform.ScopeDomainsWrite, "domain.remove", s.removeDomain))
	mux.HandleFunc("POST /v1/domains/{name}/verify", s.change(platform.ScopeDomainsWrite, "domain.verify", s.verifyDomain))
	mux.HandleFunc("GET /v1/services", s.auth(platform.ScopeRead, s.listServices))
	mux.HandleFunc("POST /v1/services", s.change(platform.ScopeServicesWrite, "service.create", s.createService))
	mux.HandleFunc("GET /v1/services/{name}", s.auth(platform.ScopeRead, s.getService))
	mux.HandleFunc("PATCH /v1/services/{name}", s.change(platform.ScopeServicesWrite, "service.update", s.updateService))
	mux.HandleFunc("DELETE /v1/services/{name}", s.change(platform.ScopeServicesWrite, "service.delete", s.deleteService))
	mux.HandleFunc("GET /v1/certificates", s.auth(platform.ScopeRead, s.listCertificates))
	mux.HandleFunc("PUT /v1/certificates/{name}", s.change(platform.ScopeCertificatesWrite, "certificate.upload", s.uploadCertificate))
	mux.HandleFunc("DELETE /v1/certificates/{name}", s.change(platform.ScopeCertificatesWrite, "certificate.remove", s.removeCertificate))
	mux.HandleFunc("GET /v1/tokens", s.auth(platform.ScopeRead, s.listTokens))
	mux.HandleFunc("POST /v1/tokens", s.change(platform.ScopeTokensWrite, "token.create", s.createToken))
	mux.HandleFunc("DELETE /v1/tokens/{name}", s.change(platform.ScopeTokensWrite, "token.revoke", s.revokeToken))
	mux.HandleFunc("GET /v1/audit", s.auth(platform.ScopeRead, s.listAudit))
	mux.HandleFunc("GET /v1/projects", s.auth(platform.ScopeOperator, s.listProjects))
	mux.HandleFunc("POST /v1/projects", s.change(platform.ScopeOperator, "project.create", s.createProject))
	mux.HandleFunc("GET /v1/projects/{name}", s.auth(platform.ScopeOperator, s.getProject))
	mux.HandleFunc("DELETE /v1/projects/{name}", s.change(platform.ScopeOperator, "project.delete", s.deleteProject))
	mux.HandleFunc("POST /v1/projects/{name}/suspend", s.change(platform.ScopeOperator, "project.suspend", s.suspendProject))
	mux.HandleFunc("POST /v1/projects/{name}/resume", s.change(platform.ScopeOperator, "project.resume", s.resumeProject))
	mux.HandleFunc("GET /v1/nodes", s.auth(platform.ScopeOperator, s.listNodes))
	mux.HandleFunc("GET /v1/events", s.auth(platform.ScopeRead, s.listEvents))
	mux.HandleFunc("GET /v1/events/stream", s.auth(platform.ScopeRead, s.streamEvents))
	mux.HandleFunc("GET /v1/webhooks", s.auth(platform.ScopeRead, s.listWebhooks))
	mux.HandleFunc("POST /v1/webhooks", s.change(platform.ScopeWebhooksWrite, "webhook.add", s.addWebhook))
	mux.HandleFunc("GET /v1/webhooks/{id}", s.auth(platform.ScopeRead, s.getWebhook))
	mux.HandleFunc("DELETE /v1/webhooks/{id}", s.change(platform.ScopeWebhooksWrite, "webhook.remove", s.removeWebhook))
	mux.HandleFunc("POST /v1/webhooks/{id}/enable", s.change(platform.ScopeWebhooksWrite, "webhook.enable", s.enableWebhook))
	mux.HandleFunc("POST /v1/webhooks/{id}/test", s.change(platform.ScopeWebhooksWrite, "webhook.test", s.testWebhook))
	mux.HandleFunc("GET /v1/webhooks/{id}/deliveries", s.auth(platform.ScopeRead, s.listDeliveries))
	mux.HandleFunc("GET /v1/deliveries/{id}", s.auth(platform.ScopeRead, s.getDelivery))
	mux.HandleFunc("POST /v1/deliveries/{id}/redeliver", s.change(platform.ScopeWebhooksWrite, "delivery.redeliver", s.redeliver))
	mux.HandleFunc("GET /v1/quota", s.auth(platform.ScopeRead, s.quota))
	mux.HandleFunc("GET /v1/projects/{id}/quota", s.auth(platform.ScopeOperator, s.getProjectQuota))
	mux.HandleFunc("PUT /v1/projects/{id}/quota", s.change(platform.ScopeOperator, "quota.set", s.setProjectQuota))
	mux.HandleFunc("GET /debug/pprof/{name}", s.auth(platform.ScopeOperator, s.pprof))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &apiError{status: http.StatusNotFound, code: "no_such_route", msg: fmt.Sprintf("%s %s is not part of the API; every route is described at /v1/openapi.json (for example /v1/services, /v1/domains, /v1/tokens, /v1/events)", r.Method, r.URL.Path)})
	})
	return securityHeaders(staleAnswers(mux)), mux.patterns
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// apiError is an error that already knows its HTTP answer.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// handler serves one route for the caller's project p; callerOf(r) has
// the whole caller (token name and scopes) for the handlers that need it.
type handler func(w http.ResponseWriter, r *http.Request, p store.Project) error

type callerKey struct{}

// callerOf returns who makes r: set by auth and change, zero on public routes.
func callerOf(r *http.Request) platform.Caller {
	c, _ := r.Context().Value(callerKey{}).(platform.Caller)
	return c
}

// auth checks the Bearer token and the scope it needs, and hands the
// handler the caller's project.
func (s *server) auth(scope string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := s.authenticate(r, scope)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := h(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), c.Project); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// authenticate returns the caller of r if its token is valid and has scope.
func (s *server) authenticate(r *http.Request, scope string) (platform.Caller, error) {
	tok, ok := bearer(r)
	if !ok {
		return platform.Caller{}, &apiError{status: http.StatusUnauthorized, code: "unauthorized", msg: `missing API token: send "Authorization: Bearer <token>" (the CLI reads SPINE_TOKEN or <data>/admin.token)`}
	}
	c, err := s.cfg.Platform.Authenticate(r.Context(), tok)
	if err != nil {
		return platform.Caller{}, err
	}
	return c, c.Require(scope)
}

func (s *server) public(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r, store.Project{}); err != nil {
			s.writeError(w, r, err)
		}
	}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}

// writeError turns any error into the JSON answer {"error": code, "message": text}.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	out := s.answer(r.Method, r.URL.Path, err)
	if out.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	noteResult(r, out.Code)
	writeJSON(w, out.Status, out)
}

// answer is the API's answer to err: its status, code and message.
func (s *server) answer(method, path string, err error) *client.Error {
	status, code, msg := http.StatusInternalServerError, "internal", "internal error; nothing was changed"
	var ae *apiError
	var pe *platform.Error
	switch {
	case errors.As(err, &ae):
		status, code, msg = ae.status, ae.code, ae.msg
	case errors.As(err, &pe):
		code, msg = pe.Code, pe.Message
		status = map[platform.Kind]int{
			platform.Invalid:      http.StatusBadRequest,
			platform.NotFound:     http.StatusNotFound,
			platform.Conflict:     http.StatusConflict,
			platform.InUse:        http.StatusConflict,
			platform.Unauthorized: http.StatusUnauthorized,
			platform.Unavailable:  http.StatusServiceUnavailable,
			platform.Quota:        http.StatusTooManyRequests,
			platform.Forbidden:    http.StatusForbidden,
		}[pe.Kind]
		if status == 0 {
			status = http.StatusInternalServerError
		}
	}
	if status >= 500 {
		// The cause goes to the log (it never holds secrets: store and
		// platform errors name objects, not keys or tokens); the client
		// gets the plain message.
		s.log.Error("request failed", "method", method, "path", path, "status", status, "err", err)
	}
	out := &client.Error{Status: status, Code: code, Message: msg}
	var qe *store.QuotaError
	if errors.As(err, &qe) {
		out.Quota = &client.QuotaExceeded{Limit: qe.Limit, Max: qe.Max, Used: qe.Used}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decode reads a JSON body into v, refusing unknown fields, trailing data and
// bodies over MaxBodyBytes.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", msg: "send the body as JSON with Content-Type: application/json"}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return &apiError{status: http.StatusBadRequest, code: "invalid_json", msg: "the body must hold exactly one JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apiError{status: http.StatusBadRequest, code: "invalid_json", msg: "the body must hold exactly one JSON object"}
	}
	return nil
}

func decodeError(err error) error {
	var maxErr *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &maxErr):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "body_too_large", msg: fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes)}
	case errors.As(err, &typeErr):
		return &apiError{status: http.StatusBadRequest, code: "invalid_json", msg: fmt.Sprintf("field %q must be of type %s", typeErr.Field, typeErr.Type)}
	case errors.As(err, &syntaxErr):
		return &apiError{status: http.StatusBadRequest, code: "invalid_json", msg: fmt.Sprintf("the body is not valid JSON (at byte %d)", syntaxErr.Offset)}
	case errors.Is(err, io.EOF):
		return &apiError{status: http.StatusBadRequest, code: "invalid_json", msg: "the body is empty; send a JSON object"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return &apiError{status: http.StatusBadRequest, code: "unknown_field", msg: strings.TrimPrefix(err.Error(), "json: ") + "; check the field names in the API reference"}
	default:
		return &apiError{status: http.StatusBadRequest, code: "invalid_json", msg: "the body is not valid JSON: " + err.Error()}
	}
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// metrics serves the node's Prometheus metrics. Like /healthz it needs no
// token: a scraper holds none, and what it shows (hostnames, service
// names, upstream URLs, counters) is the operator's view of the node, on
// the operator's listener (127.0.0.1 by default), never a secret.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		s.writeError(w, r, &apiError{status: http.StatusNotFound, code: "metrics_off", msg: "this node serves no metrics here (spine serve --metrics is off, or an address of its own)"})
		return
	}
	s.cfg.Metrics.ServeHTTP(w, r)
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready", "message": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *server) version(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	writeJSON(w, http.StatusOK, VersionInfo(s.cfg.Version, s.cfg.StoreKind))
	return nil
}

// VersionInfo is the running binary's build, as /v1/version answers it:
// version (the link-time one, or the module's when empty), commit, Go
// version and build settings (package buildinfo), and the store's kind.
func VersionInfo(version, storeKind string) client.VersionInfo {
	b := buildinfo.Read(version)
	return client.VersionInfo{
		Version: b.Version, Store: storeKind,
		Commit: b.Commit, CommitTime: b.CommitTime, Modified: b.Modified,
		GoVersion: b.GoVersion, OS: b.OS, Arch: b.Arch, Race: b.Race, Settings: b.Settings,
	}
}

func (s *server) caRoot(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	var pem []byte
	if s.cfg.CARoot != nil {
		pem = s.cfg.CARoot()
	}
	if len(pem) == 0 {
		return &apiError{status: http.StatusNotFound, code: "no_internal_ca", msg: "this server runs no internal CA"}
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err := w.Write(pem)
	return err
}

// ech answers the ECH configuration to publish; public, as DNS publishes it.
func (s *server) ech(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	var info client.ECHInfo
	ok := false
	if s.cfg.ECH != nil {
		info, ok = s.cfg.ECH()
	}
	if !ok {
		return &apiError{status: http.StatusNotFound, code: "ech_off", msg: "this server does not do Encrypted Client Hello (or its keys are not read yet)"}
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

func (s *server) project(w http.ResponseWriter, r *http.Request, p store.Project) error {
	writeJSON(w, http.StatusOK, projectOut(p))
	return nil
}
