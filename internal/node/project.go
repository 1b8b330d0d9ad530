package node

import (
	"context"
	"fmt"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// CreateProject creates a project named name, and its first API token
// (returned once, stored only as a hash), in the store of cfg (its Store
// and DataDir; validated as Start would), without starting a node: the
// operator's `spine project create`.
func CreateProject(ctx context.Context, cfg Config, name string) (store.Project, string, error) {
	if err := cfg.Validate(); err != nil {
		return store.Project{}, "", err
	}
	cfg = cfg.withDefaults()
	db, err := store.Open(ctx, cfg.Store)
	if err != nil {
		return store.Project{}, "", fmt.Errorf("opening the store: %w", err)
	}
	defer db.Close()
	return platform.New(db, platform.Options{}).CreateProject(ctx, name)
}
