// Package memtest measures what the collector pays for a structure, for
// benchmarks: the processor time of a mark phase over the heap as it is,
// and, for tests, whether a type holds a pointer at all (HoldsPointer).
//
// Imports: only the standard library.
// Imported by: tests only.
package memtest

import (
	"runtime"
	"runtime/metrics"
	"slices"
)

// markClasses are the runtime's estimates of the mark phase's processor
// time: the goroutines' assists, the dedicated and fractional workers
// ("dedicated"), and the workers on idle processors.
var markClasses = []string{
	"/cpu/classes/gc/mark/assist:cpu-seconds",
	"/cpu/classes/gc/mark/dedicated:cpu-seconds",
	"/cpu/classes/gc/mark/idle:cpu-seconds",
}

// MarkCPU returns the processor time, in nanoseconds, of the mark phase of
// a forced collection: the median of five, for the noise of one. The
// difference between two calls, a structure alive at the first and dead
// at the second, is what each collection pays to mark it.
func MarkCPU() int64 {
	s := make([]metrics.Sample, len(markClasses))
	for i, n := range markClasses {
		s[i].Name = n
	}
	total := func() float64 {
		metrics.Read(s)
		var t float64
		for _, v := range s {
			t += v.Value.Float64()
		}
		return t
	}
	var runs []int64
	for range 5 {
		t0 := total()
		runtime.GC()
		runs = append(runs, int64((total()-t0)*1e9))
	}
	slices.Sort(runs)
	return runs[len(runs)/2]
}
