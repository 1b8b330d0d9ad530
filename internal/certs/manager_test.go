package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

// storageDir returns a directory for a test's certmagic.FileStorage,
// removed when the test ends. certmagic runs renewals in its package's job
// manager, which Cache.Stop (so Manager.Stop) does not wait for: a renewal
// begun before the managers stopped may still write to the storage while
// t.TempDir's cleanup removes it, which fails the test. This cleanup
// retries until no late writer is left.
func storageDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "certs-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		poll.Until(t, "removing "+dir, waitTimeout, func() error { return os.RemoveAll(dir) })
	})
	return dir
}

// caStorage returns a file storage in a fresh folder and Spine's internal
// CA, its root and intermediate kept in that storage.
func caStorage(t *testing.T) (*certmagic.FileStorage, *ca.CA) {
	t.Helper()
	st := &certmagic.FileStorage{Path: storageDir(t)}
	c, err := ca.Load(context.Background(), st, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st, c
}

// waitTimeout bounds an end-to-end wait (an issuance through Pebble, a
// status written). It guards against a hang and is no speed target:
// generous enough for a loaded 2-core machine running -race.
const waitTimeout = 2 * time.Minute

// fakeStatus records every status written, in order.
type fakeStatus struct {
	mu  sync.Mutex
	all []store.CertStatus
}

func (f *fakeStatus) PutCertStatus(_ context.Context, s store.CertStatus) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.all = append(f.all, s)
	return nil
}

// history returns the statuses written for host, in order.
func (f *fakeStatus) history(host string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.all {
		if s.Hostname == host {
			out = append(out, s.Status)
		}
	}
	return out
}

// inOrder reports whether got is want with some elements left out (a
// subsequence), none repeated.
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		for i < len(want) && want[i] != g {
			i++
		}
		if i == len(want) {
			return false
		}
		i++
	}
	return true
}

func (f *fakeStatus) last(host string) store.CertStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.all) - 1; i >= 0; i-- {
		if f.all[i].Hostname == host {
			return f.all[i]
		}
	}
	return store.CertStatus{}
}

// fakeEvents records every certificate event, in order.
type fakeEvents struct {
	mu  sync.Mutex
	all []store.Event
}

func (f *fakeEvents) AppendHostnameEvent(_ context.Context, host string, e store.Event) (store.Event, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e.Subject != host {
		return e, false, fmt.Errorf("event subject %q for hostname %q", e.Subject, host)
	}
	f.all = append(f.all, e)
	return e, true, nil
}

func (f *fakeEvents) ofType(typ string) []store.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Event
	for _, e := range f.all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// countingIssuer counts issuances and can be made to fail.
type countingIssuer struct {
	certmagic.Issuer
	n   atomic.Int32
	err error
}

func (c *countingIssuer) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	c.n.Add(1)
	if c.err != nil {
		return nil, c.err
	}
	return c.Issuer.Issue(ctx, csr)
}

type env struct {
	m      *Manager
	ca     *ca.CA
	issuer *countingIssuer
	status *fakeStatus
	events *fakeEvents
	addr   string
	roots  *x509.CertPool
}

type envOptions struct {
	leafLifetime  time.Duration
	ratio         float64
	checkInterval time.Duration
	issueErr      error
}

// newEnv starts a Manager with the internal CA as issuer and a TLS server
// on 127.0.0.1 that uses m.GetCertificate.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	st := &certmagic.FileStorage{Path: storageDir(t)}
	c, err := ca.Load(context.Background(), st, ca.Options{LeafLifetime: o.leafLifetime})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{ca: c, issuer: &countingIssuer{Issuer: c, err: o.issueErr}, status: &fakeStatus{}, events: &fakeEvents{}}
	e.m, err = New(Config{
		Storage:            st,
		Issuers:            []certmagic.Issuer{e.issuer},
		Status:             e.status,
		Events:             e.events,
		RenewalWindowRatio: o.ratio,
		RenewCheckInterval: o.checkInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.m.Stop)
	e.roots = x509.NewCertPool()
	e.roots.AddCert(c.Root())

	e.addr = serveTLS(t, e.m)
	return e
}

