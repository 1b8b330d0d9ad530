package certs

import (
	"net/http"

	"github.com/caddyserver/certmagic"
)

// httpChallenger is an issuer that can answer ACME HTTP-01 challenges,
// such as *certmagic.ACMEIssuer.
type httpChallenger interface {
	HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool
}

// HandleHTTPChallenge answers r if it is an ACME HTTP-01 challenge request
// (/.well-known/acme-challenge/...) that an ACME issuer of the manager, or
// of another node sharing its Storage, is waiting for. It returns false,
// having written nothing, for any other request.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if len(m.challengers) == 0 || !certmagic.LooksLikeHTTPChallenge(r) {
		return false
	}
	for _, c := range m.challengers {
		if c.HandleHTTPChallenge(w, r) {
			return true
		}
	}
	return false
}
