// Package gcgoal bounds the garbage collector's heap goal above the live
// heap, from below and from above: after every collection the next goal
// is at least the live heap plus a floor, and at least the runtime's
// minimum of 4 MB, and at most the live heap plus a ceiling (but never
// less than a quarter above it), where GOGC alone makes it the live heap
// times (1 + GOGC/100).
//
// The floor is for a small node. It keeps 1–3 MB live, so without a floor
// its goal is 4–6 MB. A TLS handshake allocates about 40 kB, and the
// collector then ran every 50–70 handshakes, marking the same live heap
// each time: 10–15 % of the CPU of a handshake (BENCHMARKS.md, "The
// collector on a small heap"). Once the live heap is above floor×100/GOGC
// the floor changes nothing.
//
// The ceiling is for a node with many hostnames (Start). Between the two,
// GOGC alone governs. A memory limit (GOMEMLIMIT) still applies: the
// runtime collects sooner to stay under it, whatever GOGC says.
//
// The runtime has no setting for a minimum goal (golang/go#23044 and
// #44309 proposed one; GOMEMLIMIT is a ceiling, and #57175 records a web
// proxy with the same small-heap problem), and its ceiling is absolute,
// not above the live heap, so this is written here, small: a finalizer
// that re-arms itself runs once after every collection, reads the live
// heap from runtime/metrics and sets GOGC for the next cycle, the
// mechanism of bytedance's gctuner. It is process-wide, so only a main
// package starts it.
//
// cmd/spine starts it; a node raises the floor while its first sync runs
// at scale (Raise, Warm): that sync's garbage made collections often
// enough that their mark phases delayed the warm-up's handshakes.
//
// Imports: only the standard library.
// Imported by: only cmd/spine, internal/node, tests.
package gcgoal

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
)

// DefaultFloor is the floor `spine serve` and `spine up` use: 16 MiB more
// than the live heap, at most that much more resident memory on a small
// node, for a collection every few hundred handshakes instead of every 50.
const DefaultFloor = 16 << 20

// heapMinimum is the runtime's smallest heap goal at GOGC=100 (4 MB); the
// runtime scales it with GOGC, so a GOGC of 400 makes it 16 MB.
const heapMinimum = 4 << 20

// DefaultCeiling is the ceiling `spine serve` and `spine up` use: at most
// 128 MiB of garbage above the live heap, once the live heap is more than
// that (at GOGC=100, about 200,000 hostnames; BENCHMARKS.md, "The
// collector's headroom at a million hostnames").
const DefaultCeiling = 128 << 20

// MinPercent is the least GOGC the ceiling sets: the collector may always
// let a quarter of the live heap accumulate as garbage, so that a node
// whose live heap is many times the ceiling does not collect without end.
const MinPercent = 25

// Start keeps the heap goal at least floor bytes above the live heap, and
// at most ceiling bytes above it (but never less than MinPercent of it;
// 0: no ceiling), until the returned stop is called. The floor wins where
// the two disagree (Raise). It does nothing and returns a no-op when both
// are 0, when GOGC is set in the environment (the operator chose) or when
// the collector is off; Start is meant to be called once, by main.
//
// The ceiling is for a node with many hostnames: its live heap grows with
// them (about 200 bytes each), and GOGC=100 lets as much garbage again
// accumulate before each collection. The runtime keeps that memory
// resident (it returns free pages only above about 1.1 times its goal),
// and the longer the collector waits, the more pages the objects that
// stay (certificates loaded meanwhile) are spread over: at a million
// hostnames (265 MB live), after 10,000 certificates were loaded, the heap
// in use was 371-375 MB, and 324-328 MB with DefaultCeiling (GOGC 45),
// for half as many collections again (BENCHMARKS.md, "The collector's
// headroom at a million hostnames").
func Start(floor, ceiling uint64) (stop func()) {
	if floor == 0 && ceiling == 0 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	if base <= 0 {
		return func() {}
	}
	t := &tuner{floor: floor, ceiling: ceiling, base: base, current: base}
	t.sample = []metrics.Sample{{Name: liveMetric}}
	t.afterGC() // the floor holds before the first collection too
	runningMu.Lock()
	running = t
	runningMu.Unlock()
	return t.stop
}

// WarmFloor is the most the floor is raised to while a node with many
// hostnames runs its first sync (Raise(Warm()); syncer's warm-up, node):
// at a million hostnames that sync allocates 0.7-1.1 GB, and at GOGC=100
// the collector ran every few hundred megabytes. On one processor each
// mark phase's background worker held it for 10-20 ms at a time, and a
// handshake waiting meanwhile waited that long: 3 % of the warm-up's
// handshakes from the store took over 5 ms, none with the collector off
// (a runtime trace, BENCHMARKS.md). The heap grows only by what is
// allocated meanwhile, so a smaller first sync never reaches it; Warm
// keeps it within the machine's memory, and GOMEMLIMIT still caps it.
//
// A gigabyte was the floor until the first sync allocated 740 MB at a
// million (PostgreSQL): the warm-up's handshakes then took the heap past
// it, and the one collection left (a 1.2-1.6 s mark phase) was what most
// of the slow handshakes waited behind (a trace: 79 % of their time
// runnable, the mark worker running). At 1.5 GiB the warm-up collected
// only when the sync was applied: p99 over it 3.8-6.0 ms (median 4.6,
// nine runs) against 5.5-8.4 (median 7.6, seven), its peak RSS up to
// 60-120 MiB higher (BENCHMARKS.md, "The first sync's transient lists
// and the warm-up's one collection"). Two gigabytes, tried when the
// sync allocated 1.7 GB, changed nothing but the peak then; since the
// warm-up's handshakes get more of the processor (sched.Slice), a 1M
// PostgreSQL warm-up allocates 1.5-1.6 GB with them, and at 1.5 GiB it
// collected before its end again (a mark phase of 0.5-0.9 s, the worker
// 10-20 ms at a time; BENCHMARKS.md, "What a runtime trace of a 1M node
// found on PostgreSQL").
const WarmFloor = 2 << 30 // 2 GiB

