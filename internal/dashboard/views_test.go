package dashboard

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// A view is read once, answered from memory for maxAge, then shown once
// more while a background read replaces it; a change's reload wins over an
// older read.
func TestViewsAgeAndReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var reads atomic.Int64
		v := newViews(func(ctx context.Context, token string) (*projectView, error) {
			n := reads.Add(1)
			return &projectView{lastEvent: n, read: time.Now()}, nil
		}, time.Now)
		ctx := context.Background()
		get := func() int64 {
			t.Helper()
			pv, err := v.get(ctx, "p1", "tok")
			if err != nil {
				t.Fatal(err)
			}
			return pv.lastEvent
		}
		if got := get(); got != 1 || reads.Load() != 1 {
			t.Fatalf("first page: view %d after %d reads", got, reads.Load())
		}
		time.Sleep(maxAge)
		if got := get(); got != 1 || reads.Load() != 1 {
			t.Fatalf("within maxAge: view %d after %d reads, want the first, unread", got, reads.Load())
		}
		time.Sleep(time.Millisecond)
		if got := get(); got != 1 {
			t.Fatalf("past maxAge: view %d, want the old one shown once", got)
		}
		synctest.Wait() // the background read
		if got := get(); got != 2 || reads.Load() != 2 {
			t.Fatalf("after the background read: view %d after %d reads", got, reads.Load())
		}
		if pv, err := v.reload(ctx, "p1", "tok"); err != nil || pv.lastEvent != 3 || get() != 3 {
			t.Fatalf("a change's reload: %v %v, page shows %d", pv, err, get())
		}
		// Another project never sees p1's view.
		if pv, _ := v.get(ctx, "p2", "tok2"); pv.lastEvent != 4 {
			t.Fatalf("p2's first page: view %d, want a read of its own", pv.lastEvent)
		}
		time.Sleep(idleAfter + time.Second)
		v.get(ctx, "p2", "tok2") // drops idle p1 as it stores a read
		synctest.Wait()
		v.mu.Lock()
		_, kept := v.m["p1"]
		v.mu.Unlock()
		if kept {
			t.Error("p1's view outlived idleAfter")
		}
	})
}
