package certs

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/mholt/acmez/v3"

	"github.com/spine-platform/spine/internal/store"
)

// firstIssuanceWait bounds how long a handshake for a served name waits for
// that name's first certificate while it is being issued, so that a client
// that connects right after a service is created gets the certificate
// rather than an alert. The internal CA takes milliseconds and an ACME CA
// typically a few seconds; a slower issuance fails the handshake as before.
const firstIssuanceWait = 10 * time.Second

// GetCertificate returns the certificate for hello.ServerName if that name
// is served (one of the names given to Sync: a wildcard certificate is
// shown only for the names it stands for), for use as
// tls.Config.GetCertificate. It also answers ACME
// TLS-ALPN-01 challenges (ALPN "acme-tls/1"). Any other name, or no name,
// gets an error, which fails the handshake with an alert: a client is
// never shown another name's certificate. It takes no lock. A served name
// whose first certificate is being issued waits for it (firstIssuanceWait).
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.getCertificate(hello, true)
}

// CertificateNow is GetCertificate without the wait for a first certificate
// in progress, for a caller that has another certificate to show meanwhile
// (a node started from its snapshot).
func (m *Manager) CertificateNow(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.getCertificate(hello, false)
}

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo, wait bool) (*tls.Certificate, error) {
	if hello.ServerName != "" && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol {
		// Only for a challenge in progress, on this node or, through
		// Storage, on another (challenge.go).
		return m.alpnChallengeCertificate(hello)
	}
	if !m.served.Load().allows(normalize(hello.ServerName)) {
		return nil, fmt.Errorf("certs: no certificate for %q", hello.ServerName)
	}
	cert, err := m.lookup(hello)
	if err != nil {
		if !wait {
			return nil, fmt.Errorf("certs: no certificate for %q yet: %w", hello.ServerName, err)
		}
		if c, ok := m.awaitFirst(hello); ok {
			return c, nil
		}
		return nil, fmt.Errorf("certs: no certificate for %q yet: %w", hello.ServerName, err)
	}
	return cert, nil
}

// lookup returns the certificate for a served name from memory, else from
// storage.
func (m *Manager) lookup(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := m.magic.Load().GetCertificate(hello)
	if err != nil || len(cert.Certificate) == 0 {
		// Not in memory (see Config.CacheCapacity): from storage (cache.go).
		// certmagic answers an empty certificate and no error when its
		// cache is nearly full and storage has none.
		cert, err = m.loadCertificate(hello)
	}
	return cert, err
}

// awaitFirst waits, at most firstIssuanceWait, for the first certificate of
// a name that has none yet and is pending or being issued. It gives up at
// once for a name in any other state (a failed issuance, a name that had a
// certificate), so a handshake never waits on a CA that already refused.
func (m *Manager) awaitFirst(hello *tls.ClientHelloInfo) (*tls.Certificate, bool) {
	name := normalize(hello.ServerName)
	if st := m.status.get(name); st.Status != store.CertPending && st.Status != store.CertIssuing {
		return nil, false
	}
	deadline := time.NewTimer(firstIssuanceWait)
	defer deadline.Stop()
	var gone <-chan struct{} // the handshake's own end; a hand-built hello has no context
	if ctx := hello.Context(); ctx != nil {
		gone = ctx.Done()
	}
	for {
		st, changed := m.status.watch(name)
		switch st.Status {
		case store.CertPending, store.CertIssuing, store.CertActive:
		default:
			return nil, false
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, false
		case <-gone:
			return nil, false
		case <-m.ctx.Done():
			return nil, false
		}
		if cert, err := m.lookup(hello); err == nil {
			return cert, true
		}
	}
}
