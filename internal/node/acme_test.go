package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/dnsprovider/rfc2136"
	"github.com/spine-platform/spine/internal/dnsserver"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/pebbletest"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

// acmeSetup is a node that gets its certificates from Pebble, with a test
// DNS server as every party's resolver; names resolve to 127.0.0.1.
type acmeSetup struct {
	n        *Node
	dir      string
	cfg      config.Config
	pebble   *pebbletest.Pebble
	dns      *pebbletest.DNS
	admin    *client.Client
	upstream string
}

const delegationZone = "acme.spine.test"

// freeAddrs returns n distinct 127.0.0.1 addresses whose ports are free right
// now: Pebble must know the edge's ports before the node starts. All n are held
// open together so that the kernel cannot hand out one port twice.
func freeAddrs(t testing.TB, n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		ln := listenBelowEphemeral(t)
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
}

// listenBelowEphemeral listens on a free port under Linux's ephemeral
// range (32768 on): a port the kernel hands out for :0 may next be the
// local end of another test's outgoing connection, a pooled PostgreSQL
// one for minutes, and a node started on it later failed to bind for
// 30 s (TestMetricsACME, once in CI). Random, so that test packages
// running at once rarely try the same one; :0 if none is free.
func listenBelowEphemeral(t testing.TB) net.Listener {
	for range 100 {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err == nil {
			return ln
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func newACMESetup(t testing.TB, validity time.Duration, mod func(*config.Config)) *acmeSetup {
	t.Helper()
	return newACMESetupPebble(t, pebbletest.Options{Validity: validity}, mod)
}

// newACMESetupPebble is newACMESetup with Pebble's options (its ports and
// resolver are the setup's).
func newACMESetupPebble(t testing.TB, popts pebbletest.Options, mod func(*config.Config)) *acmeSetup {
	t.Helper()
	s := &acmeSetup{dir: t.TempDir(), dns: pebbletest.StartDNS(t)}
	addrs := freeAddrs(t, 2)
	httpsAddr, httpAddr := addrs[0], addrs[1]
	popts.HTTPPort, popts.TLSPort, popts.Resolver = port(tcpAddr(httpAddr)), port(tcpAddr(httpsAddr)), s.dns.Addr
	s.pebble = pebbletest.Start(t, popts)
	s.cfg = config.Config{
		DataDir:  s.dir,
		Settings: edge.Settings{HTTPSAddr: httpsAddr, HTTPAddr: httpAddr},
		APIAddr:  "127.0.0.1:0",
		Version:  "test",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		ACME: certs.ACMEConfig{
			CAs:                []string{s.pebble.DirectoryURL()},
			TrustedRoots:       s.pebble.ServerRoots(),
			Email:              "ops@example.test",
			NoInternalFallback: true,
			Resolver:           s.dns.Addr,
			CheckInterval:      time.Hour, // the tests call CheckDomains
			DelegationZone:     delegationZone,
			DNSAddr:            "127.0.0.1:0",
		},
	}
	if mod != nil {
		mod(&s.cfg)
	}
	s.start(t)
	s.admin = adminClient2(t, s.n, s.dir)
	s.upstream = upstreamTB(t)
	return s
}

func (s *acmeSetup) start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The edge's ports were chosen free before Pebble started (or were freed
	// by a restart); another process on this machine may hold one of them
	// for a moment as the local end of an outgoing connection, so binding
	// is retried for a while before the test gives up.
	var n *Node
	poll.Until(t, "starting node", 30*time.Second, func() error {
		var err error
		n, err = Start(ctx, s.cfg)
		if err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			return poll.Stop(err)
		}
		return err
	})
	t.Cleanup(func() { n.Close(context.Background()) })
	s.n = n
	if n.DNSAddr() != "" {
		s.dns.Forward(delegationZone, n.DNSAddr())
	}
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

func adminClient2(t testing.TB, n *Node, dir string) *client.Client {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return client.New("http://"+n.APIAddr(), strings.TrimSpace(string(tok)))
}

func upstreamTB(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.Host) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// addVerified adds domain to the project of c and proves it in DNS.
func (s *acmeSetup) addVerified(t testing.TB, c *client.Client, domain string) client.Domain {
	t.Helper()
	ctx := context.Background()
	d, err := c.AddDomain(ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	s.publish(d.VerifyRecord)
	d, err = c.VerifyDomain(ctx, domain)
	if err != nil || d.Status != store.DomainVerified {
		t.Fatalf("verify %s: %+v, %v", domain, d, err)
	}
	return d
}

// publish creates a zone-file TXT line's record in the test DNS.
func (s *acmeSetup) publish(zoneLine string) {
	f := strings.Fields(zoneLine)
	value := strings.Trim(f[len(f)-1], `"`)
	s.dns.SetTXT(f[0], value)
}

// get does an HTTPS request for host on the node, verifying the chain
// against Pebble's root, and returns the leaf and body.
func (s *acmeSetup) get(host string) (*x509.Certificate, string, error) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.pebble.Roots(), ServerName: host},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, s.n.HTTPSAddr())
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + host + "/")
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return resp.TLS.PeerCertificates[0], string(b), nil
}

