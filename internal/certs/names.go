package certs

import (
	"hash/maphash"
	"iter"
	"slices"
	"sort"
	"unsafe"

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
// and the values in parallel slices. A look-up bisects the shard's tags,
// which lie together in memory, and compares the names of its tag only:
// about one at a million names (a 26-bit hash over 1024 shards), where
// bisecting the names would read about ten of them, each elsewhere in
// memory. The names themselves are copied into one block of bytes a
// shard (keyList): a name costs its bytes, where it ends (4 bytes), its
// tag (2) and its value (nothing for a set), against 50 to 110 bytes in a
// Go map; and a set holds no pointer per name, so the collector, which
// marks it at every cycle, reads none (a string header a name pointing
// into the caller's blocks cost each collection 15-45 ns a name at a
// million, BenchmarkSyncSharedMemory's mark-ns/name). A shard's slices are
// never written once the names holding them is published; reads take no
// lock and allocate nothing.
type names[V any] struct {
	shards [nameShards]shard[V]
	n      int
}

// shard is one shard of a names.
type shard[V any] struct {
	tags []uint16 // tags[i] is the tag of name i (place); sorted
	keys keyList  // sorted by tag, then by name; each once
	vals []V      // vals[i] is the value of name i
}

// keyList is a shard's names: their bytes one after the other, and where
// each ends. The strings at returns are the block's bytes: a block is
// never written once its shard is published (namesDelta writes only the
// copy it made), so a name handed out stays as it was.
type keyList struct {
	text []byte
	ends []uint32 // ends[i] is the end of name i in text
}

// newKeyList returns a list with room for n names of size bytes in all.
func newKeyList(n, size int) keyList {
	return keyList{text: make([]byte, 0, size), ends: make([]uint32, 0, n)}
}

func (k *keyList) len() int { return len(k.ends) }

// at returns name i, allocating nothing.
func (k *keyList) at(i int) string {
	var lo uint32
	if i > 0 {
		lo = k.ends[i-1]
	}
	hi := k.ends[i]
	if lo == hi {
		return ""
	}
	return unsafe.String(&k.text[lo], int(hi-lo))
}

// add appends name.
func (k *keyList) add(name string) {
	k.text = append(k.text, name...)
	k.ends = append(k.ends, uint32(len(k.text)))
}

// clone returns a copy of k that shares nothing with it.
func (k *keyList) clone() keyList {
	return keyList{text: slices.Clone(k.text), ends: slices.Clone(k.ends)}
}

// insert puts name at i, in k's own blocks: only for a copy not yet
// published (namesDelta).
func (k *keyList) insert(i int, name string) {
	var at uint32
	if i > 0 {
		at = k.ends[i-1]
	}
	k.text = slices.Insert(k.text, int(at), []byte(name)...)
	k.ends = slices.Insert(k.ends, i, at)
	for j := i; j < len(k.ends); j++ {
		k.ends[j] += uint32(len(name))
	}
}

// delete removes name i, as insert.
func (k *keyList) delete(i int) {
	var lo uint32
	if i > 0 {
		lo = k.ends[i-1]
	}
	n := k.ends[i] - lo
	k.text = slices.Delete(k.text, int(lo), int(lo+n))
	k.ends = slices.Delete(k.ends, i, i+1)
	for j := i; j < len(k.ends); j++ {
		k.ends[j] -= n
	}
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
		if k := sh.keys.at(i); k >= name {
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
			for j := range sh.keys.len() {
				if !yield(sh.keys.at(j), sh.vals[j]) {
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
	var kept []int // the names kept of a shard, reused for each
	for i := range s.shards {
		sh := &s.shards[i]
		kept = kept[:0]
		size := 0
		for j := range sh.keys.len() {
			if k := sh.keys.at(j); keep(k) {
				kept = append(kept, j)
				size += len(k)
			}
		}
		if len(kept) == sh.keys.len() {
			out.shards[i] = *sh
			out.n += len(kept)
			continue
		}
		if len(kept) == 0 {
			continue
		}
		f := shard[V]{tags: make([]uint16, 0, len(kept)), keys: newKeyList(len(kept), size), vals: make([]V, 0, len(kept))}
		for _, j := range kept {
			f.tags = append(f.tags, sh.tags[j])
			f.keys.add(sh.keys.at(j))
			f.vals = append(f.vals, sh.vals[j])
		}
		out.shards[i] = f
		out.n += len(kept)
	}
	return out
}

// namesBuilder builds a names from nothing: put appends to the name's
// shard, and build sorts each shard once, which costs O(n log n) where
// inserting each name in its place would cost O(n²/nameShards). Its zero
// value is ready.
//
// It stages the names in lists a shard, which build sorts in place and
// then copies into the shard's block (keyList): a list of entries (name,
// tag, value) to sort, then copied into the shards, was 30 bytes a name
// of garbage (24 bytes an entry, a quarter more room), 65 MB at the first
// sync of a million names (two sets); the staging is now a string header
// and a 4-byte sequence a name. A builder told each name first
// (expect) makes each shard at its size; without, a shard has room for
// its share of hint and a quarter more, grown by append past it.
type namesBuilder[V any] struct {
	shards [nameShards]staged[V]
	seqs   [nameShards][]int32 // the order of each shard's puts: of a name put twice, the last is kept
	sizes  *[nameShards]int32  // expect's counts; nil: hint's
	per    int                 // hint's share of a shard
	n      int32
}

// staged is a shard being built: its names as the caller's strings until
// build copies them into the shard's block.
type staged[V any] struct {
	tags []uint16
	keys []string
	vals []V
}

// newNamesBuilder returns a builder for about hint names.
func newNamesBuilder[V any](hint int) *namesBuilder[V] {
	return &namesBuilder[V]{per: hint / nameShards}
}

// expect counts name towards its shard's size; called for every name
// before the first put, it makes each shard at its size. A name put that
// expect was not told of (folded into another, say) only grows its shard.
func (b *namesBuilder[V]) expect(name string) {
	if b.sizes == nil {
		b.sizes = &[nameShards]int32{}
	}
	i, _ := place(name)
	b.sizes[i]++
}

// put adds name with v; of a name put more than once, the last v is kept.
func (b *namesBuilder[V]) put(name string, v V) {
	i, tag := place(name)
	sh := &b.shards[i]
	if sh.keys == nil {
		size := b.per + b.per/4 + 8 // the hash spreads names within a few percent
		if b.sizes != nil {
			size = max(int(b.sizes[i]), 1)
		}
		sh.tags, sh.keys, sh.vals = make([]uint16, 0, size), make([]string, 0, size), make([]V, 0, size)
		b.seqs[i] = make([]int32, 0, size)
	}
	sh.tags, sh.keys, sh.vals = append(sh.tags, tag), append(sh.keys, name), append(sh.vals, v)
	b.seqs[i] = append(b.seqs[i], b.n)
	b.n++
}

// build returns the names put, and empties b. It lets handshakes run
// between shards (y).
func (b *namesBuilder[V]) build(y *sched.Yielder) *names[V] {
	s := &names[V]{}
	for i := range b.shards {
		y.Maybe()
		sh, seq := b.shards[i], b.seqs[i]
		b.shards[i], b.seqs[i] = staged[V]{}, nil // the staging goes as the shards are built
		if len(sh.keys) == 0 {
			continue
		}
		sort.Sort(shardSort[V]{&sh, seq})
		// Of each run of one name, the last put is kept, moved down.
		w, size := 0, 0
		for j := range sh.keys {
			if j+1 == len(sh.keys) || sh.keys[j+1] != sh.keys[j] {
				sh.tags[w], sh.keys[w], sh.vals[w] = sh.tags[j], sh.keys[j], sh.vals[j]
				size += len(sh.keys[j])
				w++
			}
		}
		clear(sh.vals[w:]) // no value held past the end
		keys := newKeyList(w, size)
		for _, k := range sh.keys[:w] {
			keys.add(k)
		}
		s.shards[i] = shard[V]{tags: sh.tags[:w], keys: keys, vals: sh.vals[:w]}
		s.n += w
	}
	return s
}

// shardSort sorts a shard being built by tag, then name, then put order.
type shardSort[V any] struct {
	sh  *staged[V]
	seq []int32
}

func (x shardSort[V]) Len() int { return len(x.seq) }

func (x shardSort[V]) Less(i, j int) bool {
	if a, b := x.sh.tags[i], x.sh.tags[j]; a != b {
		return a < b
	}
	if a, b := x.sh.keys[i], x.sh.keys[j]; a != b {
		return a < b
	}
	return x.seq[i] < x.seq[j]
}

func (x shardSort[V]) Swap(i, j int) {
	sh := x.sh
	sh.tags[i], sh.tags[j] = sh.tags[j], sh.tags[i]
	sh.keys[i], sh.keys[j] = sh.keys[j], sh.keys[i]
	sh.vals[i], sh.vals[j] = sh.vals[j], sh.vals[i]
	x.seq[i], x.seq[j] = x.seq[j], x.seq[i]
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
		sh.tags, sh.keys, sh.vals = slices.Clone(sh.tags), sh.keys.clone(), slices.Clone(sh.vals)
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
	sh.keys.insert(i, name)
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
	sh.keys.delete(i)
	sh.vals = slices.Delete(sh.vals, i, i+1)
	d.s.n--
}

// nameSet is a set of names (managed subjects, served hostnames).
type nameSet = names[struct{}]
