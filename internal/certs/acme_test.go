package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"

	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/pebbletest"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

// acmeEnv is a Manager whose challenges are answered on 127.0.0.1 by a TLS
// listener (TLS-ALPN-01 and serving) and an HTTP listener (HTTP-01), with
// a Pebble CA and a DNS server that points every name at 127.0.0.1.
type acmeEnv struct {
	m        *Manager
	status   *fakeStatus
	dns      *pebbletest.DNS
	tlsAddr  string
	httpAddr string
	storage  certmagic.Storage
}

type acmeOptions struct {
	issuers  func(tlsPort, httpPort int) []certmagic.Issuer
	dns01    bool // set Config.DNS01Solver (TXT records in the test DNS)
	interval time.Duration
	storage  certmagic.Storage
	tlsLn    net.Listener
	httpLn   net.Listener
	dns      *pebbletest.DNS
	orders   OrderBook
}

// dnsSolver answers DNS-01 by writing TXT records into the test DNS.
type dnsSolver struct {
	dns *pebbletest.DNS
	mu  sync.Mutex
	txt map[string][]string
}

func (s *dnsSolver) Present(_ context.Context, c acme.Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := c.DNS01TXTRecordName()
	s.txt[name] = append(s.txt[name], c.DNS01KeyAuthorization())
	s.dns.SetTXT(name, s.txt[name]...)
	return nil
}

func (s *dnsSolver) CleanUp(_ context.Context, c acme.Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := c.DNS01TXTRecordName()
	var keep []string
	for _, v := range s.txt[name] {
		if v != c.DNS01KeyAuthorization() {
			keep = append(keep, v)
		}
	}
	s.txt[name] = keep
	s.dns.SetTXT(name, keep...)
	return nil
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func newACMEEnv(t *testing.T, o acmeOptions) *acmeEnv {
	t.Helper()
	e := &acmeEnv{status: &fakeStatus{}, dns: o.dns, storage: o.storage}
	if e.dns == nil {
		e.dns = pebbletest.StartDNS(t)
	}
	if e.storage == nil {
		e.storage = &certmagic.FileStorage{Path: storageDir(t)}
	}
	tlsLn, httpLn := o.tlsLn, o.httpLn
	if tlsLn == nil {
		tlsLn, httpLn = listen(t), listen(t)
	}
	e.tlsAddr, e.httpAddr = tlsLn.Addr().String(), httpLn.Addr().String()
	cfg := Config{
		Storage:            e.storage,
		Issuers:            o.issuers(portOf(e.tlsAddr), portOf(e.httpAddr)),
		Status:             e.status,
		Logger:             testLogger(t),
		RenewCheckInterval: o.interval,
		Orders:             o.orders,
	}
	if o.dns01 {
		cfg.DNS01Solver = &dnsSolver{dns: e.dns, txt: map[string][]string{}}
	}
	var err error
	e.m, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.m.Stop)

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !e.m.HandleHTTPChallenge(w, r) {
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(httpLn)
	t.Cleanup(func() { srv.Close() })
	tl := tls.NewListener(tlsLn, &tls.Config{GetCertificate: e.m.GetCertificate, NextProtos: []string{"http/1.1", "acme-tls/1"}})
	go func() {
		for {
			conn, err := tl.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				conn.(*tls.Conn).Handshake()
			}()
		}
	}()
	t.Cleanup(func() { tl.Close() })
	return e
}

// pebbleIssuer is an ACME issuer template for p.
func pebbleIssuer(p *pebbletest.Pebble, mod func(*ACMEIssuer)) *ACMEIssuer {
	iss := &ACMEIssuer{
		CA:           p.DirectoryURL(),
		TrustedRoots: p.ServerRoots(),
		Email:        "ops@example.test",
	}
	if mod != nil {
		mod(iss)
	}
	return iss
}

