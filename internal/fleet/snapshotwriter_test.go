package fleet

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Run writes after Due once the changes have been quiet for snapshotQuiet
// (a burst costs one write), at most snapshotMaxWait after the first, and
// on its tick otherwise.
func TestSnapshotWriterRunWaitsForQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var writes atomic.Int64 // each Write asks its source first
		w := NewSnapshotWriter(t.TempDir(), func() *SnapshotSource { writes.Add(1); return nil }, discard())
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go w.Run(ctx)
		want := func(n int64, when string) {
			t.Helper()
			synctest.Wait()
			if got := writes.Load(); got != n {
				t.Fatalf("%s: %d writes, want %d", when, got, n)
			}
		}

		time.Sleep(snapshotSettle)
		want(1, "after the settle")

		// A burst: each Due within snapshotQuiet of the last.
		for range 3 {
			w.Due()
			time.Sleep(snapshotQuiet / 2)
			want(1, "during a burst of changes")
		}
		time.Sleep(snapshotQuiet / 2)
		want(2, "once the burst has been quiet for snapshotQuiet")

		// A stream of changes is written snapshotMaxWait after its first.
		start := time.Now()
		for time.Since(start) < snapshotMaxWait-snapshotQuiet/4 {
			w.Due()
			time.Sleep(snapshotQuiet / 4)
			want(2, "during a stream of changes")
		}
		time.Sleep(snapshotQuiet / 4)
		want(3, "snapshotMaxWait after a stream's first change")

		// No change: the tick, snapshotInterval after the last write.
		time.Sleep(snapshotInterval - time.Nanosecond)
		want(3, "before the tick")
		time.Sleep(time.Nanosecond)
		want(4, "at the tick")
	})
}
