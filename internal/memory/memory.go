// Package memory has the heap's peaks given back to the system. A node's
// largest allocations come in bursts (the first sync reads every service
// while the certificate manager and the snapshot writer start; at a
// million hostnames, twice the live heap at once), and the Go runtime
// keeps the memory of such a burst resident afterwards: its scavenger
// returns free memory only around collections, slowly, and an idle node
// collects rarely. Release collects a burst; the pages are returned by
// the edge at a moment without handshakes (Pending). It owns nothing
// else.
//
// Imports: only the standard library.
package memory

import (
	"runtime"
	"runtime/metrics"
	"sync/atomic"
)

// Free and goal are the runtime's metrics Peak reads.
const (
	free = "/memory/classes/heap/free:bytes" // free heap memory the system still backs
	goal = "/gc/heap/goal:bytes"             // the heap size the next collection aims at
)

// MinPeak is the least free memory worth a Release: below it, a forced
// collection costs more than the memory it returns.
const MinPeak = 64 << 20

// Peak reports whether the heap holds more free memory, still resident,
// than three quarters of its collection goal: what is left of a burst, not
// the headroom the collector grows into between two collections (the goal
// less the live heap: about half the goal at GOGC=100, which a node that
// collects often holds after every collection, and must not pay a forced
// one for). It reads two runtime metrics and costs no collection.
func Peak() bool {
	s := []metrics.Sample{{Name: free}, {Name: goal}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return false
	}
	return peak(s[0].Value.Uint64(), s[1].Value.Uint64())
}

func peak(free, goal uint64) bool { return free >= MinPeak && free > goal/4*3 }

// Release collects the heap's garbage if dropped says the caller has just
// dropped a burst (its garbage is not free until a collection, and the
// collection during the burst set a goal that lets the heap keep it: at
// 1M hostnames a read of every service left 1.8 GB in use against a 2.3
// GB goal), or if Peak says the heap holds one and no return is pending:
// a forced collection (runtime.GC), the cost of one cycle over the live
// heap, whose mark phase yields to other goroutines as any does. It
// reports whether it collected. Safe for concurrent use.
//
// It does not return the pages itself: it marks a return pending
// (Pending), for the edge to make once no handshake is in flight
// (edge's releaser, with debug.FreeOSMemory), and the runtime's
// background scavenger returns them meanwhile, about 1 % of a processor
// at a time, down to its goal. debug.FreeOSMemory returns every free page
// in one call that nothing preempts: after a 1M first sync it held the one
// processor 51-129 ms while handshakes waited (runtime traces,
// BENCHMARKS.md). While a return is pending, a Peak is that memory,
// which a collection would not return: Release(false) then does nothing.
func Release(dropped bool) bool {
	if !dropped && (pending.Load() || !Peak()) {
		return false
	}
	runtime.GC()
	pending.Store(true)
	return true
}

// Settle is Release(false) for a caller that expects garbage soon after a
// burst it dropped (syncer's two syncs after a read of every service: the
// read's followers, the snapshot writer's first write and the
// certificate manager's start, finish after it): unless Release collects
// a peak, it marks a return pending (Pending) without collecting, and the
// edge's releaser collects and returns at its first second without a
// connection (debug.FreeOSMemory), if that frees at least 16 MiB then.
// Release(true) there forced a collection at the sync's tick, whatever
// the handshakes were doing, and the releaser's return made another: at
// a million hostnames each mark phase is 150-450 ms of handshakes waiting
// behind the collector's worker 10 ms at a time (BENCHMARKS.md, "The
// collections after a full read wait for a quiet second"). It reports
// whether it collected. Safe for concurrent use.
func Settle() bool {
	if Release(false) {
		return true
	}
	pending.Store(true)
	return false
}

// pending is set by Release and Settle, and cleared by Returned.
var pending atomic.Bool

// Pending reports whether Release collected a burst whose free pages are
// still to be returned (Returned not called since).
func Pending() bool { return pending.Load() }

// Returned tells Release that the heap's free pages were returned to the
// system (debug.FreeOSMemory), or were not worth it: no return is pending.
func Returned() { pending.Store(false) }