// dial completes a handshake for name and verifies the chain against roots.
func (e *acmeEnv) dial(name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", e.tlsAddr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func (e *acmeEnv) waitActive(t *testing.T, name string) store.CertStatus {
	t.Helper()
	var s store.CertStatus
	poll.Until(t, name+" active", waitTimeout, func() error {
		s = e.m.Status(name)
		switch s.Status {
		case store.CertActive:
			return nil
		case store.CertFailed:
			return poll.Stop(fmt.Errorf("certificate failed: %s", s.Error))
		}
		return fmt.Errorf("still %q (%s)", s.Status, s.Error)
	})
	return s
}

func TestACMEIssuance(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		mod     func(*ACMEIssuer)
		dns01   bool
		host    string
		serveAs []string
	}{
		{name: "http-01", mod: func(i *ACMEIssuer) { i.DisableTLSALPNChallenge = true }, host: "http01.example.test"},
		{name: "tls-alpn-01", mod: func(i *ACMEIssuer) { i.DisableHTTPChallenge = true }, host: "alpn.example.test"},
		// 30 % of nonces refused (Pebble's default is 5 %). The ACME client
		// retries a refused nonce up to 10 times, so one request fails with
		// odds 0.3^10 ≈ 6e-6. An issuance makes tens of requests, more on a
		// busy machine where it polls longer: at 60 % (0.6^10 ≈ 0.6 %) it
		// failed about one run in twenty, at 40 % (1e-4) about one in a
		// hundred under load.
		{name: "nonce rejects", env: map[string]string{"PEBBLE_WFE_NONCEREJECT": "30"}, host: "nonce.example.test"},
		{name: "authz reuse 0", env: map[string]string{"PEBBLE_AUTHZREUSE": "0"}, host: "reuse0.example.test"},
		{name: "authz reuse 100", env: map[string]string{"PEBBLE_AUTHZREUSE": "100"}, host: "reuse100.example.test"},
		{name: "dns-01 wildcard", dns01: true, host: "*.wild.example.test", serveAs: []string{"a.wild.example.test", "b.wild.example.test"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			dns := pebbletest.StartDNS(t)
			tlsLn, httpLn := listen(t), listen(t)
			p := pebbletest.Start(t, pebbletest.Options{HTTPPort: portOf(httpLn.Addr().String()), TLSPort: portOf(tlsLn.Addr().String()), Resolver: dns.Addr})
			e := newACMEEnv(t, acmeOptions{
				dns: dns, tlsLn: tlsLn, httpLn: httpLn, dns01: tc.dns01,
				issuers: func(int, int) []certmagic.Issuer { return []certmagic.Issuer{pebbleIssuer(p, tc.mod)} },
			})
			if tc.serveAs == nil {
				e.m.Sync(context.Background(), []string{tc.host})
				tc.serveAs = []string{tc.host}
			} else {
				e.m.SyncShared(context.Background(), tc.serveAs, []string{strings.TrimPrefix(tc.host, "*.")})
			}
			for _, h := range tc.serveAs {
				st := e.waitActive(t, h)
				leaf, err := e.dial(h, p.Roots())
				if err != nil {
					t.Fatalf("%s: handshake verified against Pebble's root: %v", h, err)
				}
				if !contains(leaf.DNSNames, tc.host) {
					t.Errorf("%s: certificate names %v, want %s", h, leaf.DNSNames, tc.host)
				}
				if st.Issuer == "" || st.Issuer != leaf.Issuer.CommonName {
					t.Errorf("%s: status issuer %q, certificate issuer %q", h, st.Issuer, leaf.Issuer.CommonName)
				}
			}
			if tc.dns01 {
				if got := p.Finalized(); got != 1 {
					t.Errorf("%d certificates finalized for %d names under one wildcard, want 1", got, len(tc.serveAs))
				}
				// A sibling no one serves gets no certificate, wildcard or not.
				if _, err := e.dial("other.wild.example.test", p.Roots()); err == nil {
					t.Error("handshake succeeded for a name no service holds")
				}
			}
		})
	}
}

