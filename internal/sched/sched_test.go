package sched

import (
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
