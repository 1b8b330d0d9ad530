package sched

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// A Yielder yields once Slice has passed since its last yield, not before.
func TestYielderYieldsEverySlice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var y Yielder
		y.Maybe()
		start := y.last
		if start.IsZero() {
			t.Fatal("the first call did not start the slice")
		}
		time.Sleep(Slice / 2)
		y.Maybe()
		if !y.last.Equal(start) {
			t.Fatal("yielded before the slice was over")
		}
		time.Sleep(Slice / 2)
		y.Maybe()
		if !y.last.After(start) {
			t.Fatal("did not yield once the slice was over")
		}
	})
}

// Every looks at the clock only at every EveryN-th item: between two,
// even a loop past its Slice goes on.
func TestEveryLooksEveryNItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var y Yielder
		y.Every(0) // starts the slice
		start := y.last
		time.Sleep(2 * Slice)
		for i := 1; i < EveryN; i++ {
			y.Every(i)
		}
		if !y.last.Equal(start) {
			t.Fatal("yielded between two EveryN-th items")
		}
		y.Every(EveryN)
		if !y.last.After(start) {
			t.Fatal("did not yield at the EveryN-th item past the slice")
		}
	})
}

// Yield lets a goroutine whose connection has data run before it returns,
// on one processor, where runtime.Gosched does not: the scheduler polls
// the network only when nothing else is ready to run, and the runtime's
// monitor on its own only every 10 ms.
func TestYieldRunsAGoroutineWaitingForTheNetwork(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	var got atomic.Int32 // bytes the reader has read
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := server.Read(b); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	// First the reader must be parked in its Read (it parks as soon as it
	// runs); then each byte written must be read by the next Yield.
	for i := range 20 {
		if _, err := client.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		Yield()
		if i == 0 {
			for got.Load() == 0 {
				Yield()
			}
			continue
		}
		if n := got.Load(); n != int32(i+1) {
			t.Fatalf("byte %d: after Yield the reader has read %d bytes, want %d", i+1, n, i+1)
		}
	}
}

// MaybeUnlocked's yield lets a goroutine waiting for the lock the loop
// holds have it, and the loop has it again after; before the slice is over
// it does not let go. (Not in a synctest bubble: a goroutine waiting for a
// mutex is not durably blocked there.)
func TestMaybeUnlockedLetsWaitersIn(t *testing.T) {
	var (
		mu sync.Mutex
		y  Yielder
	)
	mu.Lock()
	defer mu.Unlock()
	y.last = time.Now().Add(time.Hour) // the slice is not over
	got := make(chan struct{})
	go func() {
		mu.Lock()
		close(got)
		mu.Unlock()
	}()
	y.MaybeUnlocked(&mu)
	if !y.last.After(time.Now()) || mu.TryLock() {
		t.Fatal("yielded, or let go of the lock, before the slice was over")
	}
	for i := 0; ; i++ {
		y.last = time.Now().Add(-Slice) // the slice is over
		y.MaybeUnlocked(&mu)
		if mu.TryLock() {
			t.Fatal("the loop's lock is not held after the yield")
		}
		select {
		case <-got:
			return
		default:
		}
		if i == 100000 {
			t.Fatal("100,000 yields and the goroutine waiting for the lock never had it")
		}
	}
}

// A background Yielder holds off at its yield until Quiet has passed since
// the last Foreground, at most MaxHold a yield; a plain one does not, and
// without a recent Foreground neither waits.
func TestBackgroundHoldsOffForForeground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lastForeground.Store(0) // a mark from another test, in another clock
		yieldAfterSlice := func(y *Yielder) time.Duration {
			y.Maybe()
			time.Sleep(Slice)
			start := time.Now()
			y.Maybe()
			return time.Since(start)
		}
		if d := yieldAfterSlice(&Yielder{Background: true}); d != 0 {
			t.Errorf("with no handshake loading, a background yield waited %v", d)
		}

		heldBefore := Held()
		Foreground()
		time.Sleep(Quiet / 4)
		if d := yieldAfterSlice(&Yielder{}); d != 0 {
			t.Errorf("a plain yield waited %v after a Foreground", d)
		}
		var y Yielder
		y.Background = true
		y.Maybe()
		Foreground()
		mark := time.Now()
		time.Sleep(Slice)
		y.Maybe()
		if d := time.Since(mark); d != Quiet {
			t.Errorf("a background yield Slice after a Foreground went on %v after it, want Quiet (%v)", d, Quiet)
		}
		if got := Held() - heldBefore; got != Quiet-Slice {
			t.Errorf("Held grew by %v, want %v", got, Quiet-Slice)
		}

		// Handshakes loading without pause: the loop still runs every MaxHold.
		stop := make(chan struct{})
		go func() {
			for {
				Foreground()
				select {
				case <-stop:
					return
				case <-time.After(Quiet / 2):
				}
			}
		}()
		if d := yieldAfterSlice(&Yielder{Background: true}); d != MaxHold {
			t.Errorf("under a stream of Foregrounds a background yield waited %v, want MaxHold (%v)", d, MaxHold)
		}
		close(stop)

		lastForeground.Store(time.Now().Add(time.Hour).UnixNano()) // the clock moved back an hour
		if d := yieldAfterSlice(&Yielder{Background: true}); d != 0 {
			t.Errorf("with the last Foreground in the future, a background yield waited %v", d)
		}
	})
}
