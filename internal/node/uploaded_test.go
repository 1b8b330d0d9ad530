package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/poll"
	"github.com/spine-platform/spine/internal/store"
)

// handshake does a TLS handshake with SNI host on the node's HTTPS port,
// verifying the chain against roots, and returns the chain served.
func handshake(t *testing.T, n *Node, host string, roots *x509.CertPool) ([]*x509.Certificate, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", n.HTTPSAddr(), &tls.Config{ServerName: host, RootCAs: roots, NextProtos: []string{"h2"}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates, nil
}

// TestUploadedCertificateServed: an uploaded certificate is served, with
// its intermediate, instead of the managed one, which the manager no
// longer manages; `cert list` shows it; removing it falls back to a
// managed certificate, and every handshake in between succeeds.
func TestUploadedCertificateServed(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "sqlite:"+filepath.Join(dir, "spine.db"))
	c := adminClient(t, n, dir)
	ctx := context.Background()
	pki := pkitest.NewRoot("Customer Root")
	issuing := pki.Intermediate("Customer Issuing CA")
	spineRoots := x509.NewCertPool()
	spineRoots.AddCert(n.CA().Root())

	// Uploaded before the service exists: the name is never managed.
	const host = "byo.localhost"
	leaf := issuing.Issue(pkitest.Leaf{CommonName: host, DNSNames: []string{host}})
	up, err := c.UploadCertificate(ctx, host, client.CertificateUpload{Certificate: string(leaf.ChainPEM), PrivateKey: string(leaf.KeyPEM), Root: string(pki.RootPEM())})
	if err != nil {
		t.Fatal(err)
	}
	if up.SHA256 != leaf.SHA256() || up.Issuer != "Customer Issuing CA" {
		t.Errorf("upload answer %+v", up)
	}
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "byo", Upstreams: []string{upstream(t, func(w http.ResponseWriter, r *http.Request) {})}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the uploaded certificate served", waitTimeout, func() error {
		chain, err := handshake(t, n, host, pki.Pool())
		if err != nil {
			return err
		}
		if len(chain) != 2 || !chain[0].Equal(leaf.Cert) || !chain[1].Equal(issuing.Cert) {
			return fmt.Errorf("served chain %v, want the leaf and its intermediate", subjects(chain))
		}
		return nil
	})
	// The metrics show the uploaded certificate's validity.
	key := `spine_certificate_not_after_timestamp_seconds{hostname="` + host + `",issuer="Customer Issuing CA",project="default",service="byo"}`
	poll.Until(t, "the uploaded certificate in /metrics", waitTimeout, func() error {
		m := scrape(t, n.APIAddr())
		if m[key] != float64(leaf.Cert.NotAfter.Unix()) {
			return fmt.Errorf("%s = %v; have %v", key, m[key], withPrefix(m, "spine_certificate_not_after"))
		}
		if r := m[`spine_certificate_ready{hostname="`+host+`",project="default",service="byo"}`]; r != 1 {
			return fmt.Errorf("ready = %v", r)
		}
		return nil
	})
	hello := &tls.ClientHelloInfo{ServerName: host}
	if _, err := n.certs.CertificateNow(hello); err == nil {
		t.Error("the certificate manager manages a name with an uploaded certificate")
	}
	certs, err := c.Certificates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cs := range certs {
		if cs.Hostname == host {
			found = true
			if cs.Status != "uploaded" || cs.Service != "byo" || cs.Issuer != "Customer Issuing CA" || cs.NotAfter == nil ||
				!cs.NotAfter.Equal(leaf.Cert.NotAfter) || cs.RenewAfter != nil {
				t.Errorf("cert list: %+v", cs)
			}
		}
	}
	if !found {
		t.Errorf("cert list lacks %s: %+v", host, certs)
	}

	// Removed: each handshake gets the uploaded certificate or, once
	// issued, the managed one; never a failure.
	if err := c.RemoveCertificate(ctx, host); err != nil {
		t.Fatal(err)
	}
	both := pki.Pool()
	both.AddCert(n.CA().Root())
	poll.Until(t, "a managed certificate after the removal", waitTimeout, func() error {
		chain, err := handshake(t, n, host, both)
		if err != nil {
			return poll.Stop(fmt.Errorf("a handshake after the removal failed: %w", err))
		}
		if chain[0].Issuer.CommonName == "Customer Issuing CA" {
			return errors.New("the removed upload is still served")
		}
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: spineRoots, Intermediates: inter, DNSName: host}); err != nil {
			return poll.Stop(fmt.Errorf("after the removal: %w", err))
		}
		return nil
	})
	if _, err := n.certs.CertificateNow(hello); err != nil {
		t.Errorf("the manager has no certificate once it is served: %v", err)
	}
}

