package platform

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/pkitest"
)

// TestUploadRefusals: each check refuses with its own code and a message
// that says what to do; nothing is stored; no refusal shows key material.
func TestUploadRefusals(t *testing.T) {
	root := pkitest.NewRoot("Upload Test Root")
	inter := root.Intermediate("Upload Test Issuing CA")
	other := pkitest.NewRoot("Somebody Else's Root")
	p := newTestPlatform(t, Options{UploadRoots: root.Pool()})
	ctx := context.Background()
	if _, err := p.AddDomain(ctx, "p1", "example.com", true); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddDomain(ctx, "p1", "pending.example", false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddDomain(ctx, "p2", "two.example", true); err != nil {
		t.Fatal(err)
	}
	host := "shop.example.com"
	good := inter.Issue(pkitest.Leaf{CommonName: host, DNSNames: []string{host}})
	now := time.Now()
	issue := func(l pkitest.Leaf) *pkitest.Issued {
		if l.DNSNames == nil {
			l.DNSNames = []string{host}
		}
		return inter.Issue(l)
	}
	chainOnly := func(i *pkitest.Issued) []byte { return pkitest.PEM(i.Cert) }
	ed := issue(pkitest.Leaf{Key: pkitest.Ed25519})
	rsaSmall := issue(pkitest.Leaf{Key: pkitest.RSA1024})
	p521 := issue(pkitest.Leaf{Key: pkitest.P521})
	expired := issue(pkitest.Leaf{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	soon := issue(pkitest.Leaf{NotAfter: now.Add(12 * time.Hour)})
	future := issue(pkitest.Leaf{NotBefore: now.Add(time.Hour)})
	wrongName := issue(pkitest.Leaf{DNSNames: []string{"www.example.com"}})
	foreign := other.Issue(pkitest.Leaf{DNSNames: []string{host}})
	noServer := issue(pkitest.Leaf{NoServerAuth: true})
	encrypted := []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n")

	for _, tc := range []struct {
		name       string
		host       string
		chain, key []byte
		root       []byte
		code, text string
	}{
		{"not PEM", host, []byte("hello"), good.KeyPEM, nil, "certificate_parse", "not PEM"},
		{"key in the certificate file", host, append(append([]byte{}, good.KeyPEM...), good.ChainPEM...), good.KeyPEM, nil, "certificate_parse", "holds a private key; it may hold only CERTIFICATE blocks"},
		{"no key", host, good.ChainPEM, good.ChainPEM, nil, "certificate_parse", "no PEM private key"},
		{"encrypted key", host, good.ChainPEM, encrypted, nil, "certificate_parse", "encrypted"},
		{"Ed25519", host, ed.ChainPEM, ed.KeyPEM, nil, "certificate_key_type", "browsers do not accept Ed25519"},
		{"RSA 1024", host, rsaSmall.ChainPEM, rsaSmall.KeyPEM, nil, "certificate_key_type", "RSA key of 1024 bits"},
		{"P-521", host, p521.ChainPEM, p521.KeyPEM, nil, "certificate_key_type", "P-521"},
		{"another key", host, good.ChainPEM, wrongName.KeyPEM, nil, "certificate_key_match", "not the key of the certificate"},
		{"other names", host, wrongName.ChainPEM, wrongName.KeyPEM, nil, "certificate_names", "is for www.example.com, not shop.example.com"},
		{"expired", host, expired.ChainPEM, expired.KeyPEM, nil, "certificate_validity", "expired at"},
		{"less than a day", host, soon.ChainPEM, soon.KeyPEM, nil, "certificate_validity", "in less than 24h0m0s"},
		{"not yet valid", host, future.ChainPEM, future.KeyPEM, nil, "certificate_validity", "valid only from"},
		{"intermediate missing", host, chainOnly(good), good.KeyPEM, nil, "certificate_chain", `issuer "Upload Test Issuing CA" is not a trusted root`},
		{"unknown root", host, foreign.ChainPEM, foreign.KeyPEM, nil, "certificate_chain", "not a trusted root"},
		{"root given is another", host, good.ChainPEM, good.KeyPEM, other.RootPEM(), "certificate_chain", "not a trusted root"},
		{"no serverAuth", host, noServer.ChainPEM, noServer.KeyPEM, nil, "certificate_chain", "serverAuth"},
		{"domain not verified", "a.pending.example", good.ChainPEM, good.KeyPEM, nil, "domain_not_verified", "verify it"},
		{"another project's domain", "a.two.example", good.ChainPEM, good.KeyPEM, nil, "host_outside_domains", "not under any of this project's domains"},
		{"bad hostname", "*.example.com", good.ChainPEM, good.KeyPEM, nil, "invalid_hostname", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.UploadCertificate(ctx, "p1", Upload{Host: tc.host, Chain: tc.chain, Key: tc.key, Root: tc.root})
			wantCode(t, err, tc.code, tc.text)
			if strings.Contains(err.Error(), "PRIVATE KEY-----") || bytes.Contains([]byte(err.Error()), good.KeyPEM[30:60]) {
				t.Errorf("the refusal shows key material: %v", err)
			}
		})
	}
	if got, _ := p.ListUploadedCertificates(ctx, "p1"); len(got) != 0 {
		t.Fatalf("a refused upload was stored: %v", got)
	}

	// The good one, with its intermediate; then with the root given.
	info, err := p.UploadCertificate(ctx, "p1", Upload{Host: "SHOP.example.com.", Chain: good.ChainPEM, Key: good.KeyPEM})
	if err != nil {
		t.Fatal(err)
	}
	if info.Hostname != host || info.Issuer != "Upload Test Issuing CA" || !info.NotAfter.Equal(good.Cert.NotAfter.UTC()) || info.SHA256 != good.SHA256() {
		t.Errorf("upload answer = %+v", info)
	}
	pf := newTestPlatform(t, Options{UploadRoots: other.Pool()}) // the given root is used, not these
	if _, err := pf.AddDomain(ctx, "p1", "example.com", true); err != nil {
		t.Fatal(err)
	}
	if _, err := pf.UploadCertificate(ctx, "p1", Upload{Host: host, Chain: good.ChainPEM, Key: good.KeyPEM, Root: root.RootPEM()}); err != nil {
		t.Fatalf("upload with --root: %v", err)
	}
	// Accepted key types: P-384 and RSA 2048.
	for _, kt := range []pkitest.KeyType{pkitest.P384, pkitest.RSA2048} {
		c := issue(pkitest.Leaf{Key: kt})
		if _, err := p.UploadCertificate(ctx, "p1", Upload{Host: host, Chain: c.ChainPEM, Key: c.KeyPEM}); err != nil {
			t.Errorf("%s: %v", kt, err)
		}
	}
	// Removal: only the project's own.
	wantCode(t, p.RemoveCertificate(ctx, "p2", host), "not_found", "")
	if err := p.RemoveCertificate(ctx, "p1", host); err != nil {
		t.Fatal(err)
	}
	wantCode(t, p.RemoveCertificate(ctx, "p1", host), "not_found", "")
}
