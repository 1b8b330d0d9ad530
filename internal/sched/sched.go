// Package sched keeps long loops of background work (a sync of every
// service, a snapshot of every certificate) from holding a processor that
// TLS handshakes are waiting for. It owns nothing else.
//
// Imports: only the standard library.
package sched

import (
	"runtime"
	"time"
)

// Slice is the longest a Yielder's loop runs before it lets other
// goroutines run.
const Slice = 500 * time.Microsecond

// Yielder lets other goroutines run at least every Slice of a long loop.
// On a node with one processor, handshakes would otherwise wait for all of
// it (tens of milliseconds at 10k names) until the runtime preempts the
// loop, which it does only after 10 ms. The zero value is ready; a Yielder
// belongs to one goroutine.
type Yielder struct{ last time.Time }

// Maybe yields if Slice has passed since the last yield (or the first call).
func (y *Yielder) Maybe() {
	now := time.Now()
	if y.last.IsZero() {
		y.last = now
		return
	}
	if now.Sub(y.last) >= Slice {
		runtime.Gosched()
		y.last = time.Now()
	}
}
