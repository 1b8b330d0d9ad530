package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newStorage(t *testing.T) *certmagic.FileStorage {
	return &certmagic.FileStorage{Path: t.TempDir()}
}

func mustLoad(t *testing.T, st certmagic.Storage, opts Options) *CA {
	t.Helper()
	c, err := Load(context.Background(), st, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func csrFor(t *testing.T, tmpl *x509.CertificateRequest) *x509.CertificateRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// parseChain decodes the PEM chain an Issue returned.
func parseChain(t *testing.T, chainPEM []byte) []*x509.Certificate {
	t.Helper()
	var chain []*x509.Certificate
	for rest := chainPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			t.Fatalf("chain holds a %q block", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, cert)
	}
	return chain
}

func verify(t *testing.T, c *CA, chain []*x509.Certificate, name string, at time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(c.Root())
	inters := x509.NewCertPool()
	for _, cert := range chain[1:] {
		inters.AddCert(cert)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:       name,
		Roots:         roots,
		Intermediates: inters,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Fatalf("verifying leaf for %s: %v", name, err)
	}
}

func TestLoadCreatesCAAndReloadsIt(t *testing.T) {
	st := newStorage(t)
	clk := &clock{t: t0}
	c := mustLoad(t, st, Options{Now: clk.Now})

	root := c.Root()
	if root.Subject.CommonName != "Spine Internal CA" {
		t.Errorf("root CN = %q", root.Subject.CommonName)
	}
	if !root.IsCA || root.MaxPathLen != 1 || root.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("root: IsCA=%v MaxPathLen=%d KeyUsage=%v", root.IsCA, root.MaxPathLen, root.KeyUsage)
	}
	if pub, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("root key is %T, want ECDSA P-256", root.PublicKey)
	}
	if len(root.SubjectKeyId) == 0 {
		t.Error("root has no SubjectKeyId")
	}
	if root.SerialNumber.BitLen() < 64 {
		t.Errorf("root serial %v is not random-looking", root.SerialNumber)
	}
	if got := root.NotAfter.Sub(t0); got < 10*365*24*time.Hour-time.Hour {
		t.Errorf("root valid for %v, want 10 years", got)
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}

	inter := c.Intermediate()
	if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
		t.Errorf("intermediate: IsCA=%v MaxPathLen=%d MaxPathLenZero=%v", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
	}
	if err := inter.CheckSignatureFrom(root); err != nil {
		t.Errorf("intermediate not signed by root: %v", err)
	}
	if got := inter.NotAfter.Sub(t0); got != 365*24*time.Hour {
		t.Errorf("intermediate valid for %v after now, want one year", got)
	}
	if !strings.Contains(string(c.RootPEM()), "BEGIN CERTIFICATE") {
		t.Errorf("RootPEM = %q", c.RootPEM())
	}
	if c.IssuerKey() != "spine-internal" {
		t.Errorf("IssuerKey = %q", c.IssuerKey())
	}

	again := mustLoad(t, &certmagic.FileStorage{Path: st.Path}, Options{Now: clk.Now})
	if !again.Root().Equal(root) {
		t.Error("reloading made a new root")
	}
	if !again.Intermediate().Equal(inter) {
		t.Error("reloading made a new intermediate")
	}
}

