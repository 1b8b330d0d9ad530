package certs

import (
	"math/rand/v2"
	"strings"
	"sync"
)

// cachedSet is what the Manager knows of the names in certmagic's cache:
// each name of a managed certificate that entered it (certmagic's
// "cached_managed_cert" event), until the Manager removed it. It lets the
// Manager make room before a load from storage instead of leaving that to
// certmagic, whose eviction, for each certificate added to a full cache,
// walks its map up to a random place copying every entry it passes
// (certmagic.Cache.unsyncedCacheCertificate), under the cache's write lock
// that every handshake's read waits for: at 10,000 certificates, 20 % of
// the node's processor once handshakes loaded new names without end
// (BENCHMARKS.md, "... and the certificate cache's eviction"). Here a name is
// picked at random from a slice and removed by its name's index.
//
// Each load reserves its place when it makes room (victims) and gives it
// back when it is over (loaded): the names held plus the loads under way
// stay below the limit, so concurrent loads never fill certmagic's cache
// and certmagic never evicts a name behind the set's back. (Without the
// reservation, two loads could each see room for one, and certmagic then
// evicted a name of its own choosing, which the set kept recording.)
//
// Bound: limit names, more only when more loads run at once than the
// limit; a name certmagic evicted or replaced by itself (an obtained or
// renewed certificate entering a cache already full) stays until picked,
// which then removes nothing from the cache. Safe for concurrent use.
type cachedSet struct {
	mu      sync.RWMutex // read-locked by mayHold, on every handshake
	names   []string
	at      map[string]int // index in names
	limit   int            // make room at this many; 0: no bound
	loading int            // loads that made room and have not ended
}

// newCachedSet returns the set for a cache of capacity certificates (0:
// no bound). It keeps a hundredth of the capacity (at least one) free for
// the loads under way and the certificates that enter without a load
// (obtained, renewed): only when those fill it does certmagic evict.
func newCachedSet(capacity int) *cachedSet {
	s := &cachedSet{at: map[string]int{}}
	if capacity > 0 {
		s.limit = max(1, capacity-max(1, capacity/100))
	}
	return s
}

// add records that name's certificate entered the cache.
func (s *cachedSet) add(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.at[name]; ok {
		return
	}
	s.at[name] = len(s.names)
	s.names = append(s.names, name)
}

// remove records that name's certificates left the cache.
func (s *cachedSet) remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(name)
}

func (s *cachedSet) removeLocked(name string) {
	i, ok := s.at[name]
	if !ok {
		return
	}
	last := len(s.names) - 1
	s.names[i] = s.names[last]
	s.at[s.names[i]] = i
	s.names[last] = ""
	s.names = s.names[:last]
	delete(s.at, name)
}

// mayHold reports whether the cache may hold a certificate for the
// hostname name: a certificate of that name, or of the wildcard of its
// parent, entered it and was not removed by the Manager. False means none
// does (every managed certificate enters through certmagic's
// CacheManagedCertificate, which reports it, or replaces one that did).
// It allocates nothing.
func (s *cachedSet) mayHold(name string) bool {
	var buf [2 + 253]byte
	wild := buf[:0]
	if _, parent, ok := strings.Cut(name, "."); ok && len(parent)+2 <= len(buf) {
		wild = append(append(wild, "*."...), parent...)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.at[name]; ok {
		return true
	}
	_, ok := s.at[string(wild)] // no allocation for a map key; "" is never held
	return ok
}

// victims returns the names to take out of the cache before one more
// certificate is loaded into it (none while there is room), forgets them,
// and reserves the load's place until loaded is called.
func (s *cachedSet) victims() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for s.limit > 0 && len(s.names) > 0 && len(s.names)+s.loading >= s.limit {
		v := s.names[rand.IntN(len(s.names))]
		s.removeLocked(v)
		out = append(out, v)
	}
	s.loading++
	return out
}

// loaded ends the reservation victims made, once the load is over: its
// name, if loaded, was added first (certmagic reports the certificate
// before the load returns).
func (s *cachedSet) loaded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loading--
}
