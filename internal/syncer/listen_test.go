package syncer

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// AwaitListen returns at once without PostgreSQL, at the watch's first
// signal with it, and after ListenWait when no signal comes.
func TestAwaitListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		changes := make(chan struct{}, 1)
		start := time.Now()
		AwaitListen(context.Background(), changes, false)
		if d := time.Since(start); d != 0 {
			t.Errorf("without PostgreSQL it waited %v", d)
		}
		changes <- struct{}{}
		AwaitListen(context.Background(), changes, true)
		if d := time.Since(start); d != 0 {
			t.Errorf("with a signal it waited %v", d)
		}
		if len(changes) != 0 {
			t.Error("the signal was not taken")
		}
		AwaitListen(context.Background(), changes, true)
		if d := time.Since(start); d != ListenWait {
			t.Errorf("without a signal it waited %v, want %v", d, ListenWait)
		}
	})
}
