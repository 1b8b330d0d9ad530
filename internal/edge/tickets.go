package edge

import (
	"crypto/tls"
	"errors"
)

// SetSessionTicketKeys sets the keys that encrypt and decrypt TLS session
// tickets: the first encrypts new tickets, every key decrypts. Nodes that set
// the same keys resume each other's sessions, so a client that reconnects to
// another node of a fleet skips the full handshake. Keep a retired key in the
// list for as long as tickets it encrypted should still be accepted.
//
// Until the first call, each Server uses keys of its own, which
// crypto/tls generates and rotates. Safe for concurrent use; handshakes in
// progress finish with the keys they started with.
func (s *Server) SetSessionTicketKeys(keys [][32]byte) error {
	if len(keys) == 0 {
		return errors.New("edge: SetSessionTicketKeys needs at least one key")
	}
	cfg := s.ticketCfg.Load()
	if cfg == nil {
		// One configuration for served names, made once, whose keys later
		// calls replace in place (tls.Config guards them with its own lock).
		cfg = s.baseTLSConfig()
		cfg.GetCertificate = s.getCertificate
		bindSessionsToName(cfg)
		if !s.ticketCfg.CompareAndSwap(nil, cfg) {
			cfg = s.ticketCfg.Load()
		}
	}
	cfg.SetSessionTicketKeys(keys)
	return nil
}

// ticketConfig is the configuration of a handshake for a served name: nil
// (the listener's own) until SetSessionTicketKeys, then the one holding the
// shared keys. crypto/tls takes ticket keys from the configuration that
// GetConfigForClient returns.
func (s *Server) ticketConfig() *tls.Config {
	return s.ticketCfg.Load()
}
