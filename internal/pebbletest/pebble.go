package pebbletest

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pca "github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/core"
	pdb "github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// Options configure a Pebble.
type Options struct {
	// HTTPPort and TLSPort are the ports Pebble's validation authority
	// connects to for HTTP-01 and TLS-ALPN-01 challenges, on the address
	// the challenged name resolves to. Default 80 and 443 (which a test
	// never listens on: set them).
	HTTPPort, TLSPort int
	// Resolver is the DNS server (host:port, spoken over TCP) Pebble looks
	// names and DNS-01 records up with. Required: without it Pebble would
	// use the system's resolver.
	Resolver string
	// Validity is the lifetime of issued certificates. Default: Pebble's
	// (about five years).
	Validity time.Duration
	// EAB, if not empty, makes External Account Binding mandatory and
	// holds its keys: key ID → base64url HMAC key.
	EAB map[string]string
	// Blocklist holds domains Pebble refuses to issue for
	// (rejectedIdentifier).
	Blocklist []string
	// Log receives Pebble's log. Default: discarded (set
	// SPINE_PEBBLE_LOG=1 to see it on stderr).
	Log *log.Logger
	// Challenges, if not empty, are the only challenge types (such as
	// "http-01", "tls-alpn-01", "dns-01") Pebble offers in an
	// authorization; the others are removed before a client first sees
	// it, so a client cannot choose them. Default: all that Pebble offers.
	Challenges []string
	// BeforeValidation, if set, is called with the identifier and the
	// challenge type when a client answers a challenge, before Pebble
	// validates it; Pebble waits for it to return. It may be called more
	// than once for one challenge (a request Pebble refused for a bad
	// nonce is sent again) and from several goroutines at once.
	BeforeValidation func(identifier, challengeType string)
}

// Pebble is a running in-process Pebble ACME server.
type Pebble struct {
	srv  *httptest.Server
	ca   *pca.CAImpl
	db   *pdb.MemoryStore
	opts Options

	newOrders atomic.Int64
	finalized atomic.Int64
	accounts  atomic.Int64
	up        atomic.Bool
	limited   atomic.Int64 // Unix time new orders are refused until (SetRateLimited)

	mu     sync.Mutex
	events []Event // bounded by maxEvents

	serial sync.Mutex // one front-end request at a time (serveACME)
}

// Event is one ACME request Pebble received, for telling where the time
// of an issuance goes.
type Event struct {
	Time time.Time
	// Kind is "account", "order", "authz", "challenge", "finalize",
	// "order-poll" or "certificate".
	Kind string
}

const maxEvents = 10000

var eventKinds = []struct{ prefix, kind string }{
	{"/sign-me-up", "account"},
	{"/order-plz", "order"},
	{"/authZ/", "authz"},
	{"/chalZ/", "challenge"},
	{"/finalize-order/", "finalize"},
	{"/my-order/", "order-poll"},
	{"/certZ/", "certificate"},
}

func (p *Pebble) record(path string) {
	for _, k := range eventKinds {
		if strings.HasPrefix(path, k.prefix) {
			p.mu.Lock()
			if len(p.events) < maxEvents {
				p.events = append(p.events, Event{Time: time.Now(), Kind: k.kind})
			}
			p.mu.Unlock()
			return
		}
	}
}

// Events returns the ACME requests received since since.
func (p *Pebble) Events(since time.Time) []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Event
	for _, e := range p.events {
		if !e.Time.Before(since) {
			out = append(out, e)
		}
	}
	return out
}