func subjects(chain []*x509.Certificate) []string {
	var out []string
	for _, c := range chain {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// TestUploadedRetiring: a removed upload is served while the hostname is
// routed and the manager has no valid certificate; then dropped.
func TestUploadedRetiring(t *testing.T) {
	pki := pkitest.NewRoot("Retiring Root")
	a := pki.Issue(pkitest.Leaf{DNSNames: []string{"a.example"}})
	managed := pki.Issue(pkitest.Leaf{DNSNames: []string{"a.example"}})
	expired := pki.Issue(pkitest.Leaf{DNSNames: []string{"a.example"}, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	mc := managed.TLS()
	ec := expired.TLS()
	none := func() (*tls.Certificate, error) { return nil, errors.New("not yet") }
	stale := func() (*tls.Certificate, error) { return &ec, nil }
	ready := func() (*tls.Certificate, error) { return &mc, nil }
	routes := []edge.Route{{Host: "a.example", Project: "p1"}, {Host: "b.example", Project: "p1"}}
	upload := store.UploadedCert{Hostname: "a.example", ProjectID: "p1", Chain: a.ChainPEM, Key: a.KeyPEM, SHA256: a.SHA256()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	var u uploadedCerts
	hosts := u.apply(routes, []string{"a.example", "b.example"}, []store.UploadedCert{upload}, log)
	if len(hosts) != 1 || hosts[0] != "b.example" {
		t.Errorf("managed names %v, want b.example only", hosts)
	}
	if got := u.certificate("a.example", none); got == nil || !got.Leaf.Equal(a.Cert) {
		t.Fatal("the upload is not served")
	}
	// Another project routes the name (its domain moved): not served.
	var v uploadedCerts
	if hosts := v.apply([]edge.Route{{Host: "a.example", Project: "p2"}}, []string{"a.example"}, []store.UploadedCert{upload}, log); len(hosts) != 1 {
		t.Errorf("another project's route: managed %v", hosts)
	}
	if v.certificate("a.example", none) != nil {
		t.Error("served to another project's route")
	}

	// Removed, still routed: served until the manager has a valid one.
	hosts = u.apply(routes, []string{"a.example", "b.example"}, nil, log)
	if len(hosts) != 2 {
		t.Errorf("after removal the manager gets %v", hosts)
	}
	if got := u.certificate("a.example", none); got == nil || !got.Leaf.Equal(a.Cert) {
		t.Fatal("removed upload not served while the manager has nothing")
	}
	if got := u.certificate("a.example", stale); got == nil {
		t.Fatal("removed upload not served while the manager has an expired certificate")
	}
	if got := u.certificate("a.example", ready); got != nil {
		t.Fatal("removed upload served over the manager's valid certificate")
	}
	if got := u.certificate("a.example", none); got != nil {
		t.Fatal("removed upload served again once the manager had one")
	}
	// Removed and unrouted at the same sync: nothing kept.
	u.apply(routes, nil, []store.UploadedCert{upload}, log)
	u.apply(routes[1:], nil, nil, log)
	if got := u.certificate("a.example", none); got != nil {
		t.Fatal("an unrouted name keeps its removed upload")
	}
	// An expired retiring certificate is not served.
	exp := store.UploadedCert{Hostname: "a.example", ProjectID: "p1", Chain: expired.ChainPEM, Key: expired.KeyPEM, SHA256: expired.SHA256()}
	u.apply(routes, nil, []store.UploadedCert{exp}, log)
	u.apply(routes, nil, nil, log)
	if got := u.certificate("a.example", none); got != nil {
		t.Fatal("an expired removed upload is served")
	}
}

// A service created with a client CA over the API asks for client
// certificates on a real node: none is refused with certificate_required,
// a verified one reaches the upstream named in headers.
func TestServiceClientCertificates(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "sqlite:"+filepath.Join(dir, "spine.db"))
	c := adminClient(t, n, dir)
	ctx := context.Background()
	clients := pkitest.NewRoot("Node Client CA")
	leaf := clients.Issue(pkitest.Leaf{CommonName: "robot", Client: true})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s|%s", r.Header.Get("X-Client-Cert-Verified"), r.Header.Get("X-Client-Cert-Subject"))
	})
	if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "internal", Upstreams: []string{up}, ClientCA: string(clients.RootPEM())}); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(n.CA().Root())
	get := func(cert *tls.Certificate) (string, error) {
		cfg := &tls.Config{ServerName: "internal.localhost", RootCAs: roots}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, n.HTTPSAddr())
			}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://internal.localhost/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), nil
	}
	cert := leaf.TLS()
	poll.Until(t, "the service with its client certificate", waitTimeout, func() error {
		body, err := get(&cert)
		if err != nil {
			return err
		}
		if body != "success|CN=robot,O=pkitest" {
			return fmt.Errorf("upstream saw %q", body)
		}
		return nil
	})
	if _, err := get(nil); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("without a certificate: %v, want certificate required", err)
	}
	svc, err := c.Service(ctx, "internal")
	if err != nil || svc.ClientAuth != "require" || svc.ClientCA == "" {
		t.Errorf("the service shows %q %v", svc.ClientAuth, err)
	}
}
