// Package sched keeps long loops of background work (a sync of every
// service, a snapshot of every certificate, a sort of every hostname:
// Sort) from holding a processor that TLS handshakes are waiting for. It
// owns nothing else.
//
// Imports: only the standard library.
package sched

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Slice is the longest a Yielder's loop runs before it lets other
// goroutines run. A handshake waits for the network three or four times,
// and each time its bytes are seen at the next yield: up to a Slice
// later. At 500 us, a runtime trace of a 1M first sync had 13,000 of its
// runs at 500-750 us, and the warm-up's slow handshakes waited behind
// them 2-4 ms each; at 200 us, its cold handshakes' p99 was 2.77-3.98 ms
// against 3.17-6.61 (four runs each), though the sync took longer, the
// handshakes getting more of the processor (BENCHMARKS.md, "What a
// runtime trace of a 1M node found on PostgreSQL"). A yield costs a few
// microseconds.
const Slice = 200 * time.Microsecond

// Yielder lets other goroutines run at least every Slice of a long loop,
// those waiting for the network included (Yield). On a node with one
// processor, handshakes would otherwise wait for all of it (tens of
// milliseconds at 10k names) until the runtime preempts the loop, which it
// does only after 10 ms. The zero value is ready; a Yielder belongs to one
// goroutine.
type Yielder struct {
	// Background marks the loop as work no client waits for (the
	// snapshot's write, the start's sealing of plaintext secrets): at each
	// yield it also holds off while a handshake loads a certificate from
	// the store (HoldOff).
	Background bool

	last time.Time
}

// EveryN is how many items of a loop Every lets pass between two looks at
// the clock.
const EveryN = 256

// Every is Maybe at item i of a loop, every EveryN items: for a loop whose
// items cost about what a clock read does (a hash, an append, a count),
// which a Maybe for each would double.
func (y *Yielder) Every(i int) { y.EveryUnlocked(i, nil) }

// EveryUnlocked is MaybeUnlocked at item i of a loop, every EveryN items
// (Every).
func (y *Yielder) EveryUnlocked(i int, l sync.Locker) {
	if i%EveryN == 0 {
		y.MaybeUnlocked(l)
	}
}

// Maybe yields if Slice has passed since the last yield (or the first call).
func (y *Yielder) Maybe() { y.MaybeUnlocked(nil) }

// MaybeUnlocked is Maybe for a loop that holds l: a yield releases l
// while others run, so that those waiting for it run too (a loop that kept
// l through its yields would let in only the goroutines that do not need
// it). The loop must re-read, after the call, whatever l guards. A nil l
// is Maybe.
func (y *Yielder) MaybeUnlocked(l sync.Locker) {
	now := time.Now()
	if y.last.IsZero() {
		y.last = now
		return
	}
	if now.Sub(y.last) < Slice {
		return
	}
	if l != nil {
		l.Unlock()
	}
	Yield()
	if y.Background {
		HoldOff()
	}
	if l != nil {
		l.Lock()
	}
	y.last = time.Now()
}

// Quiet is how long after the last Foreground a background loop waits at
// a yield (Yielder.Background) before it goes on, and MaxHold the most it
// waits at one yield. With a handshake loading a certificate every few
// milliseconds, a background loop then runs one Slice in MaxHold: 0.4 %
// of the processor, its work about 250 times as long (a 1M node's first
// snapshot, 0.56 s of processor, would take two minutes), never stopped.
//
// Why: on one processor, a background loop that yields every Slice still
// takes its share of the processor between a cold handshake's steps (the
// handshake waits for the client and the store three or four times, and
// the loop runs meanwhile), and its garbage brings the collector sooner.
// With the certificate cache full right after a 1M node's start, the
// snapshot's first write and (SQLite) the check of every private key ran
// among the cold handshakes, and their p99 was 4.8-7.3 ms, against
// 3.4-5.1 ms 90 s later with both done (BENCHMARKS.md, "What a runtime
// trace of a 1M node found on PostgreSQL").
const (
	Quiet   = 10 * time.Millisecond
	MaxHold = 50 * time.Millisecond
)

// lastForeground is the time of the last Foreground (Unix nanoseconds,
// wall clock: a testing/synctest bubble's clock is a wall clock too).
var lastForeground atomic.Int64