func TestACMEFallsBackToNextCA(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first func(t *testing.T, dns *pebbletest.DNS, tlsPort, httpPort int) *ACMEIssuer
	}{
		{"down", func(t *testing.T, dns *pebbletest.DNS, tlsPort, httpPort int) *ACMEIssuer {
			p := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: tlsPort, Resolver: dns.Addr})
			p.SetUp(false)
			return pebbleIssuer(p, nil)
		}},
		{"refuses", func(t *testing.T, dns *pebbletest.DNS, tlsPort, httpPort int) *ACMEIssuer {
			p := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: tlsPort, Resolver: dns.Addr, Blocklist: []string{"example.test"}})
			return pebbleIssuer(p, nil)
		}},
		{"unreachable", func(t *testing.T, dns *pebbletest.DNS, tlsPort, httpPort int) *ACMEIssuer {
			ln := listen(t)
			addr := ln.Addr().String()
			ln.Close()
			return &ACMEIssuer{CA: "https://" + addr + "/dir"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns := pebbletest.StartDNS(t)
			tlsLn, httpLn := listen(t), listen(t)
			tlsPort, httpPort := portOf(tlsLn.Addr().String()), portOf(httpLn.Addr().String())
			second := pebbletest.Start(t, pebbletest.Options{HTTPPort: httpPort, TLSPort: tlsPort, Resolver: dns.Addr})
			first := tc.first(t, dns, tlsPort, httpPort)
			e := newACMEEnv(t, acmeOptions{dns: dns, tlsLn: tlsLn, httpLn: httpLn, issuers: func(int, int) []certmagic.Issuer {
				return []certmagic.Issuer{first, pebbleIssuer(second, nil)}
			}})
			e.m.Sync(context.Background(), []string{"next.example.test"})
			e.waitActive(t, "next.example.test")
			if _, err := e.dial("next.example.test", second.Roots()); err != nil {
				t.Fatalf("certificate does not verify against the second CA's root: %v", err)
			}
		})
	}
}

func TestACMEFailureIsPlainAndInternalCAIsLastFallback(t *testing.T) {
	dns := pebbletest.StartDNS(t)
	tlsLn, httpLn := listen(t), listen(t)
	p := pebbletest.Start(t, pebbletest.Options{HTTPPort: portOf(httpLn.Addr().String()), TLSPort: portOf(tlsLn.Addr().String()), Resolver: dns.Addr, Blocklist: []string{"blocked.test"}})

	e := newACMEEnv(t, acmeOptions{dns: dns, tlsLn: tlsLn, httpLn: httpLn, issuers: func(int, int) []certmagic.Issuer {
		return []certmagic.Issuer{pebbleIssuer(p, nil)}
	}})
	e.m.Sync(context.Background(), []string{"www.blocked.test"})
	poll.Until(t, "failed status", waitTimeout, poll.True(func() bool { return e.m.Status("www.blocked.test").Status == store.CertFailed }))
	if got := e.m.Status("www.blocked.test").Error; !strings.HasPrefix(got, "the certificate authority refuses to issue for this name:") {
		t.Errorf("status error = %q, want plain words about the refusal", got)
	}

	// With the internal CA after the ACME CA, the name is still served.
	storage := &certmagic.FileStorage{Path: storageDir(t)}
	internal, err := ca.Load(context.Background(), storage, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tlsLn2, httpLn2 := listen(t), listen(t)
	e2 := newACMEEnv(t, acmeOptions{dns: dns, tlsLn: tlsLn2, httpLn: httpLn2, storage: storage, issuers: func(int, int) []certmagic.Issuer {
		return []certmagic.Issuer{pebbleIssuer(p, nil), internal}
	}})
	e2.m.Sync(context.Background(), []string{"www.blocked.test"})
	st := e2.waitActive(t, "www.blocked.test")
	if st.Issuer != internal.Root().Subject.CommonName && !strings.Contains(st.Issuer, "Spine") {
		t.Errorf("issuer %q, want the internal CA", st.Issuer)
	}
}

func TestDescribeACMEErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{acme.Problem{Type: acme.ProblemTypeCAA, Detail: "CAA record for example.com prevents issuance"}, "the domain's CAA records forbid this certificate authority: CAA record for example.com prevents issuance"},
		{acme.Problem{Type: acme.ProblemTypeDNS, Detail: "NXDOMAIN looking up A for example.com"}, "DNS lookup failed at the certificate authority: NXDOMAIN looking up A for example.com"},
		{fmt.Errorf("wrapped: %w", acme.Problem{Type: acme.ProblemTypeRateLimited, Detail: "too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2031-05-29 18:09:26 UTC: see https://letsencrypt.org/docs/rate-limits/"}),
			"rate limited by the certificate authority until 2031-05-29T18:09:26Z: too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2031-05-29 18:09:26 UTC: see https://letsencrypt.org/docs/rate-limits/"},
		{acme.Problem{Type: acme.ProblemTypeConnection, Detail: "127.0.0.1: Connection refused"}, "the certificate authority could not connect to this server (does DNS point here, are ports 80 and 443 open?): 127.0.0.1: Connection refused"},
		{acme.Problem{Type: acme.ProblemTypeUnauthorized, Detail: "Correct value not found for DNS challenge"}, "the certificate authority did not see the expected answer (does DNS point here?): Correct value not found for DNS challenge"},
		{acme.Problem{Type: acme.ProblemTypeCompound, Detail: "several", Subproblems: []acme.Subproblem{{Problem: acme.Problem{Type: acme.ProblemTypeCAA, Detail: "CAA forbids"}}}}, "the domain's CAA records forbid this certificate authority: several; CAA forbids"},
		{errors.New("plain failure"), "plain failure"},
	} {
		if got := describe(tc.err); got != tc.want {
			t.Errorf("describe(%v)\n got %q\nwant %q", tc.err, got, tc.want)
		}
	}
	if at, ok := retryAfter(acme.Problem{Type: acme.ProblemTypeRateLimited, Detail: "retry after 2031-05-29 18:09:26 UTC"}); !ok || !at.Equal(time.Date(2031, 5, 29, 18, 9, 26, 0, time.UTC)) {
		t.Errorf("retryAfter = %v, %v", at, ok)
	}
}

