package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Prefix is where the dashboard is served on the API listener.
const Prefix = "/ui/"

// Config configures the dashboard.
type Config struct {
	// API is the API in-process. Required.
	API *api.Local
	// UpstreamHealth reports whether each upstream URL of the edge takes
	// requests now (edge.Server.UpstreamHealth). Default: health unknown.
	UpstreamHealth func() map[string]bool
	// EdgeAddr is the edge's HTTPS listener ("127.0.0.1:8443"): where the
	// hostname page's inspection connects. Default: no inspection.
	EdgeAddr string
	// CARoot is the internal CA's root (PEM), trusted by inspections.
	CARoot func() []byte
	// StoreKind is shown on the operator page ("sqlite", "postgres").
	StoreKind string
	// SessionTTL is how long a session lasts at most. Default 12 h.
	SessionTTL time.Duration
	// IdleTTL ends a session unused that long. Default 1 h.
	IdleTTL time.Duration
	// MaxSessions bounds the sessions kept. Default 10,000.
	MaxSessions int
	// InspectTimeout bounds one inspection from the hostname page. Default 10 s.
	InspectTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives the dashboard's lines. Default slog.Default().
	Logger *slog.Logger
}

// Dashboard is the dashboard's HTTP handler, mounted at Prefix.
type Dashboard struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	assets   http.Handler
	inspects chan struct{} // inspections under way; bounded
	patterns []string
}

// New returns the dashboard.
func New(cfg Config) (*Dashboard, error) {
	if cfg.API == nil {
		return nil, errors.New("dashboard: Config.API is required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.IdleTTL <= 0 {
		cfg.IdleTTL = time.Hour
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10000
	}
	if cfg.InspectTimeout <= 0 {
		cfg.InspectTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Dashboard{cfg: cfg, log: cfg.Logger.With("component", "dashboard"),
		sessions: newSessions(cfg.MaxSessions, cfg.SessionTTL, cfg.IdleTTL, cfg.Now),
		inspects: make(chan struct{}, 2)}
	if err := d.parse(); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(assetFS, "assets")
	d.assets = http.StripPrefix(Prefix+"assets/", http.FileServerFS(sub))
	d.routes()
	return d, nil
}

// routes registers every page. Each is a literal pattern, so that the
// security suite can find them all (its isolation cases for the UI).
func (d *Dashboard) routes() {
	d.mux = http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		d.patterns = append(d.patterns, pattern)
		d.mux.HandleFunc(pattern, h)
	}
	handle("GET /ui/assets/", d.serveAsset)
	handle("GET /ui/signin", d.signinPage)
	handle("POST /ui/signin", d.signin)
	handle("POST /ui/signout", d.signout)
	handle("GET /ui/{$}", d.page(d.overview))
	handle("GET /ui/services", d.page(d.servicesPage))
	handle("POST /ui/services", d.page(d.createService))
	handle("GET /ui/services/{name}", d.page(d.servicePage))
	handle("POST /ui/services/{name}", d.page(d.updateService))
	handle("POST /ui/services/{name}/delete", d.page(d.deleteService))
	handle("GET /ui/hostnames", d.page(d.hostnamesPage))
	handle("GET /ui/hostnames/{host}", d.page(d.hostnamePage))
	handle("POST /ui/hostnames/{host}/inspect", d.page(d.inspectHostname))
	handle("GET /ui/domains", d.page(d.domainsPage))
	handle("POST /ui/domains", d.page(d.addDomain))
	handle("POST /ui/domains/{name}/verify", d.page(d.verifyDomain))
	handle("POST /ui/domains/{name}/delete", d.page(d.removeDomain))
	handle("GET /ui/events", d.page(d.eventsPage))
	handle("GET /ui/events/stream", d.page(d.eventStream))
	handle("GET /ui/tokens", d.page(d.tokensPage))
	handle("POST /ui/tokens", d.page(d.createToken))
	handle("POST /ui/tokens/{name}/revoke", d.page(d.revokeToken))
	handle("GET /ui/webhooks", d.page(d.webhooksPage))
	handle("POST /ui/webhooks", d.page(d.addWebhook))
	handle("POST /ui/webhooks/{id}/delete", d.page(d.removeWebhook))
	handle("POST /ui/webhooks/{id}/test", d.page(d.testWebhook))
	handle("GET /ui/operator", d.page(d.operatorPage))
	handle("/ui/", func(w http.ResponseWriter, r *http.Request) {
		d.fail(w, r, nil, &client.Error{Status: http.StatusNotFound, Code: "not_found", Message: "there is no such page; the overview is at /ui/"})
	})
}

// Patterns are the dashboard's route patterns.
func (d *Dashboard) Patterns() []string { return append([]string(nil), d.patterns...) }

// csp is every answer's Content-Security-Policy: this origin's scripts,
// styles and connections only, no inline script or style, no framing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, Prefix+"assets/") {
		h.Set("Cache-Control", "no-store")
	}
	r.Body = http.MaxBytesReader(w, r.Body, api.MaxBodyBytes)
	d.mux.ServeHTTP(w, r)
}

