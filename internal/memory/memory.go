// Package memory gives the heap's peaks back to the system. A node's
// largest allocations come in bursts (the first sync reads every service
// while the certificate manager and the snapshot writer start; at a
// million hostnames, twice the live heap at once), and the Go runtime
// keeps the memory of such a burst resident afterwards: its scavenger
// returns free memory only around collections, and an idle node collects
// rarely. It owns nothing else.
//
// Imports: only the standard library.
package memory

import (
	"runtime/debug"
	"runtime/metrics"
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

// Release gives the heap's free memory back to the system if dropped says
// the caller has just dropped a burst (its garbage is not free until a
// collection, and the collection during the burst set a goal that lets
// the heap keep it: at 1M hostnames a read of every service left 1.8 GB
// in use against a 2.3 GB goal), or if Peak says the heap holds one: a
// forced collection (debug.FreeOSMemory), the cost of one cycle over the
// live heap. It reports whether it did. Safe for concurrent use.
func Release(dropped bool) bool {
	if !dropped && !Peak() {
		return false
	}
	debug.FreeOSMemory()
	return true
}
