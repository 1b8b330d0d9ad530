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
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
	"golang.org/x/time/rate"

	"github.com/spine-platform/spine/internal/hostname"
)

// challenges are the HTTP-01 and TLS-ALPN-01 challenges in progress, by
// identifier: in memory for this node, and in storage for every node
// sharing it, since the CA may reach any of them.
//
// What a validation request is answered with: the challenge stored last
// for its identifier, by any node, before the request arrived; a challenge
// that was cleaned up is answered for at most remoteCacheFor more. A
// lookup that finds nothing is never remembered, so a challenge another
// node stores just after this node looked (a probe, a CA's request of an
// earlier order, a lookup under way while it was stored) is answered at
// the CA's first request. The name need not be managed here yet: a node
// whose view of the names lags the store's still answers for the node
// that ordered (reads for names not managed here are rate-limited).
type challenges struct {
	storage certmagic.Storage
	log     *slog.Logger
	now     func() time.Time // time.Now; tests stop it
	// unmanaged bounds the storage reads for names this node does not
	// manage, so that requests for random names cost the store little.
	unmanaged *rate.Limiter

	mu    sync.Mutex
	local map[string]acme.Challenge // presented by this node
	alpn  map[string]alpnAnswer     // TLS-ALPN-01 answers made, per identifier
	read  map[string]readChallenge  // HTTP-01 challenges found in storage
}

// alpnAnswer is the certificate that answers one TLS-ALPN-01 challenge.
type alpnAnswer struct {
	token string
	cert  *tls.Certificate
}

// readChallenge is an HTTP-01 challenge found in storage, kept for a
// moment so that a CA's validation requests from several places cost one
// read. It answers only requests for its own token: a token's key
// authorization never changes, so a kept challenge is never a wrong
// answer, only one that outlives its clean-up by at most remoteCacheFor.
type readChallenge struct {
	chal acme.Challenge
	at   time.Time
}

const (
	maxChallenges   = 10_000                 // in memory, per map: a bound, not an expected number
	remoteCacheFor  = 250 * time.Millisecond // how long a challenge read from storage answers its token
	challengeLookup = 5 * time.Second        // bounds a storage read during a validation request
	// unmanagedReadRate and unmanagedReadBurst bound the storage reads per
	// second for challenge requests for names this node does not manage:
	// enough for a CA's validations of a burst of new names that reach a
	// node before its sync has added them (a few requests per name), few
	// enough that requests for random names cost the store little.
	unmanagedReadRate  = 100
	unmanagedReadBurst = 200
)

