//go:build spinetest

// Only in a binary built with `go build -tags spinetest` (test/fleet builds
// spine so): SPINE_TEST_ISSUE_DELAY=<Go duration> delays each issuance by
// the internal CA while certmagic holds the name's issuance lock, so that a
// test can kill the node that holds it. Spine's own binary has none of this.

package certs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"
)

func init() {
	v := os.Getenv("SPINE_TEST_ISSUE_DELAY")
	if v == "" {
		return
	}
	delay, err := time.ParseDuration(v)
	if err != nil || delay <= 0 {
		panic(fmt.Sprintf("SPINE_TEST_ISSUE_DELAY=%q: want a positive Go duration", v))
	}
	beforeIssue = func(ctx context.Context, log *slog.Logger, names []string) error {
		log.Warn("test hook: delaying issuance while holding its lock", "names", names, "delay", delay)
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
			return nil
		}
	}
}
