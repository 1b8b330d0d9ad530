package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// challenges are the HTTP-01 and TLS-ALPN-01 challenges in progress, by
// identifier: in memory for this node, and in storage for every node
// sharing it, since the CA may reach any of them.
type challenges struct {
	storage certmagic.Storage
	log     *slog.Logger

	mu     sync.Mutex
	local  map[string]acme.Challenge
	alpn   map[string]alpnAnswer      // TLS-ALPN-01 answers made, per identifier
	remote map[string]remoteChallenge // read from storage recently
}

// alpnAnswer is the certificate that answers one TLS-ALPN-01 challenge.
type alpnAnswer struct {
	token string
	cert  *tls.Certificate
}

// remoteChallenge caches a storage read for a moment, so that a CA's
// several validation requests cost one read.
type remoteChallenge struct {
	chal  acme.Challenge
	found bool
	at    time.Time
}

const (
	maxChallenges   = 10_000                 // in memory, per map: a bound, not an expected number
	remoteCacheFor  = 250 * time.Millisecond // coalesces a CA's near-simultaneous validations; short, as a new order brings new tokens
	challengeLookup = 5 * time.Second        // bounds a storage read during a validation request
)

func newChallenges(storage certmagic.Storage, log *slog.Logger) *challenges {
	return &challenges{
		storage: storage,
		log:     log,
		local:   map[string]acme.Challenge{},
		alpn:    map[string]alpnAnswer{},
		remote:  map[string]remoteChallenge{},
	}
}

func challengeKey(identifier string) string {
	return "acme/spine-challenges/" + certmagic.StorageKeys.Safe(identifier) + ".json"
}

// present makes chal answerable by every node: stored first, then in memory.
func (c *challenges) present(ctx context.Context, chal acme.Challenge) error {
	data, err := json.Marshal(chal)
	if err != nil {
		return err
	}
	id := normalize(chal.Identifier.Value)
	if err := c.storage.Store(ctx, challengeKey(id), data); err != nil {
		return fmt.Errorf("saving the challenge for other nodes: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.local) >= maxChallenges {
		return errors.New("too many challenges in progress")
	}
	c.local[id] = chal
	delete(c.alpn, id)
	delete(c.remote, id)
	return nil
}

// cleanUp forgets chal here and in storage.
func (c *challenges) cleanUp(ctx context.Context, chal acme.Challenge) error {
	id := normalize(chal.Identifier.Value)
	c.mu.Lock()
	if cur, ok := c.local[id]; ok && cur.Token == chal.Token {
		delete(c.local, id)
		delete(c.alpn, id)
	}
	c.mu.Unlock()
	if err := c.storage.Delete(ctx, challengeKey(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// get returns the challenge in progress for identifier, on this node or,
// through storage, on another.
func (c *challenges) get(ctx context.Context, identifier string) (acme.Challenge, bool) {
	id := normalize(identifier)
	c.mu.Lock()
	if chal, ok := c.local[id]; ok {
		c.mu.Unlock()
		return chal, true
	}
	if r, ok := c.remote[id]; ok && time.Since(r.at) < remoteCacheFor {
		c.mu.Unlock()
		return r.chal, r.found
	}
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, challengeLookup)
	defer cancel()
	var chal acme.Challenge
	data, err := c.storage.Load(ctx, challengeKey(id))
	found := err == nil && json.Unmarshal(data, &chal) == nil && normalize(chal.Identifier.Value) == id
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("reading a challenge from storage", "identifier", id, "err", err)
		return acme.Challenge{}, false // not cached: the next request tries again
	}
	c.mu.Lock()
	if len(c.remote) >= maxChallenges {
		clear(c.remote)
	}
	c.remote[id] = remoteChallenge{chal: chal, found: found, at: time.Now()}
	c.mu.Unlock()
	return chal, found
}

// alpnCertificate returns the TLS-ALPN-01 answer for identifier, made once
// per challenge.
func (c *challenges) alpnCertificate(ctx context.Context, identifier string) (*tls.Certificate, error) {
	chal, ok := c.get(ctx, identifier)
	if !ok || chal.Type != acme.ChallengeTypeTLSALPN01 {
		return nil, fmt.Errorf("no TLS-ALPN-01 challenge in progress for %q", identifier)
	}
	id := normalize(identifier)
	c.mu.Lock()
	a, ok := c.alpn[id]
	c.mu.Unlock()
	if ok && a.token == chal.Token {
		return a.cert, nil
	}
	cert, err := acmez.TLSALPN01ChallengeCert(chal)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.alpn) >= maxChallenges {
		clear(c.alpn)
	}
	c.alpn[id] = alpnAnswer{token: chal.Token, cert: cert}
	c.mu.Unlock()
	return cert, nil
}

// edgeSolver presents HTTP-01 and TLS-ALPN-01 challenges for the edge to
// answer (Manager.HandleHTTPChallenge, Manager.GetCertificate).
type edgeSolver struct{ c *challenges }

func (s edgeSolver) Present(ctx context.Context, chal acme.Challenge) error {
	return s.c.present(ctx, chal)
}

func (s edgeSolver) CleanUp(ctx context.Context, chal acme.Challenge) error {
	return s.c.cleanUp(context.WithoutCancel(ctx), chal)
}

// HandleHTTPChallenge answers r if it is an ACME HTTP-01 challenge request
// (/.well-known/acme-challenge/<token>) for a challenge in progress on this
// node or, through Storage, on another node. It returns false, having
// written nothing, for any other request.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !certmagic.LooksLikeHTTPChallenge(r) {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = normalize(host)
	if !m.managed.Load().has(host) {
		return false // no order for a name not managed: no storage read either
	}
	chal, ok := m.challenges.get(r.Context(), host)
	if !ok || chal.Type != acme.ChallengeTypeHTTP01 {
		return false
	}
	return certmagic.SolveHTTPChallenge(m.zlog, w, r, chal)
}

// alpnChallengeCertificate answers a TLS-ALPN-01 validation handshake.
func (m *Manager) alpnChallengeCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := normalize(hello.ServerName)
	if !m.managed.Load().has(name) {
		return nil, fmt.Errorf("certs: no challenge for %q", hello.ServerName)
	}
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	cert, err := m.challenges.alpnCertificate(ctx, name)
	if err == nil {
		// As certmagic logs the HTTP-01 answers it serves.
		remote := ""
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr().String()
		}
		m.log.Debug("served TLS-ALPN-01 challenge certificate", "identifier", name, "remote", remote)
	}
	return cert, err
}

// parseLeaf returns the first certificate of a PEM chain.
func parseLeaf(chain []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(chain)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}
