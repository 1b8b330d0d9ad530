// Suspended projects: their services answer 503 at the edge, over HTTPS
// with the certificate they had, which is no longer renewed.

package node

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/store"
)

// suspendedLoadTimeout bounds the storage reads of one suspended name's
// certificate.
const suspendedLoadTimeout = 5 * time.Second

// suspendedCerts serves the certificates of suspended projects'
// hostnames. The certificate manager stops managing those names (so
// nothing renews them); a handshake for one gets its last certificate,
// read from storage as certmagic stored it (any of the node's issuers;
// the name's own or its wildcard's), once per name: the cache holds at
// most one certificate per suspended hostname and is emptied whenever the
// set of suspended hostnames changes. An expired certificate is not
// served.
type suspendedCerts struct {
	storage    certmagic.Storage
	issuerKeys []string

	hosts atomic.Pointer[map[string]bool] // suspended hostnames, swapped whole by set

	mu    sync.Mutex
	certs map[string]*tls.Certificate // by hostname; nil: looked up, none
}

// set makes hosts the suspended hostnames.
func (s *suspendedCerts) set(hosts map[string]bool) {
	old := s.hosts.Load()
	if old != nil && len(*old) == len(hosts) {
		same := true
		for h := range hosts {
			if !(*old)[h] {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	s.hosts.Store(&hosts)
	s.mu.Lock()
	s.certs = nil
	s.mu.Unlock()
}

// has reports whether host belongs to a suspended project.
func (s *suspendedCerts) has(host string) bool {
	h := s.hosts.Load()
	return h != nil && (*h)[host]
}

// certificate returns the stored certificate of a suspended hostname, or nil.
func (s *suspendedCerts) certificate(host string) *tls.Certificate {
	if !s.has(host) {
		return nil
	}
	s.mu.Lock()
	cert, ok := s.certs[host]
	s.mu.Unlock()
	if !ok {
		cert = s.load(host)
		s.mu.Lock()
		if s.certs == nil {
			s.certs = map[string]*tls.Certificate{}
		}
		s.certs[host] = cert
		s.mu.Unlock()
	}
	if cert == nil || cert.Leaf == nil || time.Now().After(cert.Leaf.NotAfter) {
		return nil
	}
	return cert
}

// load reads the newest stored certificate for host: its own, or its
// parent domain's wildcard.
func (s *suspendedCerts) load(host string) *tls.Certificate {
	ctx, cancel := context.WithTimeout(context.Background(), suspendedLoadTimeout)
	defer cancel()
	names := []string{host}
	if _, parent, ok := strings.Cut(host, "."); ok && strings.Contains(parent, ".") {
		names = append(names, "*."+parent)
	}
	var best *tls.Certificate
	for _, name := range names {
		for _, issuer := range s.issuerKeys {
			chain, err := s.storage.Load(ctx, certmagic.StorageKeys.SiteCert(issuer, name))
			if err != nil {
				continue
			}
			key, err := s.storage.Load(ctx, certmagic.StorageKeys.SitePrivateKey(issuer, name))
			if err != nil {
				continue
			}
			pair, err := tls.X509KeyPair(chain, key)
			if err != nil {
				continue
			}
			if pair.Leaf == nil {
				if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
					continue
				}
			}
			if best == nil || pair.Leaf.NotAfter.After(best.Leaf.NotAfter) {
				best = &pair
			}
		}
	}
	return best
}

// suspendRoutes marks the routes of suspended projects (503 page, no
// upstream) and leaves their hostnames out of those whose certificates are
// managed (so not renewed). It takes serving.Routes' answer whole.
func suspendRoutes(routes []edge.Route, hosts []string) func(suspended map[string]bool) ([]edge.Route, []string) {
	return func(suspended map[string]bool) ([]edge.Route, []string) {
		if len(suspended) == 0 {
			return routes, hosts
		}
		managed := hosts[:0:0]
		for i := range routes {
			if suspended[routes[i].Project] {
				routes[i].Suspended = true
				continue
			}
			managed = append(managed, routes[i].Host)
		}
		return routes, managed
	}
}

// suspendedHosts returns the hostnames routed to the suspended page.
func suspendedHosts(routes []edge.Route) map[string]bool {
	out := map[string]bool{}
	for _, r := range routes {
		if r.Suspended {
			out[r.Host] = true
		}
	}
	return out
}

// withSuspended folds the suspended projects into a sync's fingerprint, so
// that a suspension or a resumption alone is applied.
func withSuspended(sum [sha256.Size]byte, suspended map[string]bool) [sha256.Size]byte {
	if len(suspended) == 0 {
		return sum
	}
	h := sha256.New()
	h.Write(sum[:])
	for _, id := range slices.Sorted(maps.Keys(suspended)) {
		h.Write([]byte(id))
		h.Write([]byte{0})
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// getCertificate is the edge's certificate source: an uploaded
// certificate (or one just removed, until the manager has one), else a
// suspended name's stored certificate, else the manager's, else the
// snapshot's. A TLS-ALPN-01 validation always goes to the manager.
func (n *Node) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	host := hostname.Clean(hello.ServerName)
	if !isALPNChallenge(hello) {
		if cert := n.fleet.uploaded.certificate(host, func() (*tls.Certificate, error) { return n.certs.CertificateNow(hello) }); cert != nil {
			return cert, nil
		}
	}
	if cert := n.fleet.suspended.certificate(host); cert != nil {
		return cert, nil
	}
	return n.fleet.certs.GetCertificate(hello)
}

// isALPNChallenge reports a TLS-ALPN-01 validation handshake (RFC 8737).
func isALPNChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == "acme-tls/1"
}

// cachedCertificate is the certificate in memory for host (the snapshot's
// source): an uploaded one, the manager's or the snapshot's, else a
// suspended name's.
func (n *Node) cachedCertificate(host string) *tls.Certificate {
	if cert := n.fleet.uploaded.cached(host); cert != nil {
		return cert
	}
	if cert := n.fleet.certs.Cached(host); cert != nil {
		return cert
	}
	return n.fleet.suspended.certificate(host)
}

// suspendedSet returns the IDs of the suspended projects.
func suspendedSet(projects []store.Project) map[string]bool {
	out := map[string]bool{}
	for _, p := range projects {
		if !p.SuspendedAt.IsZero() {
			out[p.ID] = true
		}
	}
	return out
}
