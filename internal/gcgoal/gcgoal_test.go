package gcgoal

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live, floor uint64
		base, want  int
	}{
		{live: 2 << 20, floor: 16 << 20, base: 100, want: 450},      // minimum 18 MiB
		{live: 8 << 20, floor: 16 << 20, base: 100, want: 200},      // goal 24 MiB
		{live: 10 << 20, floor: 16 << 20, base: 100, want: 175},     // 160 up to the next step of 25
		{live: 16 << 20, floor: 16 << 20, base: 100, want: 100},     // the floor is what GOGC gives
		{live: 1 << 30, floor: 16 << 20, base: 100, want: 100},      // a big heap: GOGC alone
		{live: 1 << 30, floor: 16 << 20, base: 50, want: 50},        // an operator's lower GOGC stays
		{live: 8 << 20, floor: 16 << 20, base: 300, want: 300},      // and a higher one
		{live: 100 << 10, floor: 16 << 20, base: 100, want: 425},    // not 16,000: the minimum's term
		{live: 0, floor: 16 << 20, base: 100, want: 400},            // nothing live yet: minimum 16 MiB
		{live: 2<<20 + 4096, floor: 16 << 20, base: 100, want: 450}, // a wobble keeps the step
		{live: 2 << 20, floor: 16 << 20, base: 1, want: 450},        // steps of at least 1
	} {
		if got := percent(c.live, c.floor, 0, c.base); got != c.want {
			t.Errorf("percent(live %d, floor %d, GOGC %d) = %d, want %d", c.live, c.floor, c.base, got, c.want)
		}
	}
}

// The ceiling lowers GOGC once the live heap is above it, in steps of 5,
// never under MinPercent nor above the operator's GOGC; a floor that asks
// for more wins (Raise during a warm-up).
func TestPercentCeiling(t *testing.T) {
	for _, c := range []struct {
		live, floor, ceiling uint64
		base, want           int
	}{
		{live: 85 << 20, floor: 16 << 20, ceiling: 128 << 20, base: 100, want: 100},     // 100k hostnames: GOGC alone
		{live: 128 << 20, floor: 16 << 20, ceiling: 128 << 20, base: 100, want: 100},    // the ceiling is what GOGC gives
		{live: 265 << 20, floor: 16 << 20, ceiling: 128 << 20, base: 100, want: 45},     // a million: 48.3 down to 45
		{live: 2 << 30, floor: 16 << 20, ceiling: 128 << 20, base: 100, want: 25},       // 6.25: MinPercent
		{live: 265 << 20, floor: 1 << 30, ceiling: 128 << 20, base: 100, want: 400},     // a raised floor wins
		{live: 265 << 20, floor: 16 << 20, ceiling: 128 << 20, base: 30, want: 30},      // a lower GOGC stays
		{live: 265 << 20, floor: 0, ceiling: 128 << 20, base: 100, want: 45},            // no floor
		{live: 2 << 20, floor: 16 << 20, ceiling: 128 << 20, base: 100, want: 450},      // a small heap: the floor
		{live: 0, floor: 0, ceiling: 128 << 20, base: 100, want: 100},                   // nothing live yet
		{live: 265<<20 + 4096, floor: 0, ceiling: 128 << 20, base: 100, want: 45},       // a wobble keeps the step
		{live: 1 << 40, floor: 16 << 20, ceiling: 1 << 20, base: 100, want: MinPercent}, // no overflow, no zero
	} {
		if got := percent(c.live, c.floor, c.ceiling, c.base); got != c.want {
			t.Errorf("percent(live %d MiB, floor %d MiB, ceiling %d MiB, GOGC %d) = %d, want %d",
				c.live>>20, c.floor>>20, c.ceiling>>20, c.base, got, c.want)
		}
	}
}

// TestGoalIsUnderTheCeiling runs the real tuner with a live heap above the
// ceiling: after a collection the heap may grow by at most the ceiling
// (plus the runtime's term for stacks and globals, a few hundred kB)
// before the next one, where GOGC=100 alone would let it double; once the
// heap is dropped, GOGC is back.
func TestGoalIsUnderTheCeiling(t *testing.T) {
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set: Start leaves it")
	}
	const ceiling, slack = 48 << 20, 4 << 20
	live := make([][]byte, 128)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	stop := Start(0, ceiling)
	defer stop()
	poll.Until(t, "a heap goal at most the ceiling above the live heap", time.Minute, func() error {
		runtime.GC()
		l, goal := read("/gc/heap/live:bytes"), read("/gc/heap/goal:bytes")
		if l < 128<<20 {
			return fmt.Errorf("%d B live, want the test's 128 MiB at least", l)
		}
		if goal > l+ceiling+slack {
			return fmt.Errorf("heap goal %d B with %d B live, want at most live + %d", goal, l, ceiling)
		}
		if p := read("/gc/gogc:percent"); p >= 100 || p < MinPercent {
			return fmt.Errorf("GOGC %d, want under 100 and at least %d", p, MinPercent)
		}
		return nil
	})
	runtime.KeepAlive(live)
	live = nil
	poll.Until(t, "GOGC back once the heap is small", time.Minute, func() error {
		runtime.GC()
		if p := read("/gc/gogc:percent"); p != 100 {
			return fmt.Errorf("GOGC %d with %d B live, want 100", p, read("/gc/heap/live:bytes"))
		}
		return nil
	})
}