// Warm returns the floor for a first sync: WarmFloor, at most a quarter
// of the memory the process may use (its cgroup's memory.max, else the
// machine's), and at least DefaultFloor. A node at a million hostnames
// peaks at about 1.2 GiB over its first sync with the full floor; in a
// container of 2 GiB that would leave little room, so there the sync
// collects more often instead: its handshakes wait more, nothing else.
func Warm() uint64 {
	return warmFloor(memoryLimit())
}

func warmFloor(limit uint64) uint64 {
	f := uint64(WarmFloor)
	if limit > 0 {
		f = min(f, limit/4)
	}
	return max(f, DefaultFloor)
}

// memoryLimit returns the memory the process may use, 0 if unknown: the
// cgroup (v2) limit if one is set, else the machine's total.
func memoryLimit() uint64 {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			return n // "max" (no limit) does not parse: the machine's
		}
	}
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	return memTotal(string(b))
}

// memTotal reads MemTotal from /proc/meminfo's text, in bytes; 0 if absent.
func memTotal(meminfo string) uint64 {
	for l := range strings.Lines(meminfo) {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// running is the tuner Start started, for Raise; nil if none runs.
var (
	runningMu sync.Mutex
	running   *tuner
)

// Raise makes the floor at least floor, at once, until the returned
// restore is called (once; later calls do nothing). It does nothing when
// Start started no tuner (GOGC set by the operator, the collector off, a
// test). Raises do not nest: a restore sets the floor Raise found.
func Raise(floor uint64) (restore func()) {
	runningMu.Lock()
	t := running
	runningMu.Unlock()
	if t == nil {
		return func() {}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || floor <= t.floor {
		return func() {}
	}
	prev := t.floor
	t.floor = floor
	t.apply()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			if !t.stopped {
				t.floor = prev
				t.apply()
			}
		})
	}
}

// liveMetric is the heap marked live by the last collection.
const liveMetric = "/gc/heap/live:bytes"

type tuner struct {
	floor   uint64
	ceiling uint64 // 0: none
	base    int    // GOGC without the floor
	sample  []metrics.Sample
	current int // GOGC last set

	mu      sync.Mutex
	stopped bool
}

// sentinel is allocated for its finalizer only: it becomes unreachable at
// once, so the next collection finds it and queues the finalizer.
type sentinel struct{ _ [16]byte }

func (t *tuner) arm() {
	runtime.SetFinalizer(&sentinel{}, func(*sentinel) { t.afterGC() })
}

// afterGC runs on the finalizer goroutine after a collection: it sets GOGC
// for the next cycle and re-arms for the one after.
func (t *tuner) afterGC() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.apply()
	t.arm()
}

// apply sets GOGC for the live heap of the last collection, the floor
// and the ceiling; under t.mu.
func (t *tuner) apply() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		if p := percent(t.sample[0].Value.Uint64(), t.floor, t.ceiling, t.base); p != t.current {
			debug.SetGCPercent(p)
			t.current = p
		}
	}
}

func (t *tuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.stopped = true
		debug.SetGCPercent(t.base)
	}
	runningMu.Lock()
	if running == t {
		running = nil
	}
	runningMu.Unlock()
}

// percent is the GOGC that makes the goal after a collection that found
// live bytes at least live+floor, and never below base. Two terms set the
// goal: live×(1+GOGC/100), and the runtime's minimum, heapMinimum×GOGC/100;
// the result is the smaller GOGC for which either reaches live+floor, so a
// tiny live heap (or none yet) gets the minimum's term, not a GOGC of
// thousands. It moves in steps of base/4 so that a live heap that wobbles
// by a few kilobytes does not reset GOGC after every cycle.
//
// Where the floor asks for no more than base, a ceiling (not 0) makes the
// goal at most live+ceiling: GOGC ceiling×100/live, rounded down to a
// step of 5, at least MinPercent, at most base.
func percent(live, floor, ceiling uint64, base int) int {
	want := (live + floor) * 100 / heapMinimum
	if live > 0 {
		want = min(want, floor*100/live)
	}
	if want <= uint64(base) {
		if ceiling == 0 || live == 0 {
			return base
		}
		c := ceiling * 100 / live / 5 * 5
		return int(min(max(c, MinPercent), uint64(base)))
	}
	step := uint64(max(base/4, 1))
	return int((want + step - 1) / step * step)
}
