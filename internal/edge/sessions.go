package edge

import (
	"bytes"
	"crypto/tls"

	"github.com/spine-platform/spine/internal/hostname"
)

// sessionNameTag starts the entry of a session ticket's Extra that names the
// server name the session was made for.
const sessionNameTag = "spine-sni/1:"

// bindSessionsToName makes cfg's session tickets valid only for the server
// name they were issued for. crypto/tls resumes any ticket its keys decrypt,
// whatever the SNI, so without this a client holding a ticket from host A
// resumes a session on SNI B without B's certificate ever being presented:
// the handshake proves nothing about B, yet the edge serves B on it. A
// ticket offered for another name is ignored, and the client gets a full
// handshake with that name's certificate. cfg must hold the ticket keys
// (the configuration GetConfigForClient returns, or the listener's).
func bindSessionsToName(cfg *tls.Config) {
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, []byte(sessionNameTag+hostname.Clean(cs.ServerName)))
		return cfg.EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := cfg.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return ss, err
		}
		want := []byte(sessionNameTag + hostname.Clean(cs.ServerName))
		for _, e := range ss.Extra {
			if bytes.Equal(e, want) {
				return ss, nil
			}
		}
		return nil, nil // another name's session: do a full handshake
	}
}
