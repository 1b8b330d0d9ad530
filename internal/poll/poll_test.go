package poll_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spine-platform/spine/internal/poll"
)

// recorder is a TB that records a failure instead of ending the goroutine.
type recorder struct {
	failed   string
	deadline time.Time
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

type withDeadline struct{ *recorder }

func (w withDeadline) Deadline() (time.Time, bool) { return w.deadline, true }

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		r := &recorder{}
		poll.Until(r, "the third call", time.Minute, func() error {
			calls++
			if calls < 3 {
				return fmt.Errorf("call %d", calls)
			}
			return nil
		})
		if r.failed != "" {
			t.Fatalf("failed: %s", r.failed)
		}
		if calls != 3 {
			t.Fatalf("f called %d times, want 3", calls)
		}
		// 10 ms, then 20 ms between calls.
		if took := time.Since(start); took != 30*time.Millisecond {
			t.Fatalf("took %v of the bubble's clock, want 30ms", took)
		}
	})
}

func TestUntilReportsTheLastErrorOnTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		calls := 0
		r := &recorder{}
		poll.Until(r, "the impossible", 10*time.Second, func() error {
			calls++
			return fmt.Errorf("attempt %d", calls)
		})
		want := fmt.Sprintf("the impossible: gave up after 10s: attempt %d", calls)
		if r.failed != want {
			t.Fatalf("failure %q, want %q", r.failed, want)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("gave up after %v, past the 10s timeout", took)
		}
		// The interval grows to 50 ms: about 200 calls in 10 s, not 1000.
		if calls < 190 || calls > 210 {
			t.Fatalf("%d calls in 10s", calls)
		}
	})
}

func TestUntilStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		r := &recorder{}
		exited := errors.New("node1 exited")
		poll.Until(r, "node1 starts", time.Minute, func() error {
			calls++
			return fmt.Errorf("waiting: %w", poll.Stop(exited))
		})
		if calls != 1 || r.failed != "node1 starts: node1 exited" {
			t.Fatalf("after %d calls, failure %q", calls, r.failed)
		}
		if poll.Stop(nil) != nil {
			t.Fatal("Stop(nil) is not nil")
		}
	})
}

func TestUntilGivesUpBeforeTheTestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		r := &recorder{deadline: start.Add(20 * time.Second)}
		poll.Until(withDeadline{r}, "a hang", time.Hour, func() error { return errors.New("still hung") })
		if !strings.HasSuffix(r.failed, ": still hung") {
			t.Fatalf("failure %q", r.failed)
		}
		if took := time.Since(start); took > 15*time.Second {
			t.Fatalf("gave up after %v, later than 5s before the test's deadline", took)
		}
	})
}

func TestTrue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ok atomic.Bool
		r := &recorder{}
		go func() { time.Sleep(time.Second); ok.Store(true) }()
		poll.Until(r, "ok", time.Minute, poll.True(ok.Load))
		if r.failed != "" {
			t.Fatal(r.failed)
		}
		r2 := &recorder{}
		poll.Until(r2, "never", time.Second, poll.True(func() bool { return false }))
		if r2.failed != "never: gave up after 1s: not yet" {
			t.Fatalf("failure %q", r2.failed)
		}
	})
}