// held is the time background loops waited in HoldOff, in nanoseconds.
var held atomic.Int64

// Foreground notes that a client is waiting for work under way now: a
// handshake loading a certificate from the store. Background loops hold
// off for Quiet after it (HoldOff). It costs a clock read.
func Foreground() { lastForeground.Store(time.Now().UnixNano()) }

// LastForeground is the time of the last Foreground, the zero time if
// none.
func LastForeground() time.Time {
	if ns := lastForeground.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// HoldOff waits until Quiet has passed since the last Foreground, at most
// MaxHold; it returns at once if Quiet has passed already, or if the
// last Foreground is in the future (the clock moved back).
func HoldOff() {
	var waited time.Duration
	for waited < MaxHold {
		since := time.Duration(time.Now().UnixNano() - lastForeground.Load())
		if since < 0 || since >= Quiet {
			break
		}
		d := min(Quiet-since, MaxHold-waited)
		time.Sleep(d)
		waited += d
	}
	held.Add(int64(waited))
}

// Held is how long background loops have waited for handshakes in all
// (HoldOff), for the node's metrics.
func Held() time.Duration { return time.Duration(held.Load()) }

// Yield lets the goroutines that are ready to run, and those whose network
// connection became ready, run before the caller goes on.
//
// Why not runtime.Gosched: it puts the caller back on the run queue, and
// the scheduler asks the operating system which connections are ready
// only when its run queues are empty. With one processor and a loop that
// keeps yielding, they never are, so a goroutine waiting for a client's
// next TLS record ran only when the runtime's monitor polled the network
// on its own, every 10 ms: a handshake, which waits for the network three
// or four times, took 10-40 ms during a sync of every service
// (BENCHMARKS.md). Yield instead blocks the caller until a goroutine
// parked on a pipe wakes it; that goroutine is woken by the scheduler's
// network poll, which runs because nothing else is ready, and that same
// poll readies every connection that has data. A sleep would poll too, but
// the runtime's poll sleeps at least 1 ms when nothing is ready.
//
// It costs a write and a read of one byte and three goroutine switches (a
// few microseconds). If the pipe cannot be made, it is runtime.Gosched.
// It is safe in a testing/synctest bubble: the pipe's reader is started
// at init, outside any bubble, and what it wakes a caller with is made
// by it (a bubble's goroutine may wait on a channel made outside, but
// must not be woken from outside through one made inside, or a mutex).
func Yield() {
	p := thePoker
	if p == nil {
		runtime.Gosched()
		return
	}
	if _, err := p.w.Write([]byte{0}); err != nil {
		runtime.Gosched()
		return
	}
	ticket := p.written.Add(1)
	for {
		next := p.next.Load() // before read: a read that misses this Add closes it
		if p.read.Load() >= ticket {
			return
		}
		<-*next
	}
}

// poker is the pipe Yield writes to, read by a goroutine of its own.
type poker struct {
	w *os.File
	// written counts the bytes written (after each write), read those read
	// (after the goroutines readied with them ran): a Yield that counted
	// written up to n waits until read reaches n. next is closed, and
	// replaced, after each increase of read.
	written, read atomic.Uint64
	next          atomic.Pointer[chan struct{}]
}

// thePoker is the process's poker; nil if its pipe could not be made.
// Made at init so that its goroutine belongs to no testing/synctest bubble.
var thePoker = newPoker()

func newPoker() *poker {
	r, w, err := os.Pipe()
	if err != nil {
		return nil
	}
	p := &poker{w: w}
	ch := make(chan struct{})
	p.next.Store(&ch)
	go p.loop(r)
	return p
}

// loop reads the pipe for the life of the process.
func (p *poker) loop(r *os.File) {
	buf := make([]byte, 256)
	for {
		n, err := r.Read(buf)
		if err != nil {
			return // not while w is open, which it is for good
		}
		// The network poll that woke this goroutine readied the others
		// whose connection has data: they are on the run queue. Let them
		// run before the loops that yielded go on (a goroutine woken by
		// this one would otherwise run next, ahead of them); twice, since
		// the scheduler takes the global queue first every 61st time.
		runtime.Gosched()
		runtime.Gosched()
		p.read.Add(uint64(n))
		ch := make(chan struct{})
		close(*p.next.Swap(&ch))
	}
}
