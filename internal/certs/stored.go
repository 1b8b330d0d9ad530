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
	return s.certificate(up, func() *tls.Certificate { return loadStored(ctx, s.storage, s.issuerKeys, host) })
}

// KeyPrefixes returns the key folders Certificate reads for host (in
// normal form): its own certificate's and its parent's wildcard's, of each
// issuer; for a caller that reads them together with its other reads of
// host (syncer's warm-up, store.ReadWarm) and hands them to FromKeys; and
// the most keys that read should return (GetKeysWithPrefix's limit: one
// more than FromKeys uses). Nil when there are too many folders to read
// at once: then call Certificate.
func (s *Stored) KeyPrefixes(host string) (prefixes []string, limit int) {
	sites := storedSites(s.issuerKeys, host)
	if len(sites) > prefetchIssuers*2 {
		return nil, 0
	}
	prefixes = make([]string, 0, len(sites))
	for _, site := range sites {
		prefixes = append(prefixes, site.prefix+"/")
	}
	return prefixes, prefetchKeys + 1
}

// FromKeys is Certificate over kvs, the keys under KeyPrefixes(host) as
// a read of at most its limit returned them (sorted). When
// that read found more than it uses, it reads the certificates' keys one
// by one, as Certificate does.
func (s *Stored) FromKeys(ctx context.Context, host string, up *store.UploadedCert, kvs []store.KeyValue) *tls.Certificate {
	return s.certificate(up, func() *tls.Certificate {
		sites := storedSites(s.issuerKeys, host)
		if len(kvs) > prefetchKeys {
			return pickStored(sites, func(key string) ([]byte, error) { return s.storage.Load(ctx, key) })
		}
		return pickStored(sites, keysLoader(kvs))
	})
}

// certificate returns up's certificate if it is given and loads, else
// the one stored returns, if it is still valid.
func (s *Stored) certificate(up *store.UploadedCert, stored func() *tls.Certificate) *tls.Certificate {
	if up != nil {
		pair, err := tls.X509KeyPair(up.Chain, up.Key)
		if err == nil {
			pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0])
		}
		if err == nil {
			return &pair
		}
	}
	cert := stored()
	if cert == nil || time.Now().After(cert.Leaf.NotAfter) {
		return nil
	}
	return cert
}

// storedSites returns the certificate folders of host: its own, and its
// parent domain's wildcard, of each of the issuers; by name, then issuer.
func storedSites(issuerKeys []string, host string) []siteKeys {
	names := []string{host}
	if _, parent, ok := strings.Cut(host, "."); ok && strings.Contains(parent, ".") {
		names = append(names, "*."+parent)
	}
	sites := make([]siteKeys, 0, len(names)*len(issuerKeys))
	for _, name := range names {
		for _, issuer := range issuerKeys {
			sites = append(sites, siteKeysOf(issuer, name))
		}
	}
	return sites
}

// loadStored reads the newest stored certificate for host: its own, or
// its parent domain's wildcard, of any of the issuers. Over a store that
// reads prefixes (storedKeys) that is one round trip for every folder,
// else two Loads per folder.
func loadStored(ctx context.Context, storage certmagic.Storage, issuerKeys []string, host string) *tls.Certificate {
	sites := storedSites(issuerKeys, host)
	return pickStored(sites, storedKeys(ctx, storage, sites))
}

// pickStored returns the certificate of sites that expires last, their
// keys read with load; nil if none loads.
func pickStored(sites []siteKeys, load func(key string) ([]byte, error)) *tls.Certificate {
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
	return keysLoader(kvs)
}

// keysLoader returns a load of the keys of kvs; a key not there does not
// exist.
func keysLoader(kvs []store.KeyValue) func(key string) ([]byte, error) {
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