// dial completes a handshake for name, verifying the chain against the
// CA root, and returns the server's leaf.
func (e *env) dial(name string) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", e.addr, &tls.Config{ServerName: name, RootCAs: e.roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// hello is a ClientHello as crypto/tls hands it over, with a connection
// (certmagic logs its addresses).
func hello(t *testing.T, name string) *tls.ClientHelloInfo {
	c1, c2 := net.Pipe()
	t.Cleanup(func() { c1.Close(); c2.Close() })
	return &tls.ClientHelloInfo{ServerName: name, Conn: c1}
}

func TestServesOnlyManagedNames(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()

	// Before Sync nothing is served.
	if _, err := e.dial("a.localhost"); err == nil {
		t.Fatal("handshake for a.localhost succeeded before Sync")
	}

	e.m.Sync(ctx, []string{"A.localhost."})
	poll.Until(t, "a.localhost to become active", waitTimeout, poll.True(func() bool { return e.m.Status("a.localhost").Status == store.CertActive }))

	leaf, err := e.dial("a.localhost")
	if err != nil {
		t.Fatalf("handshake for a.localhost: %v", err)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "a.localhost" {
		t.Errorf("leaf names %v, want [a.localhost]", leaf.DNSNames)
	}
	st := e.m.Status("a.localhost")
	if !st.NotAfter.Equal(leaf.NotAfter) || !st.NotBefore.Equal(leaf.NotBefore) {
		t.Errorf("status validity %v..%v, leaf %v..%v", st.NotBefore, st.NotAfter, leaf.NotBefore, leaf.NotAfter)
	}
	if st.Issuer != "Spine Internal CA Intermediate" || st.Error != "" || st.Hostname != "a.localhost" {
		t.Errorf("status = %+v", st)
	}
	poll.Until(t, "active status to be written", waitTimeout, poll.True(func() bool { return e.status.last("a.localhost").Status == store.CertActive }))
	// The book writes a name's latest status: on a busy machine the
	// flush may come after two changes, so a step may be left out, but
	// the writes keep their order and end with active.
	if got := e.status.history("a.localhost"); !inOrder(got, []string{store.CertPending, store.CertIssuing, store.CertActive}) || got[len(got)-1] != store.CertActive {
		t.Errorf("written statuses %v, want in the order pending, issuing, active, ending with active", got)
	}

	// Unknown names and missing SNI fail the handshake.
	for _, name := range []string{"b.localhost", "x.a.localhost"} {
		if _, err := e.dial(name); err == nil {
			t.Errorf("handshake for unmanaged %s succeeded", name)
		}
	}
	if _, err := e.m.GetCertificate(hello(t, "b.localhost")); err == nil || err.Error() != `certs: no certificate for "b.localhost"` {
		t.Errorf("GetCertificate(b.localhost) error = %v", err)
	}
	conn, err := tls.Dial("tcp", e.addr, &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Error("handshake without SNI succeeded")
	}

	// Removed names are no longer served.
	e.m.Sync(ctx, nil)
	if _, err := e.dial("a.localhost"); err == nil {
		t.Error("handshake for a.localhost succeeded after it was removed")
	}
	if s := e.m.Status("a.localhost"); s.Status != "" {
		t.Errorf("status of removed name = %+v", s)
	}

	// Adding it back serves the stored certificate without issuing again.
	e.m.Sync(ctx, []string{"a.localhost"})
	poll.Until(t, "a.localhost to become active again", waitTimeout, poll.True(func() bool { return e.m.Status("a.localhost").Status == store.CertActive }))
	again, err := e.dial("a.localhost")
	if err != nil {
		t.Fatalf("handshake after re-adding: %v", err)
	}
	if again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Error("re-adding a name issued a new certificate instead of loading the stored one")
	}
	if n := e.issuer.n.Load(); n != 1 {
		t.Errorf("issuer called %d times, want 1", n)
	}
}

