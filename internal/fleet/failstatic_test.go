package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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

// A node started from its snapshot serves a name that neither the manager
// nor the snapshot has with its stored certificate, read once, only while
// LoadStored says to (the store back, its first sync not applied yet); a
// name without one is read again next time; the reads kept are bounded.
func TestCertificatesLoadStored(t *testing.T) {
	own, old, stored := &tls.Certificate{}, &tls.Certificate{}, &tls.Certificate{}
	m := &fakeManager{certs: map[string]*tls.Certificate{"own.test": own}}
	c := NewCertificates(m, map[string]*tls.Certificate{"snap.test": old})
	reads := map[string]int{}
	loading := false
	c.LoadStored(func(ctx context.Context, host string) *tls.Certificate {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a stored read without a deadline")
		}
		reads[host]++
		if host == "none.test" {
			return nil
		}
		return stored
	}, func() bool { return loading })
	get := func(name string) *tls.Certificate {
		cert, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: name})
		if (cert == nil) != (err != nil) {
			t.Fatalf("%s: %p, %v", name, cert, err)
		}
		return cert
	}
	if get("cold.test") != nil || reads["cold.test"] != 0 {
		t.Fatalf("cold.test served, or read, while LoadStored says not to (%d reads)", reads["cold.test"])
	}
	loading = true
	for range 2 {
		if get("cold.test") != stored {
			t.Fatal("cold.test: not its stored certificate")
		}
		if get("none.test") != nil {
			t.Fatal("none.test: a certificate without one stored")
		}
	}
	if reads["cold.test"] != 1 || reads["none.test"] != 2 {
		t.Errorf("reads %v: want cold.test read once, none.test at each handshake", reads)
	}
	if get("own.test") != own || get("snap.test") != old || reads["own.test"]+reads["snap.test"] != 0 {
		t.Errorf("the manager's or the snapshot's certificate read from the store: %v", reads)
	}
	for i := range maxStoredLoads + 1 {
		get(fmt.Sprintf("n%d.test", i))
	}
	if n := len(c.loaded); n > maxStoredLoads || n == 0 {
		t.Errorf("%d stored certificates kept, bound %d", n, maxStoredLoads)
	}
}
