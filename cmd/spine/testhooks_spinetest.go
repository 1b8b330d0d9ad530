//go:build spinetest

// Only in a binary built with `go build -tags spinetest` (test/fleet builds
// spine so): --test-issue-delay holds each issuance by the internal CA
// while the node holds the name's issuance lock (config.Config.BeforeIssue),
// so that a test can kill the node that holds it. Spine's own binary has
// none of this.

package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/node/config"
)

type testHookFlags struct {
	issueDelay time.Duration
}

func (f *testHookFlags) register(cmd *cobra.Command) {
	cmd.Flags().DurationVar(&f.issueDelay, "test-issue-delay", 0, "tests only: hold each internal CA issuance this long under its issuance lock")
}

func (f *testHookFlags) apply(cfg *config.Config) {
	delay := f.issueDelay
	if delay <= 0 {
		return
	}
	cfg.BeforeIssue = func(ctx context.Context, names []string) error {
		slog.Warn("test hook: delaying issuance while holding its lock", "names", names, "delay", delay)
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
