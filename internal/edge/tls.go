package edge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
)

// acmeTLSProto is the ALPN protocol of ACME TLS-ALPN-01 challenges (RFC 8737).
const acmeTLSProto = "acme-tls/1"

var errNoCertificateSource = errors.New("edge: no certificate source configured")

// TLSConfig returns the TLS configuration of the HTTPS listener: TLS 1.2 and
// up, ECDHE with AEAD ciphers only, hybrid post-quantum key exchange first,
// ALPN h2 and http/1.1 (and acme-tls/1 for challenges), session tickets on.
// Only names in the route table get a certificate; any other name is refused
// with an unrecognized_name alert, so a client never sees another name's
// certificate. Each call returns a new Config.
func (s *Server) TLSConfig() *tls.Config {
	cfg := s.baseTLSConfig()
	cfg.GetCertificate = s.getCertificate
	bindSessionsToName(cfg)
	// A name outside the table gets a configuration with no certificate at
	// all: crypto/tls then answers with the unrecognized_name alert, which
	// tells the client more than the internal_error an error from
	// GetCertificate would.
	reject := s.baseTLSConfig()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		name := hostname.Clean(hello.ServerName)
		if isACMEChallenge(hello) {
			return s.ticketConfig(), nil // nil until SetSessionTicketKeys
		}
		if rt, ok := s.route(hello.Context(), name); ok {
			if rt.mtls != nil {
				return rt.mtls.cfg, nil // asks for a client certificate (clientauth.go)
			}
			return s.ticketConfig(), nil
		}
		if s.isECHPublicName(name) {
			return s.ticketConfig(), nil
		}
		return reject, nil
	}
	return cfg
}

func (s *Server) baseTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.2 only; TLS 1.3 suites are all AEAD and not configurable.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519, tls.CurveP256},
		NextProtos:       []string{"h2", "http/1.1", acmeTLSProto},
		// crypto/tls decrypts an ECH ClientHello with the listener's
		// configuration, and sends retry configurations from the one
		// GetConfigForClient returned: each has the keys.
		GetEncryptedClientHelloKeys: s.echKeys,
	}
}

// getCertificate hands the handshake to Config.GetCertificate if the name is
// served (or the handshake is an ACME challenge), and refuses it otherwise.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.cfg.GetCertificate == nil {
		return nil, errNoCertificateSource
	}
	if isACMEChallenge(hello) {
		return s.cfg.GetCertificate(hello)
	}
	name := hostname.Clean(hello.ServerName)
	if _, ok := s.route(hello.Context(), name); !ok && !s.isECHPublicName(name) {
		return nil, fmt.Errorf("edge: no route for server name %q", quoteHost(name))
	}
	if cert := s.warmCertificate(name); cert != nil {
		return cert, nil
	}
	now := s.cfg.clock()
	if c, ok := s.certs.Load(name); ok && now < c.(*cachedCert).until {
		return c.(*cachedCert).cert, nil
	}
	if name != hello.ServerName {
		h := *hello
		h.ServerName = name
		hello = &h
	}
	cert, err := s.cfg.GetCertificate(hello)
	if err == nil && cert != nil {
		s.certs.Store(name, &cachedCert{cert: cert, until: now + int64(certCacheTTL)})
		if last := s.certsSwept.Load(); now-last >= int64(certSweepEvery) && s.certsSwept.CompareAndSwap(last, now) {
			s.sweepCerts(now)
		}
	}
	return cert, err
}

// sweepCerts deletes the entries of s.certs that ran out by now.
func (s *Server) sweepCerts(now int64) {
	s.certs.Range(func(name, c any) bool {
		if now >= c.(*cachedCert).until {
			s.certs.CompareAndDelete(name, c)
		}
		return true
	})
}

// certCacheTTL is how long the edge serves the certificate
// Config.GetCertificate returned for a name without asking again: certmagic's
// lookup allocates and takes a deeper stack, which the handshake goroutine
// must grow to hold (BENCHMARKS.md, "Handshake", has the figures).
//
// The contract of Server.certs: a handshake gets the certificate that
// GetCertificate returned for its name at most certCacheTTL ago, so a
// renewed certificate is served at most that late. Only names of the route
// table are kept, SetRoutes forgets every entry and UpdateRoutes those of
// the names it changes; the table is checked first, so a name that lost
// its route gets no certificate whatever the cache holds. TLS-ALPN-01
// handshakes are never answered from it. Bound: the names whose
// certificate was asked for in the last certCacheTTL + certSweepEvery,
// as a store sweeps out the entries that ran out at most every
// certSweepEvery. (Before the sweep, an entry stayed until the next
// SetRoutes, holding its certificate after the certificate cache had let
// it go: every name handshaked since, 5 KB each.)
const certCacheTTL = 100 * time.Millisecond

// certSweepEvery is how often the entries of Server.certs that ran out are
// deleted (by the handshake that stores one, in passing).
const certSweepEvery = time.Second

// cachedCert is an entry of Server.certs.
type cachedCert struct {
	cert  *tls.Certificate
	until int64 // Config.clock
}

// isACMEChallenge reports a TLS-ALPN-01 validation handshake: the client
// offers acme-tls/1 and nothing else.
func isACMEChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLSProto
}
