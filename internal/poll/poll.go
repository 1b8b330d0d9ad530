// Package poll waits, in end-to-end tests, for something that other
// goroutines or processes bring about: a certificate issued through Pebble,
// a change reaching every node of a fleet, a connection closed. It is the
// one polling loop of Spine's tests.
//
// Poll only for what crosses a real boundary (TCP, a child process, a CA).
// Timers, leases, retries and backoff are tested under testing/synctest or
// with an injected clock, where time is exact and no polling is needed; and
// "nothing happened" is asserted with synctest.Wait, never by sleeping and
// looking.
//
// A timeout passed to Until guards against a hang; it is never a speed
// target, so make it generous enough for a loaded 2-core machine running
// the tests with -race (a minute or more where a CA or a fleet is
// involved).
//
// Imported by: tests only.
package poll

import (
	"errors"
	"time"
)

// TB is the part of testing.TB that Until uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Interval bounds: the first retry comes soon, so that a condition that is
// almost met costs little; later retries slow down a little, so that a long
// wait takes little CPU from what the test waits for, but not so much that
// a test reacts late to what it waits for (a test that stops a node once
// an order exists must not let the order finish first).
const (
	firstInterval = 10 * time.Millisecond
	maxInterval   = 50 * time.Millisecond
)

// margin is how long before the test binary's -timeout Until gives up,
// so that a hang fails with the last error rather than a goroutine dump.
const margin = 5 * time.Second

// Until calls f until it returns nil. It fails the test with what and f's
// last error once timeout has passed, or at once if f returns an error made
// by Stop. If the test has a deadline (go test -timeout) that comes before
// the timeout, Until gives up a few seconds before it.
func Until(t TB, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if td, ok := d.Deadline(); ok && td.Add(-margin).Before(deadline) {
			deadline = td.Add(-margin)
		}
	}
	wait := firstInterval
	for {
		err := f()
		if err == nil {
			return
		}
		var stop stopError
		if errors.As(err, &stop) {
			t.Fatalf("%s: %v", what, stop.err)
			return
		}
		if !time.Now().Add(wait).Before(deadline) {
			t.Fatalf("%s: gave up after %v: %v", what, timeout, err)
			return
		}
		time.Sleep(wait)
		wait = min(2*wait, maxInterval)
	}
}

// True adapts a condition to Until: the function it returns fails with
// "not yet" while cond is false. Prefer a function that says what it saw
// instead, where the test has something to say.
func True(cond func() bool) func() error {
	return func() error {
		if !cond() {
			return errNotYet
		}
		return nil
	}
}

var errNotYet = errors.New("not yet")

// Stop wraps err so that Until fails at once with it: for a state that
// waiting cannot mend, such as a process that has exited.
func Stop(err error) error {
	if err == nil {
		return nil
	}
	return stopError{err}
}

type stopError struct{ err error }

func (e stopError) Error() string { return e.err.Error() }
func (e stopError) Unwrap() error { return e.err }
