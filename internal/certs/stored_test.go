package certs_test

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/pkitest"
)

// keyIssuer is an issuer known only by its storage folder.
type keyIssuer string

func (k keyIssuer) IssuerKey() string { return string(k) }
func (keyIssuer) Issue(context.Context, *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	panic("not called")
}

// Stored loads a name's certificate, its own or its parent's wildcard,
// whichever lasts longer, under any issuer, from one read of the store:
// the warm-up's look-up of a name waits one round trip for it.
func TestStoredReadsOnce(t *testing.T) {
	s, kv := newCounted(t)
	pki := pkitest.NewRoot("Stored Root")
	put := func(issuer, name string, days int) {
		c := pki.Issue(pkitest.Leaf{DNSNames: []string{name}, NotAfter: time.Now().Add(time.Duration(days) * 24 * time.Hour)})
		for key, v := range map[string][]byte{
			certmagic.StorageKeys.SiteCert(issuer, name):       c.ChainPEM,
			certmagic.StorageKeys.SitePrivateKey(issuer, name): c.KeyPEM,
		} {
			if err := kv.DB.PutKey(context.Background(), key, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("ca-a", "www.shop.example", 30)
	put("ca-b", "*.shop.example", 60)
	put("ca-a", "api.shop.example", 90)
	put("ca-b", "solo.example", 30)
	st := certs.NewStored(s, []certmagic.Issuer{keyIssuer("ca-a"), keyIssuer("ca-b")})

	for _, c := range []struct {
		host string
		want string // the leaf's name, "" none
	}{
		{"www.shop.example", "*.shop.example"}, // the wildcard lasts longer
		{"api.shop.example", "api.shop.example"},
		{"new.shop.example", "*.shop.example"},
		{"solo.example", "solo.example"},
		{"none.example", ""},
	} {
		before := kv.reads()
		cert := st.Certificate(context.Background(), c.host, nil)
		got := ""
		if cert != nil {
			got = cert.Leaf.DNSNames[0]
		}
		if got != c.want {
			t.Errorf("Certificate(%s) is for %q, want %q", c.host, got, c.want)
		}
		if n := kv.reads() - before; n != 1 || kv.gets.Load() != 0 {
			t.Errorf("Certificate(%s): %d reads reached the store (%d of one key), want one prefix read", c.host, n, kv.gets.Load())
		}
	}
}

// BenchmarkStoredCertificate is the warm-up's look-up of a name's stored
// certificate (its own and its parent's wildcard, one issuer) from one
// read of a SQLite store; B/op is the garbage each such handshake makes
// besides its TLS work.
func BenchmarkStoredCertificate(b *testing.B) {
	db := openStoreDSN(b, "sqlite:"+filepath.Join(b.TempDir(), "spine.db"))
	pki := pkitest.NewRoot("Stored Root")
	const name = "s000001.bench.test"
	c := pki.Issue(pkitest.Leaf{DNSNames: []string{name}, NotAfter: time.Now().Add(30 * 24 * time.Hour)})
	for key, v := range map[string][]byte{
		certmagic.StorageKeys.SiteCert("local", name):       c.ChainPEM,
		certmagic.StorageKeys.SitePrivateKey("local", name): c.KeyPEM,
	} {
		if err := db.PutKey(context.Background(), key, v); err != nil {
			b.Fatal(err)
		}
	}
	st := certs.NewStored(certs.NewStorage(db, certs.StorageOptions{}), []certmagic.Issuer{keyIssuer("local")})
	b.ReportAllocs()
	for b.Loop() {
		if st.Certificate(context.Background(), name, nil) == nil {
			b.Fatal("no certificate")
		}
	}
}