// Start runs Pebble on 127.0.0.1 until the test ends. It sets
// PEBBLE_VA_NOSLEEP=1 (validations without Pebble's random sleep) unless
// the test already set it; the other PEBBLE_* variables (for example
// PEBBLE_WFE_NONCEREJECT, PEBBLE_AUTHZREUSE) are read as the test left them.
func Start(t testing.TB, opts Options) *Pebble {
	t.Helper()
	if opts.Resolver == "" {
		t.Fatal("pebbletest: Options.Resolver is required (a test must never use public DNS)")
	}
	if _, ok := os.LookupEnv("PEBBLE_VA_NOSLEEP"); !ok {
		t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	}
	if os.Getenv("PEBBLE_VA_ALWAYS_VALID") != "" {
		t.Setenv("PEBBLE_VA_ALWAYS_VALID", "")
	}
	if opts.HTTPPort == 0 {
		opts.HTTPPort = 80
	}
	if opts.TLSPort == 0 {
		opts.TLSPort = 443
	}
	logger := opts.Log
	if logger == nil {
		out := io.Discard
		if os.Getenv("SPINE_PEBBLE_LOG") != "" {
			out = os.Stderr
		}
		logger = log.New(out, "pebble ", log.LstdFlags)
	}

	db := pdb.NewMemoryStore()
	profiles := map[string]pca.Profile{"default": {Description: "default", ValidityPeriod: uint64(opts.Validity / time.Second)}}
	authority := pca.New(logger, db, "", "ecdsa", 0, 1, profiles)
	validator := va.New(logger, opts.HTTPPort, opts.TLSPort, false, opts.Resolver, db)
	for id, key := range opts.EAB {
		if err := db.AddExternalAccountKeyByID(id, key); err != nil {
			t.Fatalf("pebbletest: EAB key %s: %v", id, err)
		}
	}
	for _, d := range opts.Blocklist {
		if err := db.AddBlockedDomain(d); err != nil {
			t.Fatalf("pebbletest: blocking %s: %v", d, err)
		}
	}
	front := wfe.New(logger, db, validator, authority, []string{"pebble.letsencrypt.org"}, false, len(opts.EAB) > 0, 0, 0)
	acme := front.Handler()

	opts.Challenges = slices.Clone(opts.Challenges) // the caller's slice may change
	p := &Pebble{ca: authority, db: db, opts: opts}
	p.up.Store(true)
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.up.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		if r.Method != http.MethodPost {
			p.serveACME(acme, w, r)
			return
		}
		p.record(r.URL.Path)
		switch {
		case strings.HasPrefix(r.URL.Path, authzPath):
			p.filterChallenges(strings.TrimPrefix(r.URL.Path, authzPath))
		case strings.HasPrefix(r.URL.Path, challengePath) && p.opts.BeforeValidation != nil:
			if err := p.beforeValidation(r); err != nil {
				http.Error(w, "pebbletest: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		if until := time.Unix(p.limited.Load(), 0); r.URL.Path == "/order-plz" && time.Now().Before(until) {
			// As Let's Encrypt answers a rate-limited order: 429, a
			// Retry-After header and a rateLimited problem.
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("Retry-After", strconv.Itoa(int(time.Until(until).Seconds())+1))
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, `{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders (pebbletest)","status":429}`)
			return
		}
		// Orders and finalizations are counted when Pebble accepts them: a
		// request it refuses (a bad nonce, which it does to 5 % by default)
		// is sent again and must not count twice.
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		p.serveACME(acme, sw, r)
		if sw.status >= 300 {
			return
		}
		switch {
		case r.URL.Path == "/sign-me-up" && sw.status == http.StatusCreated:
			p.accounts.Add(1)
		case r.URL.Path == "/order-plz":
			p.newOrders.Add(1)
		case strings.HasPrefix(r.URL.Path, "/finalize-order/"):
			p.finalized.Add(1)
		}
	}))
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	return p
}

