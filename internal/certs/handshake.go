package certs

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/store"
)

// firstIssuanceWait bounds how long a handshake for a served name waits for
// that name's first certificate while it is being issued, so that a client
// that connects right after a service is created gets the certificate
// rather than an alert. The internal CA takes milliseconds and an ACME CA
// typically a few seconds; a slower issuance fails the handshake as before.
const firstIssuanceWait = 10 * time.Second

// maxFirstIssuanceWaiters bounds the handshakes that wait at once; more
// fail at once, as before the wait existed.
const maxFirstIssuanceWaiters = 64

// GetCertificate returns the certificate for hello.ServerName if that name
// is served (one of the names given to Sync: a wildcard certificate is
// shown only for the names it stands for), for use as
// tls.Config.GetCertificate. It also answers ACME
// TLS-ALPN-01 challenges (ALPN "acme-tls/1"). Any other name, or no name,
// gets an error, which fails the handshake with an alert: a client is
// never shown another name's certificate. It takes no lock, except that a
// served name whose first certificate is being issued waits for it
// (awaitFirst), through the status book.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.getCertificate(hello, true)
}

// CertificateNow is GetCertificate without the wait for a first certificate
// in progress, for a caller that has another certificate to show meanwhile
// (a node started from its snapshot).
func (m *Manager) CertificateNow(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.getCertificate(hello, false)
}

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo, wait bool) (*tls.Certificate, error) {
	if hello.ServerName != "" && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol {
		// Only for a challenge in progress, on this node or, through
		// Storage, on another (challenge.go).
		return m.alpnChallengeCertificate(hello)
	}
	name := hostname.Clean(hello.ServerName)
	if !m.served.Load().allows(name) {
		return nil, fmt.Errorf("certs: no certificate for %q", hello.ServerName)
	}
	cert, err := m.lookup(hello, name)
	if err != nil {
		if !wait {
			return nil, fmt.Errorf("certs: no certificate for %q yet: %w", hello.ServerName, err)
		}
		if c, ok := m.awaitFirst(hello); ok {
			return c, nil
		}
		return nil, fmt.Errorf("certs: no certificate for %q yet: %w", hello.ServerName, err)
	}
	return cert, nil
}

// lookup returns the certificate for a served name from memory, else from
// storage.
//
// certmagic's GetCertificate is asked only for a name whose certificate
// the cache may hold (cachedSet.mayHold): once its cache is 90 % full (at
// the default capacity, whenever the node serves more names than it
// holds), certmagic loads a name it lacks from storage by itself, each key
// a read of the store (its handshake's context is not a certificate
// load), and evicts from its full cache without the Manager's knowledge.
// Such a name goes to loadCertificate, which makes room first and reads
// the store once. A name the set holds but certmagic evicted by itself
// (rare: an obtained certificate entering a full cache) is loaded by
// certmagic, a read per key. name is hello.ServerName, cleaned.
func (m *Manager) lookup(hello *tls.ClientHelloInfo, name string) (*tls.Certificate, error) {
	if m.cached.mayHold(name) {
		cert, err := m.magic.Load().GetCertificate(hello)
		// certmagic answers an empty certificate and no error when its
		// cache is nearly full and storage has none.
		if err == nil && len(cert.Certificate) > 0 {
			return cert, nil
		}
	}
	// Not in memory (see Config.CacheCapacity): from storage (cache.go).
	return m.loadCertificate(hello)
}

// awaitFirst waits, at most firstIssuanceWait, for the first certificate of
// a name that has none yet and that this node is issuing, or began to
// manage less than firstIssuanceWait ago. It gives up at once for a name in
// any other state (a failed issuance; a name pending for longer, as when
// another node holds its lock or the store is down), and when
// maxFirstIssuanceWaiters handshakes wait already: each holds one of the
// edge's handshake slots.
func (m *Manager) awaitFirst(hello *tls.ClientHelloInfo) (*tls.Certificate, bool) {
	name := hostname.Clean(hello.ServerName)
	if !awaitable(m.status.get(name), time.Now()) {
		return nil, false
	}
	select {
	case m.waiters <- struct{}{}:
		defer func() { <-m.waiters }()
	default:
		return nil, false
	}
	deadline := time.NewTimer(firstIssuanceWait)
	defer deadline.Stop()
	var gone <-chan struct{} // the handshake's own end; a hand-built hello has no context
	if ctx := hello.Context(); ctx != nil {
		gone = ctx.Done()
	}
	for {
		st, changed := m.status.watch(name)
		switch {
		case st.Status == store.CertActive:
			// Issued (or loaded): the certificate is in memory now.
			cert, err := m.lookup(hello, name)
			return cert, err == nil
		case st.Status != store.CertPending && st.Status != store.CertIssuing:
			return nil, false
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, false
		case <-gone:
			return nil, false
		case <-m.ctx.Done():
			return nil, false
		}
	}
}

// awaitable reports whether a handshake should wait for s's first
// certificate at now.
func awaitable(s store.CertStatus, now time.Time) bool {
	switch s.Status {
	case store.CertIssuing:
		return s.NotAfter.IsZero() // a first issuance, not a renewal
	case store.CertPending:
		return now.Sub(s.UpdatedAt) < firstIssuanceWait
	}
	return false
}
