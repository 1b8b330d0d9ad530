package certs

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/store"
)

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
	routes := map[string]string{"a.example": "p1", "b.example": "p1"} // routed hostname: project
	upload := store.UploadedCert{Hostname: "a.example", ProjectID: "p1", Chain: a.ChainPEM, Key: a.KeyPEM, SHA256: a.SHA256()}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	var u Uploaded
	hosts := u.Apply(routes, []string{"a.example", "b.example"}, []store.UploadedCert{upload}, log)
	if len(hosts) != 1 || hosts[0] != "b.example" {
		t.Errorf("managed names %v, want b.example only", hosts)
	}
	if got := u.Certificate("a.example", none); got == nil || !got.Leaf.Equal(a.Cert) {
		t.Fatal("the upload is not served")
	}
	// Another project routes the name (its domain moved): not served.
	var v Uploaded
	if hosts := v.Apply(map[string]string{"a.example": "p2"}, []string{"a.example"}, []store.UploadedCert{upload}, log); len(hosts) != 1 {
		t.Errorf("another project's route: managed %v", hosts)
	}
	if v.Certificate("a.example", none) != nil {
		t.Error("served to another project's route")
	}

	// Apply reads the owner of the uploads' hostnames and of the served
	// ones (here both a.example), never of the others.
	if want := u.Concerns(nil); len(want) != 1 || !want["a.example"] {
		t.Errorf("Concerns(nil) with a.example served = %v", want)
	}

	// Removed, still routed: served until the manager has a valid one.
	hosts = u.Apply(routes, []string{"a.example", "b.example"}, nil, log)
	if want := u.Concerns(nil); len(want) != 1 || !want["a.example"] {
		t.Errorf("Concerns(nil) with a.example retiring = %v", want)
	}
	if len(hosts) != 2 {
		t.Errorf("after removal the manager gets %v", hosts)
	}
	if got := u.Certificate("a.example", none); got == nil || !got.Leaf.Equal(a.Cert) {
		t.Fatal("removed upload not served while the manager has nothing")
	}
	if got := u.Certificate("a.example", stale); got == nil {
		t.Fatal("removed upload not served while the manager has an expired certificate")
	}
	if got := u.Certificate("a.example", ready); got != nil {
		t.Fatal("removed upload served over the manager's valid certificate")
	}
	if got := u.Certificate("a.example", none); got != nil {
		t.Fatal("removed upload served again once the manager had one")
	}
	// Removed and unrouted at the same sync: nothing kept.
	u.Apply(routes, nil, []store.UploadedCert{upload}, log)
	u.Apply(map[string]string{"b.example": "p1"}, nil, nil, log)
	if got := u.Certificate("a.example", none); got != nil {
		t.Fatal("an unrouted name keeps its removed upload")
	}
	// An expired retiring certificate is not served.
	exp := store.UploadedCert{Hostname: "a.example", ProjectID: "p1", Chain: expired.ChainPEM, Key: expired.KeyPEM, SHA256: expired.SHA256()}
	u.Apply(routes, nil, []store.UploadedCert{exp}, log)
	u.Apply(routes, nil, nil, log)
	if got := u.Certificate("a.example", none); got != nil {
		t.Fatal("an expired removed upload is served")
	}
}