// serveACME hands r to Pebble's front end, one request at a time.
//
// Pebble's in-memory store deadlocks under concurrent clients: its
// authorization handler holds the authorization's lock while it takes the
// store's read lock (to look up the account), and FindValidAuthorization
// (a new order) holds the store's read lock while it takes every
// authorization's lock; once a writer (any new object) queues for the store's
// lock between the two, none of the three moves again. A fleet test hung
// for 30 minutes on it. Pebble's validation goroutines stay concurrent;
// each of them takes an object's lock and at most the store's read lock,
// which cannot close a cycle when only one front-end request runs.
func (p *Pebble) serveACME(h http.Handler, w http.ResponseWriter, r *http.Request) {
	p.serial.Lock()
	defer p.serial.Unlock()
	h.ServeHTTP(w, r)
}

// Pebble's paths of authorizations and challenges (followed by an ID).
const (
	authzPath     = "/authZ/"
	challengePath = "/chalZ/"
)

// filterChallenges removes from authorization id the challenge types
// Options.Challenges leaves out. Every client reads an authorization before
// it answers one of its challenges, so doing it then is soon enough.
func (p *Pebble) filterChallenges(id string) {
	if len(p.opts.Challenges) == 0 {
		return
	}
	authz := p.db.GetAuthorizationByID(id)
	if authz == nil {
		return
	}
	authz.Lock()
	defer authz.Unlock()
	var kept []*core.Challenge // a new slice: the VA may be reading the old one
	for _, c := range authz.Challenges {
		if slices.Contains(p.opts.Challenges, c.Type) {
			kept = append(kept, c)
		}
	}
	if len(kept) != len(authz.Challenges) {
		authz.Challenges = kept
	}
}

// beforeValidation calls Options.BeforeValidation if r answers a
// challenge (a POST with a payload; a POST-as-GET has none, and only
// polls). r's body is left for Pebble to read.
func (p *Pebble) beforeValidation(r *http.Request) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("reading the request: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var jws struct {
		Payload string `json:"payload"`
	}
	if json.Unmarshal(body, &jws) != nil || jws.Payload == "" {
		return nil // Pebble answers it
	}
	chal := p.db.GetChallengeByID(strings.TrimPrefix(r.URL.Path, challengePath))
	if chal == nil {
		return nil
	}
	chal.RLock()
	typ, authz := chal.Type, chal.Authz
	chal.RUnlock()
	authz.RLock()
	identifier := authz.Identifier.Value
	authz.RUnlock()
	p.opts.BeforeValidation(identifier, typ)
	return nil
}

// DirectoryURL is the ACME directory URL (https://127.0.0.1:PORT/dir).
func (p *Pebble) DirectoryURL() string { return p.srv.URL + wfe.DirectoryPath }

// ServerRoots trusts the TLS certificate of Pebble's ACME endpoint.
func (p *Pebble) ServerRoots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.srv.Certificate())
	return pool
}

// ServerRootPEM is ServerRoots as PEM, for a --acme-ca-root file.
func (p *Pebble) ServerRootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
}

// Root is the root certificate Pebble issues under.
func (p *Pebble) Root() *x509.Certificate { return p.ca.GetRootCert(0).Cert }

// Roots is a pool holding Root, to verify issued chains against.
func (p *Pebble) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.Root())
	return pool
}

// SetRateLimited makes Pebble refuse new orders until the given time, as a
// rate-limited CA does (429, Retry-After, rateLimited problem).
func (p *Pebble) SetRateLimited(until time.Time) { p.limited.Store(until.Unix()) }

// Accounts is the number of accounts Pebble has registered.
func (p *Pebble) Accounts() int { return int(p.accounts.Load()) }

// NewOrders is the number of orders Pebble has accepted.
func (p *Pebble) NewOrders() int { return int(p.newOrders.Load()) }

// Finalized is the number of finalize requests Pebble has accepted
// (certificates asked for).
func (p *Pebble) Finalized() int { return int(p.finalized.Load()) }

// SetUp makes the ACME endpoint answer (true) or fail every request with
// 503 (false), as a CA that is down does.
func (p *Pebble) SetUp(up bool) { p.up.Store(up) }

// statusWriter remembers the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
