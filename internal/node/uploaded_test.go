package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/poll"
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
