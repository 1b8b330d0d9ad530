package store

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spine-platform/spine/internal/sched"
)

// packed's strings keep their bytes across blocks: a later string never
// writes over an earlier one, and a long one is its own.
func TestPackedStrings(t *testing.T) {
	var p packed
	var got, want []string
	buf := make([]byte, 0, packBlock)
	for i := range 3 * packBlock / 20 { // several blocks
		b := fmt.Appendf(buf[:0], "s%06d.example.test", i)
		if i%1000 == 0 {
			b = append(b, strings.Repeat("x", packBlock/16+1)...) // past the limit
		}
		want = append(want, string(b))
		got = append(got, p.of(b))
		clear(b) // the caller's buffer is reused, as sql.RawBytes is
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("string %d = %.40q, want %.40q", i, got[i], want[i])
		}
	}
	if s := p.of(nil); s != "" {
		t.Errorf("of(nil) = %q", s)
	}
}

// A read of a few services takes blocks about the size of its strings,
// not packBlock: the API may remember such a read.
func TestPackedSmallRead(t *testing.T) {
	var p packed
	for i := range 3 {
		p.of(fmt.Appendf(nil, "svc_%024d", i))
	}
	if c := cap(p.buf); c > packFirst {
		t.Errorf("three IDs took a block of %d bytes, want at most %d", c, packFirst)
	}
}

// chunkedStrings gives back what was added, in order, across its chunks,
// and never holds a chunk over 64K strings.
func TestChunkedStrings(t *testing.T) {
	for _, n := range []int{0, 1, 256, 257, 100_000} {
		var c chunkedStrings
		for i := range n {
			c.add(strconv.Itoa(i))
		}
		for _, ch := range c.full {
			if cap(ch) > 1<<16 {
				t.Fatalf("n=%d: a chunk of %d", n, cap(ch))
			}
		}
		chunks := c.chunks()
		if (n == 0) != (chunks == nil) {
			t.Fatalf("n=%d: %d chunks (nil %v)", n, len(chunks), chunks == nil)
		}
		for _, ch := range chunks {
			if len(ch) > 1<<16 {
				t.Fatalf("n=%d: a chunk of %d given", n, len(ch))
			}
		}
		got := slices.Concat(chunks...)
		if len(got) != n {
			t.Fatalf("n=%d: %d strings", n, len(got))
		}
		for i, s := range got {
			if s != strconv.Itoa(i) {
				t.Fatalf("n=%d: element %d is %q", n, i, s)
			}
		}
	}
}

// A read's ID index finds every service it was made of, at every size
// (a table at most half full, so probes run past taken slots), and no
// other ID, not even a prefix or an extension of one.
func TestIDIndex(t *testing.T) {
	var y sched.Yielder
	for _, n := range []int{1, 2, 3, 7, 64, 1000, 5000} {
		ss := make([]Service, n)
		for i := range ss {
			ss[i].ID = fmt.Sprintf("svc_%x", i*7919)
		}
		x := indexByID(ss, &y)
		if len(x.slots) < 2*n || len(x.slots)&(len(x.slots)-1) != 0 {
			t.Fatalf("%d services: %d slots, want a power of two at least %d", n, len(x.slots), 2*n)
		}
		for i := range ss {
			if got := x.find([]byte(ss[i].ID)); got != i {
				t.Fatalf("%d services: find(%q) = %d, want %d", n, ss[i].ID, got, i)
			}
		}
		for _, id := range []string{"", "svc_", ss[0].ID + "0", ss[n-1].ID[:len(ss[n-1].ID)-1], "other"} {
			if got := x.find([]byte(id)); got != -1 && ss[got].ID != id {
				t.Errorf("%d services: find(%q) = %d (%q), want -1", n, id, got, ss[got].ID)
			}
		}
	}
}
