package certs

import (
	"context"
	"crypto/tls"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
)

// suspendedLoadTimeout bounds the storage reads of one suspended name's
// certificate.
const suspendedLoadTimeout = 5 * time.Second

// Suspended serves the certificates of suspended projects' hostnames
// (their services answer 503 at the edge, over HTTPS with the certificate
// they had). The Manager stops managing those names (so nothing renews
// them); a handshake for one gets its last certificate,
// read from storage as certmagic stored it (any of the node's issuers;
// the name's own or its wildcard's), once per name: the cache holds at
// most one certificate per suspended hostname and is emptied whenever the
// set of suspended hostnames changes. An expired certificate is not
// served. It must be safe for concurrent use: Certificate runs on
// handshakes while Set runs on syncs.
type Suspended struct {
	storage    certmagic.Storage
	issuerKeys []string // where each issuer stores its certificates

	hosts atomic.Pointer[map[string]bool] // suspended hostnames, swapped whole by set

	mu    sync.Mutex
	certs map[string]*tls.Certificate // by hostname; nil: looked up, none
}

// NewSuspended returns the certificates of suspended hostnames as stored
// in storage by issuers (the Manager's Config.Issuers), none suspended yet.
func NewSuspended(storage certmagic.Storage, issuers []certmagic.Issuer) *Suspended {
	s := &Suspended{storage: storage}
	for _, iss := range issuers {
		s.issuerKeys = append(s.issuerKeys, iss.IssuerKey())
	}
	return s
}

// Set makes hosts the suspended hostnames.
func (s *Suspended) Set(hosts map[string]bool) {
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
func (s *Suspended) has(host string) bool {
	h := s.hosts.Load()
	return h != nil && (*h)[host]
}

// Certificate returns the stored certificate of a suspended hostname
// (in normal form), or nil.
func (s *Suspended) Certificate(host string) *tls.Certificate {
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

// load reads the newest stored certificate for host (loadStored).
func (s *Suspended) load(host string) *tls.Certificate {
	ctx, cancel := context.WithTimeout(context.Background(), suspendedLoadTimeout)
	defer cancel()
	return loadStored(ctx, s.storage, s.issuerKeys, host)
}

// Stored returns the loader of certificates stored by the same issuers in
// the same storage, for the warm-up (syncer).
func (s *Suspended) Stored() *Stored { return &Stored{storage: s.storage, issuerKeys: s.issuerKeys} }
