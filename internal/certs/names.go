package certs

import (
	"cmp"
	"hash/maphash"
	"iter"
	"slices"
	"strings"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/sched"
)

// nameShards is the number of shards of a names: a change of one name
// copies its shard only (about a thousand names at a million).
const nameShards = 1024

// names is an immutable map of normalised hostnames (or wildcard
// subjects) to V, split in shards by a hash of the name so that a delta
// (namesDelta, for Manager.UpdateShared) builds the next names by copying
// the shards it touches and sharing the others.
//
// A shard holds its names sorted by a 16-bit tag taken from their hash
// (the bits the shard's number does not use), then by name, with the tags
// and the values in parallel slices. A name costs its string header (16
// bytes), its tag (2) and its value (nothing for a set), against 50 to
// 110 bytes in a Go map. A look-up bisects the shard's tags, which lie
// together in memory, and compares the names of its tag only: about one
// at a million names (a 26-bit hash over 1024 shards), where bisecting
// the names would read about ten of them, each elsewhere in memory. The
// names' bytes are the caller's, never copied. A shard's slices are never written once
// the names holding them is published; reads take no lock and allocate
// nothing.
type names[V any] struct {
	shards [nameShards]shard[V]
	n      int
}

// shard is one shard of a names.
type shard[V any] struct {
	tags []uint16 // tags[i] is the tag of keys[i] (place); sorted
	keys []string // sorted by tag, then by name; each once
	vals []V      // vals[i] is the value of keys[i]
}

// nameSeed hashes a name to pick its shard: the runtime's string hash
// (hash/maphash), which allocates nothing and costs a few nanoseconds on the
// request path. The seed is the process's; shards are never persisted.
var nameSeed = maphash.MakeSeed()

// place returns the shard of name and its tag in the shard.
func place(name string) (int, uint16) {
	h := maphash.String(nameSeed, name)
	return int(h % nameShards), uint16(h >> 48)
}

// find returns the index of name in sh, or where it belongs if it is not
// there, and whether it is there.
func (sh *shard[V]) find(name string, tag uint16) (int, bool) {
	i, _ := slices.BinarySearch(sh.tags, tag)
	for ; i < len(sh.tags) && sh.tags[i] == tag; i++ {
		// Operators, not strings.Compare: its argument escapes, and the
		// wildcard name allows builds would be allocated.
		if k := sh.keys[i]; k >= name {
			return i, k == name
		}
	}
	return i, false
}

func (s *names[V]) get(name string) (V, bool) {
	i, tag := place(name)
	sh := &s.shards[i]
	if j, ok := sh.find(name, tag); ok {
		return sh.vals[j], true
	}
	var zero V
	return zero, false
}

// has reports whether name is in s; a nil s holds no name.
func (s *names[V]) has(name string) bool {
	if s == nil {
		return false
	}
	i, tag := place(name)
	_, ok := s.shards[i].find(name, tag)
	return ok
}

// len returns the number of names.
func (s *names[V]) len() int { return s.n }

