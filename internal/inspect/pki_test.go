package inspect

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// issued is a certificate and its key.
type issued struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// certOpts says what to put in a certificate; the zero value is a leaf
// valid from an hour ago for a day.
type certOpts struct {
	cn        string
	names     []string
	ca        bool
	notBefore time.Time
	notAfter  time.Time
	aia       string // IssuingCertificateURL
}

// newCert signs a certificate with parent (nil: self-signed).
func newCert(t testing.TB, o certOpts, parent *issued) *issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(24 * time.Hour)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		DNSNames:     o.names,
	}
	if o.aia != "" {
		tmpl.IssuingCertificateURL = []string{o.aia}
	}
	if o.ca {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	signer, parentCert := crypto.Signer(key), tmpl
	if parent != nil {
		signer, parentCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &issued{cert: c, key: key}
}

// pki is a root and an intermediate, as a CA has them.
type pki struct{ root, inter *issued }

func newPKI(t testing.TB, name string) *pki {
	month := 30 * 24 * time.Hour
	root := newCert(t, certOpts{cn: name + " Root", ca: true, notBefore: time.Now().Add(-12 * month), notAfter: time.Now().Add(120 * month)}, nil)
	inter := newCert(t, certOpts{cn: name + " Intermediate", ca: true, notBefore: time.Now().Add(-6 * month), notAfter: time.Now().Add(6 * month)}, root)
	return &pki{root: root, inter: inter}
}

// leaf issues a leaf certificate from the intermediate.
func (p *pki) leaf(t testing.TB, o certOpts) *issued {
	if o.cn == "" && len(o.names) > 0 {
		o.cn = o.names[0]
	}
	return newCert(t, o, p.inter)
}

// roots is the root as a RootSource.
func (p *pki) roots(name string) []RootSource {
	return []RootSource{{Name: name, Certs: []*x509.Certificate{p.root.cert}}}
}

// tlsCert makes a tls.Certificate that sends chain after leaf.
func tlsCert(leaf *issued, chain ...*issued) tls.Certificate {
	c := tls.Certificate{Certificate: [][]byte{leaf.cert.Raw}, PrivateKey: leaf.key, Leaf: leaf.cert}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.cert.Raw)
	}
	return c
}

// serveTLS serves HTTPS with conf on 127.0.0.1 and returns its address.
// Its handler answers 200 "ok" with the given headers.
func serveTLS(t testing.TB, conf *tls.Config, headers map[string]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if conf.NextProtos == nil {
		conf.NextProtos = []string{"h2", "http/1.1"}
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for k, v := range headers {
				w.Header().Set(k, v)
			}
			w.Write([]byte("ok\n"))
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          discardLog,
	}
	go srv.Serve(tls.NewListener(ln, conf))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// writePEM writes certificates (and, if key is set, a key) to a file in dir.
func writePEM(t testing.TB, dir, name string, key crypto.Signer, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if key != nil {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
