package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
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
// its parent domain's wildcard, of any of the issuers. Over a store that
// reads prefixes (storedKeys) that is one round trip for every folder,
// else two Loads per folder.
func loadStored(ctx context.Context, storage certmagic.Storage, issuerKeys []string, host string) *tls.Certificate {
	names := []string{host}
	if _, parent, ok := strings.Cut(host, "."); ok && strings.Contains(parent, ".") {
		names = append(names, "*."+parent)
	}
	sites := make([]siteKeys, 0, len(names)*len(issuerKeys)) // by name, then issuer
	for _, name := range names {
		for _, issuer := range issuerKeys {
			sites = append(sites, siteKeysOf(issuer, name))
		}
	}
	load := storedKeys(ctx, storage, sites)
	var best *tls.Certificate
	for _, site := range sites {
		chain, err := load(site.cert)
		if err != nil {
			continue
		}
		key, err := load(site.key)
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
	return best
}

// storedKeys returns how loadStored reads a key of the certificate
// folders sites: over a *Storage whose store reads prefixes, from one
// read of all those folders made now (the warm-up's look-up of a name
// waits one round trip for them instead of three, BENCHMARKS.md "The
// warm-up's reads together"), else by a Load each. A read that fails or
// finds more than prefetchKeys keys falls back to the Loads.
func storedKeys(ctx context.Context, storage certmagic.Storage, sites []siteKeys) func(key string) ([]byte, error) {
	load := func(key string) ([]byte, error) { return storage.Load(ctx, key) }
	st, ok := storage.(*Storage)
	if !ok || st.prefetch == nil || len(sites) > prefetchIssuers*2 {
		return load
	}
	prefixes := make([]string, 0, len(sites))
	for _, site := range sites {
		prefixes = append(prefixes, site.prefix+"/")
	}
	kvs, err := st.prefetch.pr.GetKeysWithPrefix(ctx, prefetchKeys+1, prefixes...)
	if err != nil || len(kvs) > prefetchKeys {
		return load
	}
	values := make(map[string][]byte, len(kvs))
	for _, kv := range kvs {
		values[kv.Key] = kv.Value
	}
	return func(key string) ([]byte, error) {
		if v, ok := values[key]; ok {
			return v, nil
		}
		return nil, notExist(fmt.Errorf("key %q: %w", key, store.ErrNotFound))
	}
}
