package edge

import (
	"crypto/tls"
	"errors"

	"github.com/spine-platform/spine/internal/hostname"
)

// echState is what the edge knows of Encrypted Client Hello.
type echState struct {
	keys       []tls.EncryptedClientHelloKey // newest first; the first is sent as retry configuration
	publicName string                        // hostname.Clean form
}

// SetECHKeys turns on Encrypted Client Hello (RFC 9849) with keys, newest
// first: a ClientHello encrypted to any of them is decrypted, and the
// handshake continues with its inner ClientHello (its SNI picks the route
// and certificate, as without ECH). A client whose configuration is stale
// or unknown falls back to its outer ClientHello, whose SNI is
// publicName: the edge answers that name with the certificate
// Config.GetCertificate gives for it and sends the newest key's
// configuration to retry with (the first key must have SendAsRetry set).
// publicName gets no route: nothing is served on it but that handshake.
//
// Until the first call ECH is off. Safe for concurrent use; handshakes in
// progress finish with the keys they started with.
func (s *Server) SetECHKeys(keys []tls.EncryptedClientHelloKey, publicName string) error {
	if len(keys) == 0 {
		return errors.New("edge: SetECHKeys needs at least one key")
	}
	name, err := hostname.Normalize(publicName)
	if err != nil {
		return errors.New("edge: SetECHKeys: the public name is not a hostname")
	}
	s.ech.Store(&echState{keys: keys, publicName: name})
	return nil
}

// echKeys is every TLS configuration's GetEncryptedClientHelloKeys.
func (s *Server) echKeys(*tls.ClientHelloInfo) ([]tls.EncryptedClientHelloKey, error) {
	if e := s.ech.Load(); e != nil {
		return e.keys, nil
	}
	return []tls.EncryptedClientHelloKey{}, nil
}

// isECHPublicName reports whether name is the ECH public name.
func (s *Server) isECHPublicName(name string) bool {
	e := s.ech.Load()
	return e != nil && e.publicName == name
}
