package sched

import (
	"cmp"
	"slices"
)

// sortRun is how many elements Sort sorts at once with slices.Sort: about
// 100 µs of strings, well within a Slice.
const sortRun = 1024

// Sort sorts s in increasing order, as slices.Sort does, letting other
// goroutines run through y at least every Slice. slices.Sort of the
// million hostnames of a node's first sync held the processor for most of
// a second, in runs of 10 ms (the runtime's preemption): the handshakes
// waiting meanwhile took 10-20 ms (a runtime trace, BENCHMARKS.md). Sort
// sorts runs of sortRun elements, then merges them pairwise through a
// buffer as large as s: about a tenth more time than slices.Sort at a
// million strings, and len(s) more elements of memory while it runs.
func Sort[S ~[]E, E cmp.Ordered](s S, y *Yielder) {
	if len(s) <= sortRun {
		slices.Sort(s)
		return
	}
	for i := 0; i < len(s); i += sortRun {
		slices.Sort(s[i:min(i+sortRun, len(s))])
		y.Maybe()
	}
	src, dst := s, make(S, len(s))
	for width := sortRun; width < len(s); width *= 2 {
		for lo := 0; lo < len(s); lo += 2 * width {
			mid, hi := min(lo+width, len(s)), min(lo+2*width, len(s))
			merge(dst[lo:hi], src[lo:mid], src[mid:hi], y)
		}
		src, dst = dst, src
	}
	if &src[0] != &s[0] {
		copy(s, src)
	}
}

// merge merges the sorted a and b into out (len(a)+len(b) long), taking
// a's element first of two equal ones.
func merge[E cmp.Ordered](out, a, b []E, y *Yielder) {
	i, j, k := 0, 0, 0
	for i < len(a) && j < len(b) {
		y.Every(k)
		if cmp.Less(b[j], a[i]) {
			out[k] = b[j]
			j++
		} else {
			out[k] = a[i]
			i++
		}
		k++
	}
	k += copy(out[k:], a[i:])
	copy(out[k:], b[j:])
}