func newChallenges(storage certmagic.Storage, log *slog.Logger) *challenges {
	return &challenges{
		storage:   storage,
		log:       log,
		now:       time.Now,
		unmanaged: rate.NewLimiter(unmanagedReadRate, unmanagedReadBurst),
		local:     map[string]acme.Challenge{},
		alpn:      map[string]alpnAnswer{},
		read:      map[string]readChallenge{},
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
	id := hostname.Fold(chal.Identifier.Value)
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
	delete(c.read, id)
	return nil
}

// cleanUp forgets chal here and in storage. The stored challenge is left
// alone if it is another order's by now (a node that took the name's
// issuance over after this one lost its lease).
func (c *challenges) cleanUp(ctx context.Context, chal acme.Challenge) error {
	id := hostname.Fold(chal.Identifier.Value)
	c.mu.Lock()
	if cur, ok := c.local[id]; ok && cur.Token == chal.Token {
		delete(c.local, id)
		delete(c.alpn, id)
	}
	c.mu.Unlock()
	if cur, found, err := c.load(ctx, id); err == nil && found && cur.Token != chal.Token {
		return nil
	}
	if err := c.storage.Delete(ctx, challengeKey(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// load reads the challenge stored for id. found is false, with no error,
// if there is none.
func (c *challenges) load(ctx context.Context, id string) (chal acme.Challenge, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, challengeLookup)
	defer cancel()
	data, err := c.storage.Load(ctx, challengeKey(id))
	if errors.Is(err, fs.ErrNotExist) {
		return acme.Challenge{}, false, nil
	}
	if err != nil {
		return acme.Challenge{}, false, err
	}
	if json.Unmarshal(data, &chal) != nil || hostname.Fold(chal.Identifier.Value) != id {
		return acme.Challenge{}, false, nil
	}
	return chal, true, nil
}

// lookup reads the challenge stored for id for a validation request. For
// a name this node does not manage, it reads only if id is a hostname (no
// other name is ever managed) and within the rate limit.
func (c *challenges) lookup(ctx context.Context, id string, managed bool) (acme.Challenge, bool, error) {
	if !managed && (hostname.Check(id) != nil || !c.unmanaged.AllowN(c.now(), 1)) {
		return acme.Challenge{}, false, nil
	}
	chal, found, err := c.load(ctx, id)
	if err != nil {
		c.log.Warn("reading a challenge from storage", "identifier", id, "err", err)
	}
	return chal, found, err
}

// httpChallenge returns the HTTP-01 challenge in progress for identifier
// with token, on this node or, through storage, on another.
func (c *challenges) httpChallenge(ctx context.Context, identifier, token string, managed bool) (acme.Challenge, bool) {
	id := hostname.Fold(identifier)
	c.mu.Lock()
	if chal, ok := c.local[id]; ok && chal.Token == token {
		c.mu.Unlock()
		return chal, true
	}
	if r, ok := c.read[id]; ok && r.chal.Token == token && c.now().Sub(r.at) < remoteCacheFor {
		c.mu.Unlock()
		return r.chal, true
	}
	c.mu.Unlock()

	chal, found, _ := c.lookup(ctx, id, managed)
	if !found || chal.Type != acme.ChallengeTypeHTTP01 || chal.Token != token {
		return acme.Challenge{}, false
	}
	c.mu.Lock()
	if len(c.read) >= maxChallenges {
		clear(c.read)
	}
	c.read[id] = readChallenge{chal: chal, at: c.now()}
	c.mu.Unlock()
	return chal, true
}

// alpnCertificate returns the TLS-ALPN-01 answer for identifier, made once
// per challenge. A TLS-ALPN-01 request does not name its token, so the
// challenge is read from storage every time (a handshake or two per
// validation); this node's own challenge answers only if storage cannot
// be read.
func (c *challenges) alpnCertificate(ctx context.Context, identifier string, managed bool) (*tls.Certificate, error) {
	id := hostname.Fold(identifier)
	chal, ok, err := c.lookup(ctx, id, managed)
	if err != nil {
		c.mu.Lock()
		chal, ok = c.local[id]
		c.mu.Unlock()
	}
	if !ok || chal.Type != acme.ChallengeTypeTLSALPN01 {
		return nil, fmt.Errorf("no TLS-ALPN-01 challenge in progress for %q", identifier)
	}
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
	host := hostname.Clean(r.Host)
	token := strings.TrimPrefix(r.URL.Path, httpChallengePath)
	if host == "" || token == "" || strings.Contains(token, "/") {
		return false
	}
	chal, ok := m.challenges.httpChallenge(r.Context(), host, token, m.managed.Load().has(host))
	if !ok {
		return false
	}
	return certmagic.SolveHTTPChallenge(m.zlog, w, r, chal)
}

// httpChallengePath is where HTTP-01 tokens are asked for (RFC 8555 8.3).
const httpChallengePath = "/.well-known/acme-challenge/"

// alpnChallengeCertificate answers a TLS-ALPN-01 validation handshake.
func (m *Manager) alpnChallengeCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := hostname.Clean(hello.ServerName)
	if name == "" {
		return nil, errors.New("certs: no challenge without a server name")
	}
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	cert, err := m.challenges.alpnCertificate(ctx, name, m.managed.Load().has(name))
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
