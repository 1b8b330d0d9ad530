package edge

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
)

// Client certificate modes of a Route (mTLS).
const (
	// ClientAuthRequire: a handshake without a certificate that the route's
	// ClientCA verifies fails, with the TLS alert that says why
	// (certificate_required, or handshake_failure before TLS 1.3;
	// unknown_ca; certificate_expired; bad_certificate).
	ClientAuthRequire = "require"
	// ClientAuthOptional: a certificate is asked for, and every client gets
	// through; the upstream is told whether it had a verified one.
	ClientAuthOptional = "optional"
)

// Headers the upstream of a route with a ClientAuth gets about the
// client's certificate. Every header whose name starts with
// ClientCertPrefix (with '-' or '_', in any case) is removed from every
// request first, on every route, so that no client can set one.
const (
	ClientCertPrefix   = "X-Client-Cert-"
	ClientCertVerified = "X-Client-Cert-Verified" // success, none (no certificate) or failed (optional mode)
	ClientCertSubject  = "X-Client-Cert-Subject"  // the verified leaf's subject, RFC 4514
	ClientCertIssuer   = "X-Client-Cert-Issuer"
	ClientCertDNS      = "X-Client-Cert-Dns"    // its DNS names, comma-separated
	ClientCertURI      = "X-Client-Cert-Uri"    // its URI names, comma-separated
	ClientCertSHA256   = "X-Client-Cert-Sha256" // hex SHA-256 of the leaf (DER)
)

// sessionMTLSTag starts the entry of a session ticket's Extra that names the
// client-certificate setting (mode and CA) the session was made under.
const sessionMTLSTag = "spine-mtls/1:"

// clientAuth is a route's client-certificate setting, ready for handshakes
// and requests. Routes of one table with the same setting share one.
type clientAuth struct {
	mode  string
	pool  *x509.CertPool
	roots [][]byte // DER of each CA certificate
	tag   []byte   // sessionMTLSTag + hex SHA-256 of mode and CA
	cfg   *tls.Config
}

// parseClientCA reads a route's client CA.
func parseClientCA(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, errors.New("client CA: only CERTIFICATE blocks are allowed")
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("client CA: no PEM certificate")
	}
	return out, nil
}

// validateClientAuth checks a route's ClientAuth and ClientCA.
func validateClientAuth(r *Route) error {
	switch r.ClientAuth {
	case "":
		if len(r.ClientCA) > 0 {
			return errors.New("client CA without a client auth mode")
		}
		return nil
	case ClientAuthRequire, ClientAuthOptional:
		_, err := parseClientCA(r.ClientCA)
		return err
	}
	return errors.New("client auth mode must be require or optional")
}

// clientAuthKey identifies a route's client-certificate setting.
func clientAuthKey(r *Route) string { return r.ClientAuth + "\x00" + string(r.ClientCA) }

// newClientAuth builds the handshake configuration of a route with a
// client CA: the listener's, with ClientCAs and ClientAuth set
// (RequireAndVerifyClientCert, or RequestClientCert in optional mode,
// whose certificates are verified per request), and session tickets bound
// to the server name and to this setting, so that a session made for
// another name, or under another setting of this one (no mTLS, optional,
// another CA), is never resumed here: the client does a full handshake
// and is asked for its certificate.
func (s *Server) newClientAuth(r *Route) (*clientAuth, error) {
	certs, err := parseClientCA(r.ClientCA)
	if err != nil {
		return nil, err
	}
	ca := &clientAuth{mode: r.ClientAuth, pool: x509.NewCertPool()}
	for _, c := range certs {
		ca.pool.AddCert(c)
		ca.roots = append(ca.roots, c.Raw)
	}
	sum := sha256.Sum256(append([]byte(r.ClientAuth+"\x00"), r.ClientCA...))
	ca.tag = []byte(sessionMTLSTag + hex.EncodeToString(sum[:]))
	cfg := s.baseTLSConfig()
	cfg.GetCertificate = s.getCertificate
	cfg.ClientCAs = ca.pool
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	if r.ClientAuth == ClientAuthOptional {
		cfg.ClientAuth = tls.RequestClientCert
	}
	// Tickets are encrypted with the fleet's shared keys once there are
	// some (SetSessionTicketKeys), else with this configuration's own.
	keys := func() *tls.Config {
		if t := s.ticketConfig(); t != nil {
			return t
		}
		return cfg
	}
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, []byte(sessionNameTag+hostname.Clean(cs.ServerName)), ca.tag)
		return keys().EncryptTicket(cs, ss)
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := keys().DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return ss, err
		}
		name := []byte(sessionNameTag + hostname.Clean(cs.ServerName))
		var nameOK, tagOK bool
		for _, e := range ss.Extra {
			nameOK = nameOK || bytes.Equal(e, name)
			tagOK = tagOK || bytes.Equal(e, ca.tag)
		}
		if !nameOK || !tagOK {
			return nil, nil // another name's or another setting's session: a full handshake
		}
		return ss, nil
	}
	ca.cfg = cfg
	return ca, nil
}

