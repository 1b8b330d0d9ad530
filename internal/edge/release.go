package edge

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/internal/memory"
)

// The Go runtime keeps the memory a burst of connections freed (handshake
// garbage, grown stacks, the room the GC let the heap grow into) and
// returns it to the operating system only slowly, and only above about
// twice the live heap: after a burst, the edge's resident memory follows
// its peak, not what its connections hold. So once new connections have
// been quiet for releaseQuiet ticks, a second (no handshake in flight, and
// each tick's accepts at most a quarter of the busiest tick since the last
// release; none at all once the live heap is trickleLive or more: calm),
// the releaser runs a GC and returns every free page
// (debug.FreeOSMemory), if that frees at least releaseMinBytes and a
// quarter of the live heap: the GC costs CPU in proportion to the live
// heap, so it must free as much.
//
// A sync's burst too (the node's first sync, a read of every service):
// syncer's Release (memory.Release) collects it and leaves its pages to
// the releaser (memory.Pending), which returns them at the first second
// without a connection, and the runtime's scavenger meanwhile.
//
// Not during a warm-up (warm.go): the node's first sync is then building
// its largest allocation, so a collection frees little that the sync will
// not take again, and at a million hostnames its mark phase (340 MB live
// at 1.5 s) held the one processor 10 ms at a time while the warm-up's
// handshakes waited; the sync collects its own peak once applied
// (syncer's Release), and the releaser returns it after.
//
// Returning memory costs CPU: the GC, and an madvise call per run of free
// pages, cheap on bare metal but not on a virtual machine (BENCHMARKS.md,
// "Idle connections", has the figures). So releases are at least releaseEvery
// apart, and their time is metered: on average at most 1/releaseShare of
// the time (1 % of a core), with up to releaseBudget in hand.
const (
	releaseTick     = 250 * time.Millisecond
	releaseQuiet    = 4 // ticks
	releaseEvery    = 10 * time.Second
	releaseMinBytes = 16 << 20
	releaseShare    = 100
	releaseBudget   = 5 * time.Second
	trickleLive     = 64 << 20
)

// connCounts is what the releaser learns from the HTTPS listeners.
type connCounts struct {
	accepted   atomic.Int64 // TCP connections accepted
	handshakes atomic.Int64 // TLS handshakes in flight
}

// releaser returns memory to the operating system after bursts of
// connections (see above). Its methods are safe for concurrent use.
type releaser struct {
	conns connCounts
	log   *slog.Logger
	// hold, if set, reports whether releases wait (the edge's warm-up).
	hold func() bool

	mu      sync.Mutex
	quit    chan struct{} // nil unless running
	done    chan struct{}
	stopped bool
}

// start starts the releaser's goroutine, unless it runs or was stopped.
func (r *releaser) start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.quit != nil || r.stopped {
		return
	}
	r.quit, r.done = make(chan struct{}), make(chan struct{})
	go r.run(r.quit, r.done)
}

// stop ends the releaser's goroutine for good and waits for it.
func (r *releaser) stop() {
	r.mu.Lock()
	r.stopped = true
	quit, done := r.quit, r.done
	r.quit = nil
	r.mu.Unlock()
	if quit != nil {
		close(quit)
		<-done
	}
}

func (r *releaser) run(quit, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(releaseTick)
	defer t.Stop()
	var (
		seen, peak int64     // accepts counted so far; most in one tick since the last release
		quiet      int       // ticks in a row
		last       time.Time // of the last release
		budget     = releaseBudget
	)
	for {
		select {
		case <-quit:
			return
		case now := <-t.C:
			budget = min(budget+releaseTick/releaseShare, releaseBudget)
			n := r.conns.accepted.Load()
			rate := n - seen
			seen = n
			peak = max(peak, rate)
			pending := memory.Pending()
			free, live := releasable()
			if calm(rate, peak, r.conns.handshakes.Load(), pending, live) {
				quiet++
			} else {
				quiet = 0
			}
			if quiet < releaseQuiet || now.Sub(last) < releaseEvery || budget <= 0 || r.held() {
				continue
			}
			if !worthReleasing(free, live, pending) {
				if pending {
					memory.Returned() // the runtime's scavenger returned it meanwhile
				}
				continue
			}
			start := time.Now()
			debug.FreeOSMemory()
			took := time.Since(start)
			budget -= took
			memory.Returned()
			after := "a burst of connections"
			if pending {
				after = "a sync"
			}
			r.log.Debug("returned free memory to the OS", "after", after,
				"free_bytes", free, "live_bytes", live, "took", took.Round(time.Millisecond), "rate", rate, "peak", peak)
			peak, quiet, last = 0, 0, now
		}
	}
}

// held reports whether releases wait for now (hold).
func (r *releaser) held() bool { return r.hold != nil && r.hold() }

// quietAfterBurst reports whether the connections accepted in the last
// tick, rate, are at most a quarter of peak, the most in one tick since
// the last release, and peak is not zero.
func quietAfterBurst(rate, peak int64) bool {
	return peak > 0 && rate*4 <= peak
}

// calm reports whether a tick lets a release come: no handshake in
// flight, and either a burst of connections is over (quietAfterBurst), or
// a sync's burst waits for its pages to be returned (memory.Pending) and
// the tick accepted no connection at all. A release's debug.FreeOSMemory
// holds the processor until every free page is returned (51-129 ms after
// a first sync at a million hostnames): a handshake that came meanwhile
// would wait for all of it.
//
// With a live heap of trickleLive or more, a burst is over only at a tick
// that accepted no connection: the release's collection then marks for
// tens of milliseconds on one processor (150-450 at a million hostnames),
// and a trickle's handshakes meanwhile would wait behind the collector's
// worker, up to 10-20 ms each, and behind the return's scavenge. A
// quarter of the busiest tick lets a release come in the middle of a
// steady stream a quarter as fast as an earlier burst, whenever four
// ticks in a row find no handshake in flight (BENCHMARKS.md, "The
// collections after a full read wait for a quiet second").
func calm(rate, peak, inFlight int64, pending bool, live uint64) bool {
	switch {
	case inFlight != 0:
		return false
	case rate == 0:
		return pending || peak > 0
	}
	return live < trickleLive && quietAfterBurst(rate, peak)
}

// worthReleasing reports whether free bytes (see releasable) are worth a
// GC that marks live bytes: at least releaseMinBytes, and a quarter of the
// live heap unless a sync's burst is pending (memory.Pending), whose
// return its caller made before it (syncer's Release made it with each
// sync's, whatever it held: at 1M hostnames, the two syncs after the
// first left 20-25 MiB more resident without it).
func worthReleasing(free, live uint64, pending bool) bool {
	return free >= releaseMinBytes && (pending || free >= live/4)
}

// releasable estimates the heap memory a GC and release would return to
// the operating system (free pages still held, plus dead objects), and the
// live heap as of the last GC.
func releasable() (free, live uint64) {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	free, objects, live := s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()
	if objects > live {
		free += objects - live
	}
	return free, live
}