func TestSyncIsIdempotentAndConcurrent(t *testing.T) {
	e := newEnv(t, envOptions{})
	names := []string{"a.localhost", "b.localhost", "c.localhost"}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { e.m.Sync(context.Background(), names) })
		wg.Go(func() { e.m.GetCertificate(hello(t, "a.localhost")) })
	}
	wg.Wait()
	for _, n := range names {
		poll.Until(t, n+" to become active", waitTimeout, poll.True(func() bool { return e.m.Status(n).Status == store.CertActive }))
		if _, err := e.dial(n); err != nil {
			t.Errorf("handshake for %s: %v", n, err)
		}
	}
	if got := e.issuer.n.Load(); got != int32(len(names)) {
		t.Errorf("issued %d certificates for %d names", got, len(names))
	}
}

func TestRenewsBeforeExpiry(t *testing.T) {
	// Leaves live a minute (plus a minute of backdating); with this ratio
	// certmagic renews them about 5s after issuance.
	e := newEnv(t, envOptions{leafLifetime: time.Minute, ratio: 0.45, checkInterval: 200 * time.Millisecond})
	e.m.Sync(context.Background(), []string{"a.localhost"})
	poll.Until(t, "a.localhost to become active", waitTimeout, poll.True(func() bool { return e.m.Status("a.localhost").Status == store.CertActive }))

	first, err := e.dial("a.localhost")
	if err != nil {
		t.Fatal(err)
	}
	var renewed *x509.Certificate
	poll.Until(t, "a renewed certificate", waitTimeout, poll.True(func() bool {
		leaf, err := e.dial("a.localhost")
		if err != nil {
			t.Fatalf("handshake during renewal: %v", err)
		}
		if now := time.Now(); now.After(leaf.NotAfter) {
			t.Fatalf("served an expired certificate (NotAfter %v)", leaf.NotAfter)
		}
		if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = leaf
			return true
		}
		return false
	}))
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Errorf("renewed certificate expires %v, not after %v", renewed.NotAfter, first.NotAfter)
	}
	poll.Until(t, "status to show a renewed certificate", waitTimeout, poll.True(func() bool {
		s := e.m.Status("a.localhost")
		return s.Status == store.CertActive && s.NotAfter.After(first.NotAfter)
	}))
	// One event each, naming the certificate by its serial.
	poll.Until(t, "the renewal's event", waitTimeout, poll.True(func() bool { return len(e.events.ofType(store.EventCertificateRenewed)) > 0 }))
	issued := e.events.ofType(store.EventCertificateIssued)
	if len(issued) != 1 || !strings.Contains(string(issued[0].Data), fmt.Sprintf(`"serial":"%x"`, first.SerialNumber)) ||
		issued[0].Key != fmt.Sprintf("cert:a.localhost:%x", first.SerialNumber) {
		t.Errorf("issued events = %+v", issued)
	}
	ren := e.events.ofType(store.EventCertificateRenewed)
	if !strings.Contains(string(ren[0].Data), fmt.Sprintf(`"serial":"%x"`, renewed.SerialNumber)) {
		t.Errorf("renewed event = %s, want serial %x", ren[0].Data, renewed.SerialNumber)
	}
	if st := e.m.EventStats(); st.Written < 2 || st.Dropped != 0 {
		t.Errorf("EventStats = %+v", st)
	}
}

