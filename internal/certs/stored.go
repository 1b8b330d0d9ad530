package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/store"
)

// Stored loads the certificate of a hostname the Manager does not manage
// yet, as certmagic stored it: for a node that serves before its first
// full read of the store (syncer's warm-up), when no name is managed. It
// keeps nothing: the caller (the edge's warm-up) holds what it loaded
// until the first full read, and every change notice drops it. It is safe
// for concurrent use.
type Stored struct {
	storage    certmagic.Storage
	issuerKeys []string
}

// NewStored returns the certificates stored in storage by issuers (the
// Manager's Config.Issuers).
func NewStored(storage certmagic.Storage, issuers []certmagic.Issuer) *Stored {
	s := &Stored{storage: storage}
	for _, iss := range issuers {
		s.issuerKeys = append(s.issuerKeys, iss.IssuerKey())
	}
	return s
}

// Certificate returns the certificate a full sync would serve for host
// (in normal form): up, the project's uploaded certificate, if it is
// given and loads (Uploaded.Apply's rule: only when host is routed to
// the upload's project, which the caller checks); else the newest valid
// one stored for host or its parent's wildcard (what the Manager loads
// from storage on a handshake). Nil if there is none.
func (s *Stored) Certificate(ctx context.Context, host string, up *store.UploadedCert) *tls.Certificate {
	if up != nil {
		pair, err := tls.X509KeyPair(up.Chain, up.Key)
		if err == nil {
			pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0])
		}
		if err == nil {
			return &pair
		}
	}
	cert := loadStored(ctx, s.storage, s.issuerKeys, host)
	if cert == nil || time.Now().After(cert.Leaf.NotAfter) {
		return nil
	}
	return cert
}

// loadStored reads the newest stored certificate for host: its own, or
// its parent domain's wildcard, of any of the issuers.
func loadStored(ctx context.Context, storage certmagic.Storage, issuerKeys []string, host string) *tls.Certificate {
	names := []string{host}
	if _, parent, ok := strings.Cut(host, "."); ok && strings.Contains(parent, ".") {
		names = append(names, "*."+parent)
	}
	var best *tls.Certificate
	for _, name := range names {
		for _, issuer := range issuerKeys {
			chain, err := storage.Load(ctx, certmagic.StorageKeys.SiteCert(issuer, name))
			if err != nil {
				continue
			}
			key, err := storage.Load(ctx, certmagic.StorageKeys.SitePrivateKey(issuer, name))
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