func (s *acmeSetup) waitServed(t testing.TB, host string) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	poll.Until(t, "HTTPS for "+host+" verified against Pebble's root", waitTimeout, func() error {
		var err error
		leaf, _, err = s.get(host)
		return err
	})
	return leaf
}

func certStatus(t testing.TB, c *client.Client, host string) client.Certificate {
	t.Helper()
	cs, err := c.Certificates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range cs {
		if x.Hostname == host {
			return x
		}
	}
	return client.Certificate{}
}

func TestACMEOnlyVerifiedDomainsGetCertificates(t *testing.T) {
	s := newACMESetup(t, 0, nil)
	ctx := context.Background()

	d, err := s.admin.AddDomain(ctx, "example.test")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != store.DomainPending || !strings.HasPrefix(d.VerifyRecord, `_spine-challenge.example.test. 300 IN TXT "spine-verify=`) {
		t.Fatalf("added domain: %+v", d)
	}
	if _, err := s.admin.CreateService(ctx, client.ServiceCreate{Name: "www", Domain: "example.test", Upstreams: []string{s.upstream}}); err != nil {
		t.Fatal(err)
	}
	// Unverified: not served, no ACME order at all, and cert list says why.
	s.n.CheckDomains(ctx)
	if err := s.n.syncer.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.get("www.example.test"); err == nil {
		t.Fatal("an unverified domain is served")
	}
	if c := certStatus(t, s.admin, "www.example.test"); c.Status != "pending" || !strings.Contains(c.Error, "not verified") {
		t.Errorf("cert status of an unverified name: %+v", c)
	}
	// A wrong record: verify says what it found.
	s.dns.SetTXT("_spine-challenge.example.test", "spine-verify=somethingelse")
	d, err = s.admin.VerifyDomain(ctx, "example.test")
	if err != nil || d.Status != store.DomainPending || !strings.Contains(d.CheckDetail, `"spine-verify=somethingelse"`) {
		t.Fatalf("verify with a wrong record: %+v, %v", d, err)
	}
	if n := s.pebble.NewOrders(); n != 0 {
		t.Fatalf("%d ACME orders for an unverified domain", n)
	}

	// The right record, found by the periodic re-check.
	s.publish(d.VerifyRecord)
	s.n.CheckDomains(ctx)
	if d, _ := s.admin.Domain(ctx, "example.test"); d.Status != store.DomainVerified {
		t.Fatalf("after the re-check: %+v", d)
	}
	leaf := s.waitServed(t, "www.example.test")
	// The status is written to the store in the background, a moment after
	// the certificate is cached (and served).
	poll.Until(t, "certificate status active", waitTimeout, func() error {
		if c := certStatus(t, s.admin, "www.example.test"); c.Status != "active" || c.Issuer != leaf.Issuer.CommonName || !strings.Contains(c.Issuer, "Pebble") {
			return fmt.Errorf("cert status %+v, leaf issuer %q", c, leaf.Issuer.CommonName)
		}
		return nil
	})
}