func TestFailedIssuanceStatus(t *testing.T) {
	e := newEnv(t, envOptions{issueErr: errors.New("rate limited by the CA")})
	e.m.Sync(context.Background(), []string{"a.localhost"})
	poll.Until(t, "a.localhost to fail", waitTimeout, poll.True(func() bool { return e.m.Status("a.localhost").Status == store.CertFailed }))
	if s := e.m.Status("a.localhost"); s.Error != "rate limited by the CA" {
		t.Errorf("status error %q", s.Error)
	}
	poll.Until(t, "failed status to be written", waitTimeout, poll.True(func() bool { return e.status.last("a.localhost").Status == store.CertFailed }))
	poll.Until(t, "the failure's event", waitTimeout, poll.True(func() bool { return len(e.events.ofType(store.EventCertificateFailed)) > 0 }))
	if f := e.events.ofType(store.EventCertificateFailed)[0]; !strings.Contains(string(f.Data), `"error":"rate limited by the CA"`) ||
		!strings.Contains(string(f.Data), `"renewal":false`) {
		t.Errorf("failed event = %s", f.Data)
	}
	if _, err := e.dial("a.localhost"); err == nil {
		t.Error("handshake succeeded without a certificate")
	}
}

func TestPlainErrorUsesACMEDetail(t *testing.T) {
	err := errors.Join(errors.New("wrapping"), acme.Problem{Type: "urn:ietf:params:acme:error:rateLimited", Detail: "too many certificates"})
	if got := plainError(err); got != "rate limited by the certificate authority: too many certificates" {
		t.Errorf("plainError = %q", got)
	}
}