func TestRateLimitHoldsRetriesWithoutAskingTheCA(t *testing.T) {
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	limited := &countingIssuer{err: acme.Problem{Type: acme.ProblemTypeRateLimited, Detail: "too many new orders recently, retry after " + until.Format("2006-01-02 15:04:05") + " UTC"}}
	limited.Issuer = noIssuer{}
	st := &fakeStatus{}
	m, err := New(Config{Storage: &certmagic.FileStorage{Path: storageDir(t)}, Issuers: []certmagic.Issuer{limited}, Status: st})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	m.Sync(context.Background(), []string{"a.example.test"})
	poll.Until(t, "failed status", waitTimeout, poll.True(func() bool { return m.Status("a.example.test").Status == store.CertFailed }))
	if got := m.Status("a.example.test").Error; !strings.Contains(got, "rate limited by the certificate authority until "+until.Format(time.RFC3339)) {
		t.Errorf("status error %q does not say until when", got)
	}
	// certmagic's own retry (1 minute later) would fail in onEvent; call
	// the hook directly to see that no attempt reaches the issuer.
	if err := m.onEvent(context.Background(), "cert_obtaining", map[string]any{"identifier": "a.example.test"}); err == nil {
		t.Error("an attempt during the hold was let through")
	}
	if n := limited.n.Load(); n != 1 {
		t.Errorf("issuer asked %d times, want 1", n)
	}
}

// testLogger keeps what the manager, certmagic and acmez log, at Debug, and
// shows it if t fails. Lines logged after the test ends are kept, not
// shown: certmagic's goroutines may outlive it.
func testLogger(t *testing.T) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("logs:\n%s", buf.String())
		}
	})
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// cutKV is a KV whose lock renewals fail while cut is set, as when the store
// becomes unreachable, and only then: until the cut, a renewal waits for
// the store however long it takes (the caller's deadline, one LockRefresh,
// is dropped), so that a loaded machine's slow SQLite write cannot lose the
// lease before the test cuts the store.
type cutKV struct {
	KV
	cut atomic.Bool
}