// all yields every name with its value.
func (s *names[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for i := range s.shards {
			sh := &s.shards[i]
			for j, k := range sh.keys {
				if !yield(k, sh.vals[j]) {
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

// filter returns the names of s for which keep is true, with their values.
// A shard in which keep holds for every name is shared with s.
func (s *names[V]) filter(keep func(string) bool) *names[V] {
	out := &names[V]{}
	var kept shard[V] // reused for each shard, then copied at its size
	for i := range s.shards {
		sh := s.shards[i]
		first := slices.IndexFunc(sh.keys, func(k string) bool { return !keep(k) })
		if first < 0 {
			out.shards[i] = sh
			out.n += len(sh.keys)
			continue
		}
		kept.tags = append(kept.tags[:0], sh.tags[:first]...)
		kept.keys = append(kept.keys[:0], sh.keys[:first]...)
		kept.vals = append(kept.vals[:0], sh.vals[:first]...)
		for j := first + 1; j < len(sh.keys); j++ {
			if keep(sh.keys[j]) {
				kept.tags = append(kept.tags, sh.tags[j])
				kept.keys = append(kept.keys, sh.keys[j])
				kept.vals = append(kept.vals, sh.vals[j])
			}
		}
		out.shards[i] = shard[V]{tags: slices.Clone(kept.tags), keys: slices.Clone(kept.keys), vals: slices.Clone(kept.vals)}
		out.n += len(kept.keys)
	}
	return out
}

// namesBuilder builds a names from nothing: put appends to the name's
// shard, and build sorts each shard once, which costs O(n log n) where
// inserting each name in its place would cost O(n²/nameShards). Its zero
// value is ready.
type namesBuilder[V any] struct {
	shards [nameShards][]entry[V]
}

type entry[V any] struct {
	name string
	tag  uint16
	v    V
}

// newNamesBuilder returns a builder for about hint names. Its shards are
// made one at a time, letting handshakes run in between: at a million
// names they are tens of megabytes, each allocation zeroed at once, and
// made together they held a processor for 20-40 ms (a trace of
// PostgreSQL's warm-up, BENCHMARKS.md).
func newNamesBuilder[V any](hint int) *namesBuilder[V] {
	b := &namesBuilder[V]{}
	if per := hint / nameShards; per > 0 {
		var y sched.Yielder
		for i := range b.shards {
			y.Maybe()
			b.shards[i] = make([]entry[V], 0, per+per/4+8) // the hash spreads names within a few percent
		}
	}
	return b
}

// put adds name with v; of a name put more than once, the last v is kept.
func (b *namesBuilder[V]) put(name string, v V) {
	i, tag := place(name)
	b.shards[i] = append(b.shards[i], entry[V]{name, tag, v})
}

// build returns the names put, and empties b. It lets handshakes run
// between shards (y).
func (b *namesBuilder[V]) build(y *sched.Yielder) *names[V] {
	s := &names[V]{}
	for i, es := range b.shards {
		y.Maybe()
		b.shards[i] = nil // the staging goes as the shards are built
		if len(es) == 0 {
			continue
		}
		slices.SortStableFunc(es, func(a, b entry[V]) int {
			return cmp.Or(cmp.Compare(a.tag, b.tag), strings.Compare(a.name, b.name))
		})
		distinct := 0
		for j := range es {
			if j+1 == len(es) || es[j+1].name != es[j].name {
				distinct++
			}
		}
		sh := shard[V]{tags: make([]uint16, 0, distinct), keys: make([]string, 0, distinct), vals: make([]V, 0, distinct)}
		for j, e := range es {
			if j+1 == len(es) || es[j+1].name != e.name { // the last put of the name
				sh.tags = append(sh.tags, e.tag)
				sh.keys = append(sh.keys, e.name)
				sh.vals = append(sh.vals, e.v)
			}
		}
		s.shards[i] = sh
		s.n += distinct
	}
	return s
}

// namesDelta builds a names as a copy of another, which it leaves
// unchanged: the first change in a shard copies that shard, and the
// shards not changed are shared. A change costs O(shard size), for a
// delta of few names; a names of many new names is built by a
// namesBuilder. s may be read while building.
type namesDelta[V any] struct {
	s      *names[V]
	copied [nameShards]bool
}

func newNamesDelta[V any](from *names[V]) *namesDelta[V] {
	d := &namesDelta[V]{s: &names[V]{}}
	*d.s = *from
	return d
}

// shard returns the shard of name, copied from the one shared on first
// use, and the name's tag.
func (d *namesDelta[V]) shard(name string) (*shard[V], uint16) {
	i, tag := place(name)
	sh := &d.s.shards[i]
	if !d.copied[i] {
		sh.tags, sh.keys, sh.vals = slices.Clone(sh.tags), slices.Clone(sh.keys), slices.Clone(sh.vals)
		d.copied[i] = true
	}
	return sh, tag
}

func (d *namesDelta[V]) put(name string, v V) {
	sh, tag := d.shard(name)
	i, ok := sh.find(name, tag)
	if ok {
		sh.vals[i] = v
		return
	}
	sh.tags = slices.Insert(sh.tags, i, tag)
	sh.keys = slices.Insert(sh.keys, i, name)
	sh.vals = slices.Insert(sh.vals, i, v)
	d.s.n++
}

func (d *namesDelta[V]) remove(name string) {
	if !d.s.has(name) {
		return
	}
	sh, tag := d.shard(name)
	i, _ := sh.find(name, tag)
	sh.tags = slices.Delete(sh.tags, i, i+1)
	sh.keys = slices.Delete(sh.keys, i, i+1)
	sh.vals = slices.Delete(sh.vals, i, i+1)
	d.s.n--
}

// nameSet is a set of names (managed subjects, served hostnames).
type nameSet = names[struct{}]
