package certs

import (
	"hash/maphash"
	"iter"
	"maps"

	"github.com/spine-platform/spine/internal/hostname"
)

// nameShards is the number of shards of a names map: a change of one name
// copies its shard only (about a thousand names at a million).
const nameShards = 1024

// names is an immutable map of normalised hostnames (or wildcard
// subjects) to V, split in shards by a hash of the name so that a delta
// (Manager.UpdateShared) builds the next map by copying the shards it
// touches and sharing the others. A shard's map is never written once the
// names holding it is published; a nil shard is empty. Reads take no lock.
type names[V any] struct {
	shards [nameShards]map[string]V
	n      int
}

// nameSeed hashes a name to pick its shard: the runtime's string hash
// (hash/maphash), which allocates nothing and costs a few nanoseconds on the
// request path. The seed is the process's; shards are never persisted.
var nameSeed = maphash.MakeSeed()

func nameShard(name string) int { return int(maphash.String(nameSeed, name) % nameShards) }

func (s *names[V]) get(name string) (V, bool) {
	v, ok := s.shards[nameShard(name)][name]
	return v, ok
}

func (s *names[V]) has(name string) bool {
	_, ok := s.shards[nameShard(name)][name]
	return ok
}

// len returns the number of names.
func (s *names[V]) len() int { return s.n }

// all yields every name with its value.
func (s *names[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for _, m := range s.shards {
			for k, v := range m {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}

// allows reports whether a handshake for name may be served: name is in
// the set, or a wildcard subject in it covers name.
func (s *names[V]) allows(name string) bool {
	if name == "" {
		return false
	}
	if s.has(name) {
		return true
	}
	if d, ok := hostname.Parent(name); ok {
		return s.has(hostname.Wildcard(d))
	}
	return false
}

// namesBuilder builds a names, from nothing or as a copy of another that
// shares the shards it does not touch.
type namesBuilder[V any] struct {
	s      *names[V]
	copied [nameShards]bool
	hint   int // names expected in all, for the maps' first size
}

func newNamesBuilder[V any](from *names[V], hint int) *namesBuilder[V] {
	b := &namesBuilder[V]{s: &names[V]{}, hint: hint}
	if from != nil {
		*b.s = *from
	}
	return b
}

func (b *namesBuilder[V]) shard(name string) map[string]V {
	i := nameShard(name)
	if !b.copied[i] {
		old := b.s.shards[i]
		m := make(map[string]V, max(len(old)+1, b.hint/nameShards))
		maps.Copy(m, old)
		b.s.shards[i] = m
		b.copied[i] = true
	}
	return b.s.shards[i]
}

func (b *namesBuilder[V]) put(name string, v V) {
	m := b.shard(name)
	if _, ok := m[name]; !ok {
		b.s.n++
	}
	m[name] = v
}

func (b *namesBuilder[V]) remove(name string) {
	if !b.s.has(name) {
		return
	}
	delete(b.shard(name), name)
	b.s.n--
}

// nameSet is a set of names (managed subjects, served hostnames).
type nameSet = names[struct{}]