// read returns one runtime metric.
func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestStartRaisesGOGCAndStopRestoresIt runs the real tuner: after a
// collection its finalizer sets GOGC for the small live heap of a test
// binary, and stop puts the operator's value back.
func TestStartRaisesGOGCAndStopRestoresIt(t *testing.T) {
	before := read("/gc/gogc:percent")
	stop := Start(64<<20, 0)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	poll.Until(t, "GOGC raised after a collection", time.Minute, func() error {
		runtime.GC()
		if p := read("/gc/gogc:percent"); p <= before {
			return fmt.Errorf("GOGC is %d, was %d before Start", p, before)
		}
		return nil
	})
	stop()
	stopped = true
	if p := read("/gc/gogc:percent"); p != before {
		t.Fatalf("GOGC after stop = %d, want %d", p, before)
	}
}

// TestGoalIsAboveTheFloor checks what the floor is for: after a
// collection the heap may grow by the floor before the next one, where
// GOGC alone would allow only as much as is live (2-3 MiB in a test).
func TestGoalIsAboveTheFloor(t *testing.T) {
	const floor = 32 << 20
	stop := Start(floor, 0)
	defer stop()
	poll.Until(t, "a heap goal at least the floor above the live heap", time.Minute, func() error {
		runtime.GC()
		live, goal := read("/gc/heap/live:bytes"), read("/gc/heap/goal:bytes")
		if goal < live+floor {
			return fmt.Errorf("heap goal %d B with %d B live, want at least live + %d", goal, live, floor)
		}
		return nil
	})
}

func TestStartLeavesAnOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	before := read("/gc/gogc:percent")
	stop := Start(64<<20, 0)
	defer stop()
	runtime.GC()
	if p := read("/gc/gogc:percent"); p != before {
		t.Fatalf("GOGC = %d with GOGC set in the environment, want %d", p, before)
	}
}

// Raise lifts the heap goal at once to the raised floor above the live
// heap, and its restore brings back the floor Start set; without a tuner
// (an operator's GOGC) it changes nothing.
func TestRaise(t *testing.T) {
	before := read("/gc/gogc:percent")
	if restore := Raise(1 << 30); read("/gc/gogc:percent") != before {
		t.Fatal("Raise without Start changed GOGC")
	} else {
		restore()
	}
	if os.Getenv("GOGC") != "" {
		t.Skip("GOGC is set: Start leaves it")
	}
	const floor, raised = 16 << 20, 512 << 20
	stop := Start(floor, 0)
	defer stop()
	runtime.GC()
	restore := Raise(raised)
	if live, goal := read("/gc/heap/live:bytes"), read("/gc/heap/goal:bytes"); goal < live+raised {
		t.Errorf("raised: heap goal %d B with %d B live, want at least live + %d", goal, live, raised)
	}
	poll.Until(t, "the raised floor held through a collection", time.Minute, func() error {
		runtime.GC()
		if live, goal := read("/gc/heap/live:bytes"), read("/gc/heap/goal:bytes"); goal < live+raised {
			return fmt.Errorf("heap goal %d B with %d B live, want at least live + %d", goal, live, raised)
		}
		return nil
	})
	restore()
	restore() // a second call does nothing
	if live, goal := read("/gc/heap/live:bytes"), read("/gc/heap/goal:bytes"); goal >= live+raised || goal < live+floor {
		t.Errorf("restored: heap goal %d B with %d B live, want the floor %d above, not %d", goal, live, floor, raised)
	}
}

func TestWarmFloor(t *testing.T) {
	for _, c := range []struct{ limit, want uint64 }{
		{limit: 0, want: WarmFloor},               // unknown: the constant
		{limit: 24 << 30, want: WarmFloor},        // a big machine
		{limit: 8 << 30, want: WarmFloor},         // a quarter is the constant
		{limit: 6 << 30, want: 3 << 29},           // a quarter is less
		{limit: 4 << 30, want: 1 << 30},           // and less
		{limit: 2 << 30, want: 512 << 20},         // a quarter of the memory
		{limit: 512 << 20, want: 128 << 20},       // a small container
		{limit: 32 << 20, want: DefaultFloor},     // never below the default floor
		{limit: 1<<30 + 3, want: (1<<30 + 3) / 4}, // not rounded
		{limit: 1 << 62, want: WarmFloor},         // a huge limit
		{limit: 64 << 20, want: DefaultFloor},     // 16 MiB either way
		{limit: 100 << 20, want: max(25<<20, DefaultFloor)},
	} {
		if got := warmFloor(c.limit); got != c.want {
			t.Errorf("warmFloor(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
	if got := Warm(); got < DefaultFloor || got > WarmFloor {
		t.Errorf("Warm() = %d, want between %d and %d", got, DefaultFloor, WarmFloor)
	}
}

func TestMemTotal(t *testing.T) {
	const meminfo = "MemTotal:       24579040 kB\nMemFree:        22056436 kB\nMemAvailable:   23198432 kB\n"
	if got, want := memTotal(meminfo), uint64(24579040)<<10; got != want {
		t.Errorf("memTotal = %d, want %d", got, want)
	}
	for _, bad := range []string{"", "MemFree: 1 kB\n", "MemTotal: lots kB\n", "MemTotal:\n"} {
		if got := memTotal(bad); got != 0 {
			t.Errorf("memTotal(%q) = %d, want 0", bad, got)
		}
	}
}
