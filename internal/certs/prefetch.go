// Prefetch: a certificate's keys read together, so that loading it from
// storage costs one round trip instead of one per key.

package certs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

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

// prefetch keeps, for a short while, the keys that one read returned with
// the key a Load asked for: a certificate's private key, certificate and
// metadata under every issuer seen so far, and its OCSP staples. certmagic
// loads them one after the other, and the ones after the first are
// answered from here.
//
// What keeps it correct: each key of a read is answered at most once, so
// loading a certificate again reads the store again (only a key that the
// first load did not ask for can still be answered from its read); a read
// is one snapshot, so the key, certificate and metadata it answers belong
// together; a Store or Delete through the
// Storage drops the reads it touches, and one that finishes while a read
// is on its way keeps that read from being kept; taking a lock drops every
// read, so whatever the previous holder wrote on another node is seen.
// What it gives up: a key written by another node without a lock (certmagic
// writes certificates under one) can be answered from a read up to ttl old.
type prefetch struct {
	pr      PrefixReader
	ttl     time.Duration
	max     int              // most reads kept
	now     func() time.Time // tests replace it
	mu      sync.Mutex
	gen     uint64           // raised by every write and lock: a read begun before is not kept
	reads   map[string]*read // by certificate name, as certmagic puts it in keys
	issuers []string         // issuer folders seen, in order, at most prefetchIssuers
}

// read is the result of one GetKeysWithPrefix: for every key under its
// prefixes, its value or its absence, until answered once or expired.
type read struct {
	expires  time.Time
	prefixes []string
	values   map[string][]byte
	answered map[string]bool
}

func (r *read) covers(key string) bool {
	for _, p := range r.prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// newPrefetch returns nil (no prefetch) if kv cannot read prefixes or ttl is negative.
func newPrefetch(kv KV, ttl time.Duration, reads int) *prefetch {
	pr, ok := kv.(PrefixReader)
	if !ok || ttl < 0 {
		return nil
	}
	return &prefetch{pr: pr, ttl: ttl, max: reads, now: time.Now, reads: make(map[string]*read)}
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

// take answers key from a read that covers it and has not answered it yet.
// ok is false if there is none.
func (p *prefetch) take(key string) (value []byte, ok bool, err error) {
	name, ok := nameOf(key)
	if !ok {
		return nil, false, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reads[name]
	if r == nil || !r.covers(key) {
		return nil, false, nil
	}
	if !p.now().Before(r.expires) || r.answered[key] {
		delete(p.reads, name) // expired, or a new load of the certificate: read again
		return nil, false, nil
	}
	r.answered[key] = true
	v, found := r.values[key]
	delete(r.values, key)
	if !found {
		return nil, true, notExist(fmt.Errorf("key %q: %w", key, store.ErrNotFound))
	}
	return v, true, nil
}

// load reads key together with the other keys of its certificate, keeps
// them, and answers key. ok is false if key is not a certificate's or the
// read found too many keys to keep; the caller then reads key alone.
func (p *prefetch) load(ctx context.Context, key string) (value []byte, ok bool, err error) {
	issuer, name, ok := certKey(key)
	if !ok {
		return nil, false, nil
	}
	p.mu.Lock()
	gen := p.gen
	prefixes := p.prefixes(issuer, name)
	p.mu.Unlock()

	kvs, err := p.pr.GetKeysWithPrefix(ctx, prefetchKeys+1, prefixes...)
	if err != nil {
		return nil, true, err
	}
	if len(kvs) > prefetchKeys {
		return nil, false, nil
	}
	r := &read{prefixes: prefixes, values: make(map[string][]byte, len(kvs)), answered: map[string]bool{key: true}}
	for _, kv := range kvs {
		r.values[kv.Key] = kv.Value
	}
	value, found := r.values[key]
	delete(r.values, key)

	p.mu.Lock()
	if p.gen == gen { // else a write or a lock came meanwhile: this read may be older than it
		now := p.now()
		r.expires = now.Add(p.ttl)
		p.keep(name, r, now)
	}
	p.mu.Unlock()
	if !found {
		return nil, true, notExist(fmt.Errorf("key %q: %w", key, store.ErrNotFound))
	}
	return value, true, nil
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

// keep stores r as name's read, dropping expired reads and, if there is
// still no room, the one that expires first. Called with mu held.
func (p *prefetch) keep(name string, r *read, now time.Time) {
	delete(p.reads, name)
	if len(p.reads) >= p.max {
		var first string
		for n, old := range p.reads {
			if !now.Before(old.expires) {
				delete(p.reads, n)
			} else if first == "" || old.expires.Before(p.reads[first].expires) {
				first = n
			}
		}
		if len(p.reads) >= p.max {
			delete(p.reads, first)
		}
	}
	p.reads[name] = r
}

// written drops the reads that cover key or keys under key+"/", after a
// Store or Delete of key, and keeps reads under way from being kept.
func (p *prefetch) written(key string) {
	dir := key + "/"
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	for name, r := range p.reads {
		for _, pre := range r.prefixes {
			if strings.HasPrefix(dir, pre) || strings.HasPrefix(pre, dir) {
				delete(p.reads, name)
				break
			}
		}
	}
}

// forget drops every read, and keeps reads under way from being kept.
func (p *prefetch) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	clear(p.reads)
}