func TestConcurrentLoadCreatesOneRoot(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	roots := make([]*x509.Certificate, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// One storage value per "node", all on the same folder.
			c, err := Load(context.Background(), &certmagic.FileStorage{Path: dir}, Options{})
			if err != nil {
				t.Errorf("Load %d: %v", i, err)
				return
			}
			roots[i] = c.Root()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, r := range roots[1:] {
		if !r.Equal(roots[0]) {
			t.Fatalf("Load %d got another root than Load 0", i+1)
		}
	}
}

func TestIssue(t *testing.T) {
	clk := &clock{t: t0}
	c := mustLoad(t, newStorage(t), Options{Now: clk.Now, LeafLifetime: 90 * time.Minute})
	csr := csrFor(t, &x509.CertificateRequest{
		DNSNames:    []string{"a.localhost", "b.localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	})
	issued, err := c.Issue(context.Background(), csr)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	chain := parseChain(t, issued.Certificate)
	if len(chain) != 2 {
		t.Fatalf("chain has %d certificates, want leaf + intermediate", len(chain))
	}
	if !chain[1].Equal(c.Intermediate()) {
		t.Error("second certificate is not the intermediate")
	}
	leaf := chain[0]
	for _, name := range []string{"a.localhost", "b.localhost", "127.0.0.1"} {
		verify(t, c, chain, name, t0)
	}
	if leaf.Subject.CommonName != "a.localhost" {
		t.Errorf("leaf CN = %q", leaf.Subject.CommonName)
	}
	if leaf.IsCA {
		t.Error("leaf is a CA")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("leaf KeyUsage = %v", leaf.KeyUsage)
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("leaf ExtKeyUsage = %v", leaf.ExtKeyUsage)
	}
	if string(leaf.AuthorityKeyId) != string(c.Intermediate().SubjectKeyId) {
		t.Error("leaf AuthorityKeyId is not the intermediate's SubjectKeyId")
	}
	if !leaf.NotBefore.Equal(t0.Add(-time.Minute)) {
		t.Errorf("leaf NotBefore = %v, want a minute before %v", leaf.NotBefore, t0)
	}
	if !leaf.NotAfter.Equal(t0.Add(90 * time.Minute)) {
		t.Errorf("leaf NotAfter = %v, want now + 90m", leaf.NotAfter)
	}

	// The default lifetime is 24 hours.
	c = mustLoad(t, newStorage(t), Options{Now: clk.Now})
	issued, err = c.Issue(context.Background(), csr)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseChain(t, issued.Certificate)[0].NotAfter.Sub(t0); got != 24*time.Hour {
		t.Errorf("default leaf lifetime = %v, want 24h", got)
	}
}

func TestIssueRefusesBadRequests(t *testing.T) {
	c := mustLoad(t, newStorage(t), Options{})
	tampered := csrFor(t, &x509.CertificateRequest{DNSNames: []string{"a.localhost"}})
	tampered.Signature[len(tampered.Signature)-1] ^= 0xff
	u, _ := url.Parse("spiffe://x/y")

	tests := []struct {
		name string
		csr  *x509.CertificateRequest
		want string
	}{
		{"nil", nil, "no certificate request"},
		{"bad signature", tampered, "signature"},
		{"no names", csrFor(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a.localhost"}}), "no DNS name"},
		{"email", csrFor(t, &x509.CertificateRequest{DNSNames: []string{"a.localhost"}, EmailAddresses: []string{"a@b.c"}}), "e-mail"},
		{"uri", csrFor(t, &x509.CertificateRequest{DNSNames: []string{"a.localhost"}, URIs: []*url.URL{u}}), "URI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issued, err := c.Issue(context.Background(), tt.csr)
			if err == nil {
				t.Fatalf("Issue issued %d bytes, want an error", len(issued.Certificate))
			}
			if !strings.HasPrefix(err.Error(), "ca: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want ca: ...%s...", err, tt.want)
			}
		})
	}
}

func TestIntermediateRenewal(t *testing.T) {
	st := newStorage(t)
	clk := &clock{t: t0}
	c := mustLoad(t, st, Options{Now: clk.Now})
	old := c.Intermediate()

	// 200 days in, more than a third of the year is left: no renewal.
	clk.Add(200 * 24 * time.Hour)
	if !mustLoad(t, st, Options{Now: clk.Now}).Intermediate().Equal(old) {
		t.Fatal("intermediate renewed with more than a third of its life left")
	}

	// 250 days in, less than a third is left: Issue renews it first.
	clk.Add(50 * 24 * time.Hour)
	csr := csrFor(t, &x509.CertificateRequest{DNSNames: []string{"a.localhost"}})
	issued, err := c.Issue(context.Background(), csr)
	if err != nil {
		t.Fatal(err)
	}
	chain := parseChain(t, issued.Certificate)
	renewed := c.Intermediate()
	if renewed.Equal(old) {
		t.Fatal("Issue did not renew an intermediate with less than a third of its life left")
	}
	if !chain[1].Equal(renewed) {
		t.Error("leaf was not chained to the renewed intermediate")
	}
	if got := renewed.NotAfter.Sub(clk.Now()); got != 365*24*time.Hour {
		t.Errorf("renewed intermediate valid for %v, want a year", got)
	}
	verify(t, c, chain, "a.localhost", clk.Now())

	// The renewal is in the storage: another node loads the same one.
	other := mustLoad(t, &certmagic.FileStorage{Path: st.Path}, Options{Now: clk.Now})
	if !other.Intermediate().Equal(renewed) || !other.Root().Equal(c.Root()) {
		t.Error("another Load does not see the renewed intermediate under the same root")
	}

	// Load renews too: a node that starts late in the intermediate's life.
	clk.Add(300 * 24 * time.Hour)
	late := mustLoad(t, &certmagic.FileStorage{Path: st.Path}, Options{Now: clk.Now})
	if late.Intermediate().Equal(renewed) {
		t.Error("Load did not renew an intermediate near its end")
	}
	if !late.Root().Equal(c.Root()) {
		t.Error("renewal changed the root")
	}
}

func TestLoadRepairsTornIntermediate(t *testing.T) {
	st := newStorage(t)
	c := mustLoad(t, st, Options{})
	// A crash after writing a new intermediate key but before its certificate.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(other)
	if err := st.Store(context.Background(), keyIntermediateKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err != nil {
		t.Fatal(err)
	}
	again := mustLoad(t, st, Options{})
	if !again.Root().Equal(c.Root()) {
		t.Error("a torn intermediate replaced the root")
	}
	if again.Intermediate().Equal(c.Intermediate()) {
		t.Error("the torn intermediate was kept")
	}
	csr := csrFor(t, &x509.CertificateRequest{DNSNames: []string{"a.localhost"}})
	issued, err := again.Issue(context.Background(), csr)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, again, parseChain(t, issued.Certificate), "a.localhost", time.Now())
}

func TestErrorsNeverShowPrivateKeys(t *testing.T) {
	ctx := context.Background()
	secret := "c2VjcmV0LWtleS1ieXRlcy10aGF0LW11c3Qtbm90LWxlYWs="
	badKey := []byte("-----BEGIN EC PRIVATE KEY-----\n" + secret + "\n-----END EC PRIVATE KEY-----\n")

	var errs []error
	// A root key that does not parse.
	st := newStorage(t)
	mustLoad(t, st, Options{})
	if err := st.Store(ctx, keyRootKey, badKey); err != nil {
		t.Fatal(err)
	}
	_, err := Load(ctx, st, Options{})
	errs = append(errs, err)

	// A root certificate whose key is missing: never replace a trusted root.
	st = newStorage(t)
	mustLoad(t, st, Options{})
	if err := st.Delete(ctx, keyRootKey); err != nil {
		t.Fatal(err)
	}
	_, err = Load(ctx, st, Options{})
	errs = append(errs, err)

	// A root key that belongs to another certificate.
	st = newStorage(t)
	mustLoad(t, st, Options{})
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(other)
	otherPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	if err := st.Store(ctx, keyRootKey, otherPEM); err != nil {
		t.Fatal(err)
	}
	_, err = Load(ctx, st, Options{})
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Errorf("case %d: Load succeeded on broken storage", i)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "ca: ") {
			t.Errorf("case %d: error %q lacks the ca: prefix", i, msg)
		}
		if strings.Contains(msg, "PRIVATE KEY") || strings.Contains(msg, secret) || strings.Contains(msg, string(otherPEM[30:60])) {
			t.Errorf("case %d: error shows key material: %q", i, msg)
		}
		if !strings.Contains(msg, "spine/ca/root") {
			t.Errorf("case %d: error %q does not say which storage key is broken", i, msg)
		}
	}
}

func TestWriteRootPEM(t *testing.T) {
	c := mustLoad(t, newStorage(t), Options{})
	path := filepath.Join(t.TempDir(), ".spine", "ca", "root.pem")
	if err := c.WriteRootPEM(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(c.RootPEM()) {
		t.Error("written file is not the root PEM")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("root.pem mode %v, want 0644", fi.Mode().Perm())
	}
	di, _ := os.Stat(filepath.Dir(path))
	if di.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v, want 0700", di.Mode().Perm())
	}
	// Writing again replaces the file.
	if err := c.WriteRootPEM(path); err != nil {
		t.Fatal(err)
	}
}

func TestCheckLeafLifetime(t *testing.T) {
	for d, ok := range map[time.Duration]bool{0: true, time.Hour: true, 24 * time.Hour: true, MaxLeafLifetime: true,
		time.Minute: false, MaxLeafLifetime + time.Second: false, -time.Hour: false} {
		if err := CheckLeafLifetime(d); (err == nil) != ok {
			t.Errorf("CheckLeafLifetime(%s) = %v, want ok %v", d, err, ok)
		}
	}
	if MaxLeafLifetime > intermediateLifetime {
		t.Error("a leaf could outlive the intermediate that signs it")
	}
}
