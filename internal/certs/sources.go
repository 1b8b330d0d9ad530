package certs

import (
	"crypto/tls"

	"github.com/mholt/acmez/v3"

	"github.com/spine-platform/spine/internal/hostname"
)

// ServedSource answers the names the Manager serves: the Manager itself,
// or one that stands in for it (fleet.Certificates: the Manager's, else a
// snapshot's). It must be safe for concurrent use.
type ServedSource interface {
	GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error)
	// Cached returns the certificate in memory for host, nil if none; it
	// never reads storage.
	Cached(host string) *tls.Certificate
}

// Sources are the edge's certificate sources, in the order they answer: an
// uploaded certificate (or one just removed, until the Manager has one),
// else a suspended project's name's stored certificate, else Served. A
// TLS-ALPN-01 validation always goes to Served (the Manager answers it).
// Every field is required; set them before first use.
type Sources struct {
	Uploaded  *Uploaded
	Suspended *Suspended
	Manager   *Manager // whose certificate replaces a removed upload (CertificateNow)
	Served    ServedSource
}

// GetCertificate is the edge's tls.Config.GetCertificate.
func (s *Sources) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	host := hostname.Clean(hello.ServerName)
	if !isALPNChallenge(hello) {
		if cert := s.Uploaded.Certificate(host, func() (*tls.Certificate, error) { return s.Manager.CertificateNow(hello) }); cert != nil {
			return cert, nil
		}
	}
	if cert := s.Suspended.Certificate(host); cert != nil {
		return cert, nil
	}
	return s.Served.GetCertificate(hello)
}

// Cached is the certificate in memory for host (a snapshot's source): an
// uploaded one, Served's, else a suspended name's.
func (s *Sources) Cached(host string) *tls.Certificate {
	if cert := s.Uploaded.Cached(host); cert != nil {
		return cert
	}
	if cert := s.Served.Cached(host); cert != nil {
		return cert
	}
	return s.Suspended.Certificate(host)
}

// isALPNChallenge reports a TLS-ALPN-01 validation handshake (RFC 8737).
func isALPNChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol
}
