// The operator's commands that act on a node's store without starting it.

package node

import (
	"context"
	"fmt"
	"time"

	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/secrets/keyfile"
	"github.com/spine-platform/spine/internal/store"
)

// CreateProject creates a project named name, and its first API token
// (returned once, stored only as a hash), in the store of cfg (its Store
// and DataDir; validated as Start would), without starting a node: the
// operator's `spine project create`.
func CreateProject(ctx context.Context, cfg config.Config, name string) (store.Project, string, error) {
	if err := cfg.Validate(); err != nil {
		return store.Project{}, "", err
	}
	cfg = cfg.WithDefaults()
	db, err := store.Open(ctx, cfg.Store)
	if err != nil {
		return store.Project{}, "", fmt.Errorf("opening the store: %w", err)
	}
	defer db.Close()
	return platform.New(db, platform.Options{}).CreateProject(ctx, name)
}

// RotateConfig is what RotateSecrets needs.
type RotateConfig struct {
	// Config names the store (Store, DataDir) and the secret key file the
	// nodes read (SecretKeyFile), as `spine serve` would.
	Config config.Config
	// NewKeyFile holds the new key (its first); made (0600) if missing.
	NewKeyFile string
	// Wait bounds each wait for the connected nodes to take up the key
	// file. Default 5 min.
	Wait time.Duration
	// Progress is told each step, in words for the operator; may be nil.
	Progress func(string)
}

// RotateSecrets reseals every secret of the store of rc.Config under the
// new key while the nodes keep serving (keyfile.Rotate): the operator's
// `spine secrets rotate`.
func RotateSecrets(ctx context.Context, rc RotateConfig) error {
	if err := rc.Config.Validate(); err != nil {
		return err
	}
	cfg := rc.Config.WithDefaults()
	return keyfile.Rotate(ctx, keyfile.RotateConfig{Store: cfg.Store, KeyFile: cfg.SecretKeyFile,
		NewKeyFile: rc.NewKeyFile, Wait: rc.Wait, Progress: rc.Progress})
}
