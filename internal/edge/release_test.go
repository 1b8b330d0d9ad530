package edge

import (
	"context"
	"crypto/tls"
	"log/slog"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spine-platform/spine/internal/memory"
)

func TestQuietAfterBurst(t *testing.T) {
	for _, tc := range []struct {
		rate, peak int64
		want       bool
	}{
		{0, 0, false},       // nothing accepted since the last release
		{100, 100, false},   // the burst goes on
		{300, 1000, false},  // slowing down, still busy
		{250, 1000, true},   // a quarter of the peak
		{0, 5000, true},     // over
		{1, 1, false},       // a trickle is no burst
		{0, 1, true},        // a trickle that stopped
		{40, 4000, true},    // back to a trickle
		{2000, 4000, false}, // half
	} {
		if got := quietAfterBurst(tc.rate, tc.peak); got != tc.want {
			t.Errorf("quietAfterBurst(%d, %d) = %v, want %v", tc.rate, tc.peak, got, tc.want)
		}
	}
}

// A release comes only with no handshake in flight: after a burst of
// connections as quietAfterBurst says, or, with a sync's return pending,
// at a tick that accepted none; with a large live heap, only at a tick
// that accepted none.
func TestCalm(t *testing.T) {
	const small, large = 8 << 20, trickleLive
	for _, tc := range []struct {
		rate, peak, inFlight int64
		pending              bool
		live                 uint64
		want                 bool
	}{
		{0, 0, 0, false, small, false}, // nothing to release
		{0, 0, 0, true, small, true},   // a sync's burst, no connection
		{1, 1, 0, true, small, false},  // a connection this tick
		{0, 0, 1, true, small, false},  // a handshake in flight
		{250, 1000, 0, false, small, true},
		{250, 1000, 0, true, small, true}, // a burst over: as without a sync's
		{250, 1000, 2, true, small, false},
		{300, 1000, 0, true, small, false},
		{0, 0, 0, false, large, false},
		{0, 0, 0, true, large, true},
		{0, 1000, 0, false, large, true},    // a burst over, nothing since
		{250, 1000, 0, false, large, false}, // a trickle goes on: its handshakes would wait for the mark
		{1, 1000, 0, true, large, false},
		{0, 1000, 1, true, large, false},
	} {
		if got := calm(tc.rate, tc.peak, tc.inFlight, tc.pending, tc.live); got != tc.want {
			t.Errorf("calm(rate %d, peak %d, in flight %d, pending %v, live %d MiB) = %v, want %v",
				tc.rate, tc.peak, tc.inFlight, tc.pending, tc.live>>20, got, tc.want)
		}
	}
}

func TestWorthReleasing(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		free, live uint64
		pending    bool
		want       bool
	}{
		{8 * mib, 0, false, false},          // too little to matter
		{16 * mib, 10 * mib, false, true},   // enough
		{16 * mib, 100 * mib, false, false}, // less than a quarter of the GC's work
		{50 * mib, 200 * mib, false, true},
		{49 * mib, 200 * mib, false, false},
		{49 * mib, 200 * mib, true, true}, // a sync's burst: returned as it always was
		{8 * mib, 200 * mib, true, false},
	} {
		if got := worthReleasing(tc.free, tc.live, tc.pending); got != tc.want {
			t.Errorf("worthReleasing(%d MiB, %d MiB, pending %v) = %v, want %v", tc.free/mib, tc.live/mib, tc.pending, got, tc.want)
		}
	}
}

// TestReleaserLifecycle: stop ends the goroutine and waits for it, and a
// stopped releaser does not start again.
func TestReleaserLifecycle(t *testing.T) {
	r := &releaser{log: slog.New(slog.DiscardHandler)}
	r.start()
	r.start() // no second goroutine
	done := r.done
	r.stop()
	select {
	case <-done:
	default:
		t.Fatal("stop returned before the releaser's goroutine ended")
	}
	r.start()
	if r.quit != nil {
		t.Error("a stopped releaser started again")
	}
	r.stop() // stopping twice is fine
}

// The releaser runs while the edge serves HTTPS, unless KeepFreedMemory.
func TestKeepFreedMemory(t *testing.T) {
	for _, keep := range []bool{false, true} {
		h := startEdge(t, Config{KeepFreedMemory: keep}, Route{Host: "a.test", Service: "a", Upstreams: []string{"http://127.0.0.1:9"}})
		c, err := tls.Dial("tcp", h.tlsAddr, &tls.Config{ServerName: "a.test", RootCAs: h.pki.pool})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		h.s.mem.mu.Lock()
		running := h.s.mem.quit != nil
		h.s.mem.mu.Unlock()
		if running == keep {
			t.Errorf("KeepFreedMemory %v: releaser running %v", keep, running)
		}
	}
}

// The releaser waits over a warm-up: the first sync is building the
// node's largest allocation, and a forced collection then only makes the
// warm-up's handshakes wait behind its mark phase.
func TestReleaserHeldOverWarmUp(t *testing.T) {
	s := tableServer(t, Config{})
	if s.mem.held() {
		t.Error("held before any warm-up")
	}
	s.Warm(func(context.Context, string) (*Route, *tls.Certificate, error) { return nil, nil, nil })
	if !s.mem.held() {
		t.Error("not held during the warm-up")
	}
	s.ForgetWarm() // a change notice: still warming
	if !s.mem.held() {
		t.Error("not held after a change notice during the warm-up")
	}
	if err := s.SetRoutes([]Route{{Host: "a.test", Service: "a", Upstreams: []string{"http://127.0.0.1:9"}}}); err != nil {
		t.Fatal(err)
	}
	if s.mem.held() {
		t.Error("still held once the full table ended the warm-up")
	}
}

// A sync's burst left for the releaser (memory.Pending) is returned at
// the first calm second, not while a handshake is in flight.
func TestReleaserReturnsASyncsBurst(t *testing.T) {
	defer memory.Returned()
	synctest.Test(t, func(t *testing.T) {
		r := &releaser{log: slog.New(slog.DiscardHandler)}
		r.conns.handshakes.Add(1) // one in flight
		burst := make([][]byte, 0, 64)
		for range 64 {
			burst = append(burst, make([]byte, 1<<20))
		}
		runtime.KeepAlive(burst)
		burst = nil
		if !memory.Release(true) {
			t.Fatal("memory.Release did not collect the burst")
		}
		r.start()
		defer r.stop()
		time.Sleep(10 * releaseQuiet * releaseTick)
		synctest.Wait()
		if !memory.Pending() {
			t.Fatal("the return was made with a handshake in flight")
		}
		r.conns.handshakes.Add(-1)
		time.Sleep((releaseQuiet + 1) * releaseTick)
		synctest.Wait()
		if memory.Pending() {
			t.Error("the return still pending after a calm second")
		}
	})
}
