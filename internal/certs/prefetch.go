// Prefetch: a certificate's keys read together, so that loading it from
// storage to answer a handshake costs one round trip instead of one per key.

package certs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/spine-platform/spine/internal/store"
)

// PrefixReader is the optional ability of a KV (*store.DB has it) to read
// the keys that begin with any of some prefixes, with their values, in one
// round trip. See store.DB.GetKeysWithPrefix for the contract.
type PrefixReader interface {
	GetKeysWithPrefix(ctx context.Context, limit int, prefixes ...string) ([]store.KeyValue, error)
}

// Bounds of the prefetch.
const (
	// prefetchKeys is the most keys one read keeps; a read that finds more
	// (certmagic writes three per certificate and issuer) is not kept.
	prefetchKeys = 64
	// prefetchIssuers is the most issuer folders a read covers.
	prefetchIssuers = 8
)

// prefetch reads a certificate's keys together for a certificate load: a
// context made by withCertificateLoad, under which certmagic loads one
// certificate (its private key, certificate and metadata under every
// issuer seen so far, and its OCSP staple, one Load after the other). The
// first Load of one of them reads them all, in one query and so from one
// snapshot of the store; the Loads that follow under the same context are
// answered from that read.
//
// The contract, in certmagic's terms. Outside a certificate load nothing
// is kept: Load reads the store and returns what the last Store wrote.
// Within one, the Loads of a certificate's keys return what the last
// Stores before the load's read wrote, and the Stores and Deletes made
// under the same context: the load is one read of the whole certificate,
// which happens at that read. A Store that another node (or another
// goroutine) finishes while the load is under way is either seen by all
// of the load or by none of it, so the key, certificate and metadata a
// load returns always belong together; reading the keys one by one, a
// renewal between two Loads would pair the new certificate with the old
// key. A later load reads the store again.
//
// Bounds: a certificate load keeps one read, of at most prefetchKeys
// keys, for as long as the load runs; nothing is kept between loads but
// the issuer folders seen (at most prefetchIssuers), which say where to
// read, not what.
type prefetch struct {
	pr      PrefixReader
	mu      sync.Mutex
	issuers []string // issuer folders seen, in order, at most prefetchIssuers
}

// certificateLoad is the state of one certificate load: the read of its keys.
type certificateLoad struct {
	mu sync.Mutex
	r  *read // nil until the first Load of a certificate's key
}

// read is the result of one GetKeysWithPrefix: for every key under its
// prefixes, its value or its absence.
type read struct {
	name     string // the certificate's, as certmagic puts it in keys
	prefixes []string
	values   map[string][]byte
}

func (r *read) covers(key string) bool {
	for _, p := range r.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

type certificateLoadKey struct{}

// withCertificateLoad returns a context under which the Loads of one
// certificate's keys are answered from one read of them all (see prefetch).
// Use it for one certificate, for the duration of one load.
func withCertificateLoad(ctx context.Context) context.Context {
	return context.WithValue(ctx, certificateLoadKey{}, &certificateLoad{})
}

func certificateLoadOf(ctx context.Context) *certificateLoad {
	l, _ := ctx.Value(certificateLoadKey{}).(*certificateLoad)
	return l
}

// newPrefetch returns nil (no prefetch) if kv cannot read prefixes.
func newPrefetch(kv KV) *prefetch {
	pr, ok := kv.(PrefixReader)
	if !ok {
		return nil
	}
	return &prefetch{pr: pr}
}

// certKey splits "certificates/<issuer>/<name>/<file>", the keys of a
// certificate that certmagic reads to load it.
func certKey(key string) (issuer, name string, ok bool) {
	rest, ok := strings.CutPrefix(key, "certificates/")
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// ocspKey returns the certificate name of "ocsp/<name>-<hash>", a staple's key.
func ocspKey(key string) (name string, ok bool) {
	rest, ok := strings.CutPrefix(key, "ocsp/")
	i := strings.LastIndexByte(rest, '-')
	if !ok || i <= 0 || strings.Contains(rest, "/") {
		return "", false
	}
	return rest[:i], true
}

// nameOf returns the certificate name whose read may answer key.
func nameOf(key string) (string, bool) {
	if _, name, ok := certKey(key); ok {
		return name, true
	}
	return ocspKey(key)
}

// load answers key within the certificate load l: from l's read if it
// covers key, else, for a key of a certificate, from a new read of that
// certificate's keys, which l keeps. ok is false if key is no key of a
// certificate, or the read found too many keys to keep: the caller then
// reads key alone.
func (p *prefetch) load(ctx context.Context, l *certificateLoad, key string) (value []byte, ok bool, err error) {
	name, ok := nameOf(key)
	if !ok {
		return nil, false, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.r; r != nil && r.name == name && r.covers(key) {
		return r.answer(key)
	}
	issuer, name, ok := certKey(key)
	if !ok {
		return nil, false, nil // a staple before its certificate: not this load's
	}
	p.mu.Lock()
	prefixes := p.prefixes(issuer, name)
	p.mu.Unlock()
	kvs, err := p.pr.GetKeysWithPrefix(ctx, prefetchKeys+1, prefixes...)
	if err != nil {
		return nil, true, err
	}
	if len(kvs) > prefetchKeys {
		return nil, false, nil
	}
	r := &read{name: name, prefixes: prefixes, values: make(map[string][]byte, len(kvs))}
	for _, kv := range kvs {
		r.values[kv.Key] = kv.Value
	}
	l.r = r
	return r.answer(key)
}

// answer returns key's value in r, or its absence.
func (r *read) answer(key string) ([]byte, bool, error) {
	v, found := r.values[key]
	if !found {
		return nil, true, notExist(fmt.Errorf("key %q: %w", key, store.ErrNotFound))
	}
	return slices.Clone(v), true, nil
}

// prefixes are what a read for a key of name under issuer covers: name's
// folder under every issuer seen (certmagic may look under each), and its
// OCSP staples. Called with mu held.
func (p *prefetch) prefixes(issuer, name string) []string {
	if !slices.Contains(p.issuers, issuer) && len(p.issuers) < prefetchIssuers {
		p.issuers = append(p.issuers, issuer)
	}
	out := make([]string, 0, len(p.issuers)+2)
	out = append(out, "certificates/"+issuer+"/"+name+"/")
	for _, iss := range p.issuers {
		if iss != issuer {
			out = append(out, "certificates/"+iss+"/"+name+"/")
		}
	}
	return append(out, "ocsp/"+name+"-")
}

// written records, in the certificate load l, a Store (value) or a Delete
// (deleted) of key made under it, so that its later Loads see it. After a
// failed write, which may or may not have been done, the next Load reads
// the store again.
func (l *certificateLoad) written(key string, value []byte, deleted bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.r
	switch {
	case r == nil:
	case err != nil:
		l.r = nil
	case !deleted:
		if r.covers(key) {
			r.values[key] = slices.Clone(value)
		}
	default:
		dir := key + "/"
		for k := range r.values {
			if k == key || strings.HasPrefix(k, dir) {
				delete(r.values, k)
			}
		}
	}
}
