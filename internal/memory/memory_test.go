package memory

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// A burst's free memory is a peak; the collector's headroom is not.
func TestPeak(t *testing.T) {
	for _, c := range []struct {
		free, goal uint64
		want       bool
	}{
		{0, 1 << 30, false},
		{MinPeak - 1, 1 << 20, false},  // too little to be worth a collection
		{400 << 20, 1 << 30, false},    // headroom: under half the goal
		{650 << 20, 1300 << 20, false}, // a collection's headroom at GOGC=100: half the goal
		{1400 << 20, 1300 << 20, true}, // a million hostnames' first sync
		{MinPeak, 80 << 20, true},      // small heap, a burst of 64 MiB
		{800 << 20, 1000 << 20, true},  // more than three quarters of the goal free
	} {
		if got := peak(c.free, c.goal); got != c.want {
			t.Errorf("peak(free %d MiB, goal %d MiB) = %v, want %v", c.free>>20, c.goal>>20, got, c.want)
		}
	}
}

// Release collects a burst and leaves its pages for a return (Pending):
// while one is pending, a peak is that memory and Release(false) does
// nothing; once Returned, a peak that is gone asks for nothing; told a
// burst was just dropped, it collects whatever Peak says.
func TestRelease(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer Returned()
	Returned()
	burst := make([][]byte, 0, 256)
	for range 256 {
		burst = append(burst, make([]byte, 1<<20))
	}
	runtime.KeepAlive(burst)
	burst = nil
	runtime.GC() // the burst is free, still resident
	if !Peak() {
		t.Skip("the runtime returned the burst by itself") // its scavenger may have run
	}
	if !Release(false) {
		t.Fatal("Release did nothing with a 256 MiB burst free")
	}
	if !Pending() {
		t.Fatal("Release collected a burst and left no return pending")
	}
	if Release(false) {
		t.Error("Release collected again with a return pending")
	}
	debug.FreeOSMemory() // what the edge's releaser does
	Returned()
	if Pending() {
		t.Error("a return still pending after Returned")
	}
	if Peak() {
		t.Error("after the return the heap still holds a peak")
	}
	if Release(false) {
		t.Error("a Release with no peak forced a collection for nothing")
	}
	if !Release(true) {
		t.Error("Release after a burst dropped did nothing")
	}
	if !Pending() {
		t.Error("Release after a burst dropped left no return pending")
	}
}

// Settle after a burst leaves the collection to the edge's releaser: a
// return pending, no collection made; with one pending already, nothing.
func TestSettle(t *testing.T) {
	defer Returned()
	debug.FreeOSMemory() // whatever an earlier test left: no peak (Peak), no cycle under way
	Returned()
	if Peak() {
		t.Fatal("the heap holds a peak after debug.FreeOSMemory")
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if Settle() {
		t.Error("Settle collected with no peak in the heap")
	}
	runtime.ReadMemStats(&after)
	if after.NumForcedGC != before.NumForcedGC {
		t.Errorf("Settle forced %d collections; want none", after.NumForcedGC-before.NumForcedGC)
	}
	if !Pending() {
		t.Error("Settle left no return pending for the releaser")
	}
	if Settle() || !Pending() {
		t.Error("a second Settle collected, or cleared the pending return")
	}
}
