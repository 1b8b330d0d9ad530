// The edge's certificate sources, in order.

package node

import (
	"crypto/tls"

	"github.com/spine-platform/spine/internal/hostname"
)

// getCertificate is the edge's certificate source: an uploaded
// certificate (or one just removed, until the manager has one), else a
// suspended name's stored certificate, else the manager's, else the
// snapshot's. A TLS-ALPN-01 validation always goes to the manager.
func (n *Node) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	host := hostname.Clean(hello.ServerName)
	if !isALPNChallenge(hello) {
		if cert := n.fleet.uploaded.Certificate(host, func() (*tls.Certificate, error) { return n.certs.CertificateNow(hello) }); cert != nil {
			return cert, nil
		}
	}
	if cert := n.fleet.suspended.Certificate(host); cert != nil {
		return cert, nil
	}
	return n.fleet.certs.GetCertificate(hello)
}

// isALPNChallenge reports a TLS-ALPN-01 validation handshake (RFC 8737).
func isALPNChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == "acme-tls/1"
}

// cachedCertificate is the certificate in memory for host (the snapshot's
// source): an uploaded one, the manager's or the snapshot's, else a
// suspended name's.
func (n *Node) cachedCertificate(host string) *tls.Certificate {
	if cert := n.fleet.uploaded.Cached(host); cert != nil {
		return cert
	}
	if cert := n.fleet.certs.Cached(host); cert != nil {
		return cert
	}
	return n.fleet.suspended.Certificate(host)
}
