package fleet

import (
	"crypto/tls"
	"errors"
	"testing"
)

// fakeManager has certificates for some names; GetCertificate records that
// it was asked (it is the call that may wait for an issuance).
type fakeManager struct {
	certs  map[string]*tls.Certificate
	waited []string
}

func (m *fakeManager) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.waited = append(m.waited, h.ServerName)
	return m.CertificateNow(h)
}
func (m *fakeManager) CertificateNow(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := m.certs[h.ServerName]; c != nil {
		return c, nil
	}
	return nil, errors.New("no certificate")
}
func (m *fakeManager) CachedCertificate(name string) *tls.Certificate { return m.certs[name] }

// The manager's certificate comes first; the snapshot's answers a name the
// manager has none for, without waiting for the manager.
func TestCertificatesFallBackToTheSnapshot(t *testing.T) {
	own, old := &tls.Certificate{}, &tls.Certificate{}
	m := &fakeManager{certs: map[string]*tls.Certificate{"both.test": own, "new.test": own}}
	c := NewCertificates(m, map[string]*tls.Certificate{"both.test": old, "snap.test": old})
	for _, tc := range []struct {
		name string
		want *tls.Certificate
		wait bool
	}{
		{"both.test", own, false},
		{"snap.test", old, false},
		{"new.test", own, true},
	} {
		m.waited = nil
		got, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: tc.name})
		if err != nil || got != tc.want {
			t.Errorf("%s: %p, %v; want %p", tc.name, got, err, tc.want)
		}
		if waited := len(m.waited) > 0; waited != tc.wait {
			t.Errorf("%s: asked the manager to wait: %v, want %v", tc.name, waited, tc.wait)
		}
		if c.Cached(tc.name) != tc.want {
			t.Errorf("%s: Cached is not the certificate served", tc.name)
		}
	}
	if _, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: "none.test"}); err == nil {
		t.Error("a name neither has got a certificate")
	}
}
