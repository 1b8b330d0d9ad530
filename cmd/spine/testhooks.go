//go:build !spinetest

package main

import (
	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/node/config"
)

// testHookFlags are the test hooks' flags: none in Spine's binary; a binary
// built with the spinetest tag has them (testhooks_spinetest.go).
type testHookFlags struct{}

func (testHookFlags) register(*cobra.Command) {}

func (testHookFlags) apply(*config.Config) {}