func TestACMEDomainTakeover(t *testing.T) {
	s := newACMESetup(t, 0, nil)
	ctx := context.Background()
	s.addVerified(t, s.admin, "example.test")
	if _, err := s.admin.CreateService(ctx, client.ServiceCreate{Name: "www", Domain: "example.test", Upstreams: []string{s.upstream}}); err != nil {
		t.Fatal(err)
	}
	s.waitServed(t, "www.example.test")

	_, tok, err := s.n.Platform().CreateProject(ctx, "tenant-b")
	if err != nil {
		t.Fatal(err)
	}
	b := client.New("http://"+s.n.APIAddr(), tok)
	bp, err := b.Project(ctx)
	if err != nil {
		t.Fatal(err)
	}
	claim := platform.ClaimRecord(bp.ID, "example.test")
	// Refused without proof, with the record to create.
	if _, err := b.AddDomain(ctx, "example.test"); !client.IsCode(err, "domain_taken") || !strings.Contains(err.Error(), claim) {
		t.Fatalf("B adds A's domain: %v", err)
	}
	if _, err := b.VerifyDomain(ctx, "example.test"); !client.IsCode(err, "domain_taken") {
		t.Fatalf("B verifies A's domain without its record: %v", err)
	}
	// A's own record does not help B.
	if _, err := b.CreateService(ctx, client.ServiceCreate{Name: "www2", Domain: "example.test", Upstreams: []string{s.upstream}}); err == nil {
		t.Fatal("B created a service on A's domain")
	}
	// With B's own record, the domain moves; A's service stops being served.
	s.publish(claim)
	d, err := b.VerifyDomain(ctx, "example.test")
	if err != nil || !d.Moved || d.Status != store.DomainVerified {
		t.Fatalf("B's proven claim: %+v, %v", d, err)
	}
	poll.Until(t, "A's service no longer served", waitTimeout, func() error {
		if _, _, err := s.get("www.example.test"); err == nil {
			return fmt.Errorf("still served")
		}
		return nil
	})
	if _, err := b.CreateService(ctx, client.ServiceCreate{Name: "shop", Domain: "example.test", Upstreams: []string{s.upstream}}); err != nil {
		t.Fatal(err)
	}
	s.waitServed(t, "shop.example.test")
}

func TestACMEDelegatedWildcard(t *testing.T) {
	s := newACMESetup(t, 0, nil)
	ctx := context.Background()
	d := s.addVerified(t, s.admin, "example.test")
	if !strings.HasPrefix(d.DelegationRecord, "_acme-challenge.example.test. 300 IN CNAME ") || !strings.HasSuffix(d.DelegationRecord, "."+delegationZone+".") {
		t.Fatalf("delegation record %q", d.DelegationRecord)
	}
	f := strings.Fields(d.DelegationRecord)
	s.dns.SetCNAME("_acme-challenge.example.test", f[len(f)-1])
	s.n.CheckDomains(ctx)

	for _, name := range []string{"a", "b", "c"} {
		if _, err := s.admin.CreateService(ctx, client.ServiceCreate{Name: name, Domain: "example.test", Upstreams: []string{s.upstream}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "b", "c"} {
		leaf := s.waitServed(t, name+".example.test")
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "*.example.test" {
			t.Errorf("%s: names %v, want the shared wildcard", name, leaf.DNSNames)
		}
	}
	if n := s.pebble.Finalized(); n != 1 {
		t.Errorf("%d certificates ordered for 3 services under one delegated domain, want 1", n)
	}
	if _, _, err := s.get("nobody.example.test"); err == nil {
		t.Error("a name no service holds was served with the wildcard")
	}
}

func TestACMERenewsShortLivedCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a renewal")
	}
	// The certificate lives a minute and is due for renewal in its last
	// 48 s: a renewal that starts 12 s after issuance has 48 s to complete,
	// which it does on a loaded machine too. The certificate's own expiry
	// is the deadline: that is what a user would see.
	const validity = time.Minute
	s := newACMESetup(t, validity, func(c *config.Config) {
		c.ACME.RenewCheckInterval = time.Second
		c.ACME.RenewalWindowRatio = 0.8
	})
	ctx := context.Background()
	s.addVerified(t, s.admin, "example.test")
	if _, err := s.admin.CreateService(ctx, client.ServiceCreate{Name: "www", Domain: "example.test", Upstreams: []string{s.upstream}}); err != nil {
		t.Fatal(err)
	}
	first := s.waitServed(t, "www.example.test")
	if got := first.NotAfter.Sub(first.NotBefore); got > validity+time.Minute {
		t.Fatalf("Pebble issued for %v, want about %v", got, validity)
	}
	// Handshake until a newer certificate is served: every handshake
	// verifies (so never an expired certificate), and the newer one must
	// come before the first one expires.
	poll.Until(t, "a renewed certificate served before the first expires", time.Until(first.NotAfter), func() error {
		leaf, _, err := s.get("www.example.test")
		if err != nil {
			return poll.Stop(fmt.Errorf("handshake at %s (first expires %s): %w", time.Now().Format(time.TimeOnly), first.NotAfter.Format(time.TimeOnly), err))
		}
		if leaf.SerialNumber.Cmp(first.SerialNumber) == 0 {
			return fmt.Errorf("still the first certificate (serial %x)", first.SerialNumber)
		}
		// Not older: Pebble's renewal information (ARI) suggests a window
		// from issuance to expiry for a certificate this short-lived
		// (RenewalInfoSimple's two days, cut to its life), and certmagic
		// renews at a moment it picks in it, so a renewal can come within a
		// second of the first issuance (seen: 1.4 s into the test) and, its
		// expiry in whole seconds, expire at the same second (CI, once).
		if leaf.NotAfter.Before(first.NotAfter) {
			return poll.Stop(fmt.Errorf("a certificate expiring %s replaced one expiring %s", leaf.NotAfter, first.NotAfter))
		}
		return nil
	})
}