// clientCert is what a request learned of its client's certificate.
type clientCert struct {
	verified string // "success", "none", "failed"
	leaf     *x509.Certificate
}

// check returns what the connection of r proves under the route's current
// setting. ok is false when the route requires a certificate that the
// connection did not verify under this setting (a connection made before
// the setting changed, or reused for this name): the request is answered
// 421, so that the client opens a new connection and is asked for one.
func (ca *clientAuth) check(r *http.Request, now time.Time) (clientCert, bool) {
	if r.TLS == nil {
		return clientCert{verified: "none"}, ca.mode != ClientAuthRequire
	}
	if ca.mode == ClientAuthRequire {
		for _, chain := range r.TLS.VerifiedChains {
			if len(chain) == 0 || !now.Before(chain[0].NotAfter) {
				continue
			}
			root := chain[len(chain)-1].Raw
			for _, raw := range ca.roots {
				if bytes.Equal(raw, root) {
					return clientCert{verified: "success", leaf: chain[0]}, true
				}
			}
		}
		return clientCert{}, false
	}
	peer := r.TLS.PeerCertificates
	if len(peer) == 0 {
		return clientCert{verified: "none"}, true
	}
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	if _, err := peer[0].Verify(x509.VerifyOptions{Roots: ca.pool, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return clientCert{verified: "failed"}, true
	}
	return clientCert{verified: "success", leaf: peer[0]}, true
}

// set writes c into h for the upstream.
func (c clientCert) set(h http.Header) {
	h[ClientCertVerified] = []string{c.verified}
	if c.leaf == nil {
		return
	}
	h[ClientCertSubject] = []string{headerSafe(c.leaf.Subject.String())}
	h[ClientCertIssuer] = []string{headerSafe(c.leaf.Issuer.String())}
	if len(c.leaf.DNSNames) > 0 {
		h[ClientCertDNS] = []string{headerSafe(strings.Join(c.leaf.DNSNames, ","))}
	}
	if len(c.leaf.URIs) > 0 {
		h[ClientCertURI] = []string{headerSafe(strings.Join(c.uris(), ","))}
	}
	h[ClientCertSHA256] = []string{c.sha256()}
}

func (c clientCert) uris() []string {
	uris := make([]string, len(c.leaf.URIs))
	for i, u := range c.leaf.URIs {
		uris[i] = u.String()
	}
	return uris
}

// names are the leaf's DNS and URI names, comma-separated (access log).
func (c clientCert) names() string {
	return strings.Join(append(append([]string(nil), c.leaf.DNSNames...), c.uris()...), ",")
}

func (c clientCert) sha256() string {
	sum := sha256.Sum256(c.leaf.Raw)
	return hex.EncodeToString(sum[:])
}

// headerSafe percent-encodes what a header value may not hold as it is
// (control characters, DEL, bytes above ASCII) and '%' itself, so that a
// name in a certificate can neither break the request to the upstream nor
// be mistaken for another.
func headerSafe(v string) string {
	clean := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return v
	}
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c >= 0x7f || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// stripClientCertHeaders removes every header a client sent whose name
// starts with ClientCertPrefix, written with '-' or '_' in any case (some
// upstreams read X_Client_Cert_Subject as X-Client-Cert-Subject).
func stripClientCertHeaders(h http.Header) {
	for k := range h {
		if len(k) >= len(ClientCertPrefix) && clientCertName(k) {
			delete(h, k)
		}
	}
}

func clientCertName(k string) bool {
	for i := 0; i < len(ClientCertPrefix); i++ {
		c, p := k[i], ClientCertPrefix[i]
		if c == '_' {
			c = '-'
		}
		if c|0x20 != p|0x20 {
			return false
		}
	}
	return true
}