func (c *cutKV) TryLock(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if c.cut.Load() {
		return false, store.ErrUnavailable
	}
	return c.KV.TryLock(context.WithoutCancel(ctx), name, owner, ttl)
}

// TestACMEOrderStopsWhenLeaseLost: the store goes away while an order is
// being validated, so the lease on the name's issuance lock cannot be
// renewed. The order stops there: nothing is finalized at the CA, nothing
// stored, and the status says why.
func TestACMEOrderStopsWhenLeaseLost(t *testing.T) {
	db, err := store.Open(context.Background(), "sqlite:"+t.TempDir()+"/spine.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kv := &cutKV{KV: db}
	storage := NewStorage(kv, StorageOptions{LockTTL: time.Second, LockRefresh: 100 * time.Millisecond, LockPoll: 20 * time.Millisecond})

	dns := pebbletest.StartDNS(t)
	tlsLn, httpLn := listen(t), listen(t)
	// The store goes when the client answers its challenge; Pebble
	// validates only once the issuance has given up for the lost lease.
	gaveUp := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(gaveUp) }) }
	var p *pebbletest.Pebble
	p = pebbletest.Start(t, pebbletest.Options{
		HTTPPort: portOf(httpLn.Addr().String()), TLSPort: portOf(tlsLn.Addr().String()), Resolver: dns.Addr,
		BeforeValidation: func(string, string) {
			kv.cut.Store(true)
			<-gaveUp
		},
	})
	t.Cleanup(release) // before Pebble stops, if the test ends early
	e := newACMEEnv(t, acmeOptions{dns: dns, tlsLn: tlsLn, httpLn: httpLn, storage: storage,
		issuers: func(int, int) []certmagic.Issuer {
			return []certmagic.Issuer{pebbleIssuer(p, func(i *ACMEIssuer) { i.DisableTLSALPNChallenge = true })}
		}})
	e.m.Sync(context.Background(), []string{"lost.example.test"})
	poll.Until(t, "the issuance to fail", waitTimeout, poll.True(func() bool { return e.m.Status("lost.example.test").Status == store.CertFailed }))
	release()
	if st := e.m.Status("lost.example.test"); !strings.Contains(st.Error, "lease could not be renewed") {
		t.Errorf("status error %q, want it to say the lease was lost", st.Error)
	}
	if n := p.NewOrders(); n != 1 {
		t.Errorf("%d orders, want the 1 that was stopped", n)
	}
	if n := p.Finalized(); n != 0 {
		t.Errorf("%d orders finalized after the lease was lost, want 0", n)
	}
	kv.cut.Store(false)
	if keys, _ := db.ListKeys(context.Background(), "certificates", true); len(keys) != 0 {
		t.Errorf("stored after the lease was lost: %v", keys)
	}
}

// TestOCSPStaplingOnlyWithACME: a manager whose only issuer is the internal
// CA (whose certificates name no OCSP responder) does not look for a
// staple at each load; one with an ACME CA among its issuers does.
func TestOCSPStaplingOnlyWithACME(t *testing.T) {
	st := &certmagic.FileStorage{Path: t.TempDir()}
	internal, err := ca.Load(context.Background(), st, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		issuers []certmagic.Issuer
		staple  bool
	}{
		{"internal CA by default", nil, false},
		{"internal CA", []certmagic.Issuer{internal}, false},
		{"internal CA of a fleet", []certmagic.Issuer{NewCAIssuer(NewStorage(nil, StorageOptions{}), nil)}, false},
		{"ACME, then the internal CA", []certmagic.Issuer{&ACMEIssuer{CA: "https://127.0.0.1:1/dir"}, internal}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := New(Config{Storage: st, Issuers: c.issuers})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(m.Stop)
			if got := !m.magic.Load().OCSP.DisableStapling; got != c.staple {
				t.Errorf("stapling %v, want %v", got, c.staple)
			}
		})
	}
}