func TestACMERestartDuringOrder(t *testing.T) {
	// Pebble holds the first node's answer to its challenge until that
	// node is closed: the node stops in the middle of its order, between
	// the challenge and the finalization, whatever the machine's load.
	answered := make(chan struct{}, 1)
	hold := make(chan struct{})
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	s := newACMESetupPebble(t, pebbletest.Options{BeforeValidation: func(identifier, _ string) {
		if identifier != "www.example.test" {
			return
		}
		select {
		case answered <- struct{}{}:
		default:
		}
		<-hold
	}}, nil)
	t.Cleanup(release) // before Pebble stops, if the test ends early
	ctx := context.Background()
	s.addVerified(t, s.admin, "example.test")
	if _, err := s.admin.CreateService(ctx, client.ServiceCreate{Name: "www", Domain: "example.test", Upstreams: []string{s.upstream}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-answered:
	case <-time.After(waitTimeout):
		t.Fatal("the node never answered its challenge")
	}
	s.n.Close(context.Background())
	release()
	s.start(t)
	s.admin = adminClient2(t, s.n, s.dir)
	leaf := s.waitServed(t, "www.example.test")
	// The certificate served is the one in the store, with its key.
	poll.Until(t, "status of the served certificate", waitTimeout, func() error {
		c := certStatus(t, s.admin, "www.example.test")
		if c.Status != "active" || c.NotAfter == nil || !c.NotAfter.Equal(leaf.NotAfter) {
			return fmt.Errorf("status %+v does not describe the served certificate (not after %s)", c, leaf.NotAfter)
		}
		return nil
	})
	// The first node's order never reached its finalization; the restarted
	// node's is the one certificate.
	if n := s.pebble.Finalized(); n != 1 {
		t.Errorf("%d certificates ordered across the restart, want 1", n)
	}
}

func TestACMEWildcardThroughRFC2136Provider(t *testing.T) {
	// The customer's own DNS server for prov.test, updated with TSIG.
	const keyName, secret = "spine-update.", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
	records := &dnsserver.MemoryStore{}
	custDNS, err := dnsserver.New(dnsserver.Config{Zone: "prov.test", Records: records, TSIG: map[string]string{keyName: secret}})
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp, err := dnsserver.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go custDNS.Serve(udp, tcp)
	t.Cleanup(func() { custDNS.Shutdown(context.Background()) })

	s := newACMESetup(t, 0, func(c *config.Config) {
		c.ACME.DNSProviders = map[string]certmagic.DNSProvider{"prov.test": &rfc2136.Provider{Server: udp.LocalAddr().String(), KeyName: keyName, Key: secret}}
		c.ACME.DNSPropagationTimeout = -1
	})
	s.dns.Forward("prov.test", udp.LocalAddr().String())
	ctx := context.Background()
	d, err := s.admin.AddDomain(ctx, "prov.test")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(d.VerifyRecord)
	if err := records.AddTXT(ctx, f[0], strings.Trim(f[len(f)-1], `"`)); err != nil {
		t.Fatal(err)
	}
	if d, err := s.admin.VerifyDomain(ctx, "prov.test"); err != nil || d.Status != store.DomainVerified {
		t.Fatalf("verify: %+v, %v", d, err)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := s.admin.CreateService(ctx, client.ServiceCreate{Name: name, Domain: "prov.test", Upstreams: []string{s.upstream}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "b"} {
		leaf := s.waitServed(t, name+".prov.test")
		if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "*.prov.test" {
			t.Errorf("%s: names %v, want *.prov.test", name, leaf.DNSNames)
		}
	}
}
