package certs

import (
	"crypto/tls"
	"fmt"

	"github.com/mholt/acmez/v3"
)

// GetCertificate returns the certificate for hello.ServerName if that name
// is served (one of the names given to Sync: a wildcard certificate is
// shown only for the names it stands for), for use as
// tls.Config.GetCertificate. It also answers ACME
// TLS-ALPN-01 challenges (ALPN "acme-tls/1"). Any other name, or no name,
// gets an error, which fails the handshake with an alert: a client is
// never shown another name's certificate. It takes no lock.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName != "" && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol {
		// Only for a challenge in progress, on this node or, through
		// Storage, on another (challenge.go).
		return m.alpnChallengeCertificate(hello)
	}
	if !m.served.Load().allows(normalize(hello.ServerName)) {
		return nil, fmt.Errorf("certs: no certificate for %q", hello.ServerName)
	}
	cert, err := m.magic.Load().GetCertificate(hello)
	if err != nil || len(cert.Certificate) == 0 {
		// Not in memory (see Config.CacheCapacity): from storage (cache.go).
		// certmagic answers an empty certificate and no error when its
		// cache is nearly full and storage has none.
		cert, err = m.loadCertificate(hello)
	}
	if err != nil {
		return nil, fmt.Errorf("certs: no certificate for %q yet: %w", hello.ServerName, err)
	}
	return cert, nil
}
