// The start-up work that needs the store, done once: a node that started
// from its snapshot (fail static) retries it before each sync until the
// store answers.

package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// PrepareConfig is what Prepare needs. Every field is required unless its
// comment says otherwise.
type PrepareConfig struct {
	// DataDir holds admin.token and ca/root.pem.
	DataDir string
	// Domain, if set, is given to the default project, verified. Default: none.
	Domain string
	// LeafLifetime is the internal CA's (ca.Options); 0: its default.
	LeafLifetime time.Duration
	// Keys checks the secret key file against the store, first: nothing
	// may be written unsealed, or sealed with a key the fleet does not
	// share (*keyfile.Watcher).
	Keys interface {
		Ensure(ctx context.Context) error
	}
	Platform *platform.Platform
	// Tokens looks the admin token up (*store.DB).
	Tokens interface {
		TokenByHash(ctx context.Context, hash string) (store.Credential, error)
	}
	// RememberToken puts the admin token's look-up where the snapshot
	// finds it (api.StaleReads.RememberToken), before its first use.
	RememberToken func(hash string, c store.Credential)
	// CAStorage holds the internal CA (ca.Load).
	CAStorage certmagic.Storage
	// SetCA hands the loaded CA to its issuer (certs.CAIssuer.SetCA).
	SetCA func(*ca.CA)
}

// Prepare does a node's start-up work that needs the store: the secret key
// file checked against it, the default project and admin token, the
// configured domain, the internal CA. Do does it once; until it succeeds,
// a node serving its snapshot calls it again before each sync.
type Prepare struct {
	cfg  PrepareConfig
	done atomic.Bool
	mu   sync.Mutex
}

// NewPrepare returns a Prepare of cfg; it does nothing yet.
func NewPrepare(cfg PrepareConfig) *Prepare { return &Prepare{cfg: cfg} }

// Done reports whether Do has succeeded.
func (p *Prepare) Done() bool { return p.done.Load() }

// Do does the start-up work, unless it is done.
func (p *Prepare) Do(ctx context.Context) error {
	if p.done.Load() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done.Load() {
		return nil
	}
	c := &p.cfg
	if err := c.Keys.Ensure(ctx); err != nil {
		return err
	}
	admin, err := c.Platform.Bootstrap(ctx, AdminTokenFile(c.DataDir))
	if err != nil {
		return err
	}
	if tok, err := AdminToken(c.DataDir); err == nil {
		if cred, err := c.Tokens.TokenByHash(ctx, platform.HashToken(tok)); err == nil && cred.Project.ID == admin.ID {
			c.RememberToken(cred.Token.Hash, cred)
		}
	}
	if c.Domain != "" {
		if _, err := c.Platform.EnsureDomain(ctx, platform.DefaultProjectID, c.Domain, true); err != nil {
			return fmt.Errorf("configuring domain %s: %w", c.Domain, err)
		}
	}
	authority, err := ca.Load(ctx, c.CAStorage, ca.Options{LeafLifetime: c.LeafLifetime})
	if err != nil {
		return fmt.Errorf("loading the internal CA: %w", err)
	}
	if err := authority.WriteRootPEM(filepath.Join(c.DataDir, "ca", "root.pem")); err != nil {
		return fmt.Errorf("writing the CA root: %w", err)
	}
	c.SetCA(authority)
	p.done.Store(true)
	return nil
}

// AdminTokenFile is the file in the data folder that holds the default
// project's admin token (written by Prepare, 0600).
func AdminTokenFile(dataDir string) string { return filepath.Join(dataDir, "admin.token") }

// AdminToken reads the admin token of the data folder (AdminTokenFile).
func AdminToken(dataDir string) (string, error) {
	b, err := os.ReadFile(AdminTokenFile(dataDir))
	if err != nil {
		return "", fmt.Errorf("reading the admin token: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