func TestChallengesAnsweredFromSharedStorage(t *testing.T) {
	st, c := caStorage(t)
	get := func(m *Manager, host, path string) (*httptest.ResponseRecorder, bool) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://"+host+path, nil)
		return w, m.HandleHTTPChallenge(w, r)
	}
	m, err := New(Config{Storage: st, Issuers: []certmagic.Issuer{c}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	clock := &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m.challenges.now = clock.Now
	m.Sync(context.Background(), []string{"a.example", "c.example"})

	// Another node sharing the storage presents the challenges.
	other, err := New(Config{Storage: st, Issuers: []certmagic.Issuer{c}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Stop()
	ctx := context.Background()
	httpChal := acme.Challenge{
		Type:             acme.ChallengeTypeHTTP01,
		Token:            "tok123",
		KeyAuthorization: "tok123.thumbprint",
		Identifier:       acme.Identifier{Type: "dns", Value: "a.example"},
	}
	alpnChal := acme.Challenge{
		Type:             acme.ChallengeTypeTLSALPN01,
		Token:            "tok456",
		KeyAuthorization: "tok456.thumbprint",
		Identifier:       acme.Identifier{Type: "dns", Value: "c.example"},
	}
	for _, ch := range []acme.Challenge{httpChal, alpnChal} {
		if err := (edgeSolver{other.challenges}).Present(ctx, ch); err != nil {
			t.Fatal(err)
		}
	}

	w, ok := get(m, "A.example:80", "/.well-known/acme-challenge/tok123")
	if !ok || w.Body.String() != "tok123.thumbprint" {
		t.Errorf("HTTP-01 answered=%v body=%q", ok, w.Body.String())
	}
	if _, ok := get(m, "a.example", "/.well-known/acme-challenge/other"); ok {
		t.Error("answered a challenge request with another token")
	}
	if _, ok := get(m, "a.example", "/index.html"); ok {
		t.Error("answered a request that is no challenge")
	}
	if _, ok := get(m, "b.example", "/.well-known/acme-challenge/tok123"); ok {
		t.Error("answered a challenge for a name that is not managed")
	}
	if _, ok := get(m, "c.example", "/.well-known/acme-challenge/tok456"); ok {
		t.Error("answered a TLS-ALPN-01 challenge over HTTP")
	}

	alpnHello := func(name string) *tls.ClientHelloInfo {
		h := hello(t, name)
		h.SupportedProtos = []string{acmez.ACMETLS1Protocol}
		return h
	}
	cert, err := m.GetCertificate(alpnHello("c.example"))
	if err != nil {
		t.Fatalf("TLS-ALPN-01: %v", err)
	}
	want, _ := acmez.TLSALPN01ChallengeCert(alpnChal)
	if leafOf(t, cert).Extensions == nil || !sameExtension(leafOf(t, cert), leafOf(t, want)) {
		t.Error("TLS-ALPN-01 answer does not carry the challenge's key authorization")
	}
	if _, err := m.GetCertificate(alpnHello("a.example")); err == nil {
		t.Error("answered TLS-ALPN-01 for a name whose challenge is HTTP-01")
	}
	if _, err := m.GetCertificate(alpnHello("b.example")); err == nil {
		t.Error("answered TLS-ALPN-01 for a name that is not managed")
	}

	// Once cleaned up on the presenting node, this node stops answering
	// when its short memory of what it read runs out.
	if err := (edgeSolver{other.challenges}).CleanUp(ctx, httpChal); err != nil {
		t.Fatal(err)
	}
	clock.Advance(remoteCacheFor)
	if _, ok := get(m, "a.example", "/.well-known/acme-challenge/tok123"); ok {
		t.Error("answered a challenge cleaned up on the node that presented it")
	}
	// The names' certificates are issued meanwhile, into the test's
	// folder: let that end before the folder is removed.
	for _, n := range []string{"a.example", "c.example"} {
		poll.Until(t, n+"'s certificate", waitTimeout, poll.True(func() bool { return m.Status(n).Status == store.CertActive }))
	}
}

func leafOf(t *testing.T, c *tls.Certificate) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// sameExtension reports whether a and b carry the same acmeIdentifier
// extension (RFC 8737), the proof a TLS-ALPN-01 answer holds.
func sameExtension(a, b *x509.Certificate) bool {
	find := func(c *x509.Certificate) []byte {
		for _, e := range c.Extensions {
			if e.Id.String() == "1.3.6.1.5.5.7.1.31" {
				return e.Value
			}
		}
		return nil
	}
	va, vb := find(a), find(b)
	return va != nil && bytes.Equal(va, vb)
}

func TestNewRequiresStorageAndDefaultsToInternalCA(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.HasPrefix(err.Error(), "certs: ") {
		t.Errorf("New without storage: %v", err)
	}
	st := &certmagic.FileStorage{Path: storageDir(t)}
	m, err := New(Config{Storage: st})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	c, err := ca.Load(context.Background(), st, ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Sync(context.Background(), []string{"a.localhost"})
	poll.Until(t, "a.localhost to become active", waitTimeout, poll.True(func() bool { return m.Status("a.localhost").Status == store.CertActive }))
	cert, err := m.GetCertificate(hello(t, "a.localhost"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(c.Intermediate()); err != nil {
		t.Errorf("default issuer is not the internal CA in storage: %v", err)
	}
}

// blockingIssuer holds every issuance until release is closed.
type blockingIssuer struct {
	certmagic.Issuer
	started chan struct{}
	release chan struct{}
}

func (b *blockingIssuer) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	b.started <- struct{}{}
	<-b.release
	return b.Issuer.Issue(ctx, csr)
}

// newBlockingManager returns a Manager whose internal CA issues only when
// iss.release is closed, stopped when t ends.
func newBlockingManager(t *testing.T) (*Manager, *ca.CA, *certmagic.FileStorage, *blockingIssuer) {
	t.Helper()
	st, c := caStorage(t)
	iss := &blockingIssuer{Issuer: c, started: make(chan struct{}, 1), release: make(chan struct{})}
	m, err := New(Config{Storage: st, Issuers: []certmagic.Issuer{iss}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m, c, st, iss
}

func TestNameRemovedDuringIssuanceIsNotKept(t *testing.T) {
	m, c, st, iss := newBlockingManager(t)
	cached := make(chan struct{}, 1)
	m.handled = func(event string) {
		if event == "cached_managed_cert" {
			select {
			case cached <- struct{}{}:
			default:
			}
		}
	}

	m.Sync(context.Background(), []string{"a.localhost"})
	<-iss.started
	m.Sync(context.Background(), nil)
	close(iss.release)

	// The issuance completes and certmagic caches the certificate; the
	// manager must drop it again so that it is not renewed forever.
	certKey := certmagic.StorageKeys.SiteCert(c.IssuerKey(), "a.localhost")
	poll.Until(t, "the certificate to be stored", waitTimeout, poll.True(func() bool { return st.Exists(context.Background(), certKey) }))
	select {
	case <-cached: // the manager has seen the certificate cached
	case <-time.After(waitTimeout):
		t.Fatal("certmagic never cached the certificate")
	}
	if got := m.cache.AllMatchingCertificates("a.localhost"); len(got) != 0 {
		t.Errorf("%d certificates for the removed name stay in the cache", len(got))
	}
	if s := m.Status("a.localhost"); s.Status != "" {
		t.Errorf("removed name has status %+v", s)
	}
}

// TestHandshakeWaitsForFirstIssuance: a client that connects while a served
// name's first certificate is being issued gets that certificate once it is
// issued, instead of an alert.
func TestHandshakeWaitsForFirstIssuance(t *testing.T) {
	m, c, _, iss := newBlockingManager(t)
	e := &env{m: m, roots: x509.NewCertPool(), addr: serveTLS(t, m)}
	e.roots.AddCert(c.Root())

	m.Sync(context.Background(), []string{"a.localhost"})
	<-iss.started
	// CertificateNow does not wait: its caller has another certificate.
	if _, err := m.CertificateNow(hello(t, "a.localhost")); err == nil {
		t.Fatal("CertificateNow answered before the certificate existed")
	}
	type result struct {
		leaf *x509.Certificate
		err  error
	}
	done := make(chan result, 1)
	go func() {
		leaf, err := e.dial("a.localhost")
		done <- result{leaf, err}
	}()
	// The handshake waits for the issuance (it holds a place among the
	// waiters) instead of failing.
	poll.Until(t, "the handshake to wait for the certificate", waitTimeout, func() error {
		select {
		case r := <-done:
			return poll.Stop(fmt.Errorf("the handshake ended before the certificate existed: %v", r.err))
		default:
		}
		if len(m.waiters) != 1 {
			return errors.New("not waiting")
		}
		return nil
	})
	close(iss.release)
	r := <-done
	if r.err != nil {
		t.Fatalf("handshake during the first issuance: %v", r.err)
	}
	if r.leaf.Subject.CommonName != "a.localhost" && (len(r.leaf.DNSNames) == 0 || r.leaf.DNSNames[0] != "a.localhost") {
		t.Errorf("served a certificate for %v", r.leaf.DNSNames)
	}
	// A name that is not served still fails at once, and so does a served
	// name whose issuance failed (TestFailedIssuanceStatus).
	if _, err := e.dial("b.localhost"); err == nil {
		t.Error("handshake for an unmanaged name succeeded")
	}
}

// TestAwaitable: which states a handshake waits in for a first certificate.
func TestAwaitable(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		what string
		s    store.CertStatus
		want bool
	}{
		{"first issuance in progress", store.CertStatus{Status: store.CertIssuing}, true},
		{"renewal of an expired certificate", store.CertStatus{Status: store.CertIssuing, NotAfter: now.Add(-time.Hour)}, false},
		{"just began to be managed", store.CertStatus{Status: store.CertPending, UpdatedAt: now.Add(-time.Second)}, true},
		{"pending for long (lock elsewhere, store down)", store.CertStatus{Status: store.CertPending, UpdatedAt: now.Add(-time.Minute)}, false},
		{"failed", store.CertStatus{Status: store.CertFailed}, false},
		{"active", store.CertStatus{Status: store.CertActive}, false},
		{"not managed", store.CertStatus{}, false},
	} {
		if got := awaitable(tc.s, now); got != tc.want {
			t.Errorf("%s: awaitable = %v, want %v", tc.what, got, tc.want)
		}
	}
}