func (d *Dashboard) serveAsset(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	d.assets.ServeHTTP(w, r)
}

// request is one signed-in request: who makes it and the API as that token.
type request struct {
	id      api.Identity
	token   string
	sess    *session // nil for a Bearer request
	sid     string
	api     *client.Client // the API in-process, as this token
	flash   string
	started time.Time
	// liveAfter is where the page's event stream starts: the last event
	// before the reads of the page (live); 0 for "from now".
	liveAfter int64
}

func (rq *request) csrf() string {
	if rq.sess == nil {
		return ""
	}
	return rq.sess.csrf
}

type pageFunc func(w http.ResponseWriter, r *http.Request, rq *request) error

const cookieName = "spine_session"

// page authenticates r (the session's cookie or a Bearer token), checks a
// form's CSRF token, and runs h.
func (d *Dashboard) page(h pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rq := &request{started: d.cfg.Now()}
		if tok, ok := bearer(r); ok {
			rq.token = tok
		} else if c, err := r.Cookie(cookieName); err == nil {
			if s, ok := d.sessions.get(c.Value); ok {
				rq.sess, rq.sid, rq.token = s, c.Value, s.token
			}
		}
		if rq.token == "" {
			d.toSignin(w, r, "")
			return
		}
		id, err := d.cfg.API.Identify(r.Context(), rq.token)
		if err != nil {
			if rq.sess != nil && client.IsCode(err, "unauthorized") {
				// The token was revoked or expired: so is the session.
				d.sessions.close(rq.sid)
				d.toSignin(w, r, "Your token is no longer valid (revoked or expired); sign in again.")
				return
			}
			d.fail(w, r, nil, err)
			return
		}
		rq.id = id
		if r.Method == http.MethodPost && rq.sess != nil {
			if !sameSecret(r.PostFormValue("csrf"), rq.sess.csrf) {
				d.fail(w, r, rq, &client.Error{Status: http.StatusForbidden, Code: "csrf",
					Message: "this form has expired or did not come from this dashboard; reload the page and send it again"})
				return
			}
		}
		if rq.sess != nil && r.Method == http.MethodGet {
			rq.flash = d.sessions.takeFlash(rq.sess)
		}
		rq.api = client.New("http://spine.invalid", rq.token)
		rq.api.HTTP = &http.Client{Transport: inProcess{h: d.cfg.API.Handler(), remote: r.RemoteAddr}}
		if err := h(w, r, rq); err != nil {
			d.fail(w, r, rq, err)
		}
	}
}

// live starts the page's event stream after the last event of the
// project recorded before the page's reads, so that no change after them
// is missed.
func (d *Dashboard) live(r *http.Request, rq *request) error {
	last, err := d.cfg.API.LastEventID(r.Context(), rq.token)
	if ce := (*client.Error)(nil); errors.As(err, &ce) && ce.Status == http.StatusServiceUnavailable {
		// The store is away: the page may still be shown from the API's
		// last answers (api.StaleReads), its stream from now on.
		return nil
	}
	if err != nil {
		return err
	}
	rq.liveAfter = last
	return nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}

func (d *Dashboard) toSignin(w http.ResponseWriter, r *http.Request, msg string) {
	if r.Method != http.MethodGet || r.URL.Path == Prefix+"events/stream" {
		d.fail(w, r, nil, &client.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: cmpOr(msg, "sign in first: this page needs a token")})
		return
	}
	q := url.Values{}
	if r.URL.Path != Prefix {
		q.Set("next", r.URL.RequestURI())
	}
	if msg != "" {
		q.Set("msg", msg)
	}
	target := Prefix + "signin"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// redirect ends a successful form with the page to show next, and a
// message on it.
func (d *Dashboard) redirect(w http.ResponseWriter, r *http.Request, rq *request, to, flash string) error {
	if rq.sess != nil && flash != "" {
		d.sessions.setFlash(rq.sess, flash)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// fail shows err as a page (the API's message) with its status.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	var ce *client.Error
	if !errors.As(err, &ce) {
		if !errors.Is(err, context.Canceled) {
			d.log.Error("page failed", "path", r.URL.Path, "err", err)
		}
		ce = &client.Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; nothing was changed"}
	}
	status := ce.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	d.render(w, r, rq, status, "error", "Error", ce)
}

// inProcess is an http.RoundTripper that hands a request to the API's
// handler in this process: the dashboard calls the API without a socket,
// as the browser's client address (for the audit trail).
type inProcess struct {
	h      http.Handler
	remote string
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	req.RemoteAddr = t.remote
	req.RequestURI = req.URL.RequestURI()
	if req.Body == nil {
		req.Body = http.NoBody
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	t.h.ServeHTTP(rec, req)
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: readCloser{&rec.body}, ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

type readCloser struct{ *bytes.Buffer }

func (readCloser) Close() error { return nil }
