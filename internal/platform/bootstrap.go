package platform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spine-platform/spine/internal/store"
)

// DefaultProjectID is the project that `spine up` and a fresh `spine serve`
// create, and that owns the configured domain.
const DefaultProjectID = "default"

// Bootstrap makes sure the default project exists and that tokenFile holds a
// working API token for it, writing a new one (mode 0600) when the file is
// missing or its token is not known. Every node of a fleet may call it at
// once: the project is created once, and each node keeps its own token file.
func (p *Platform) Bootstrap(ctx context.Context, tokenFile string) (store.Project, error) {
	pr := store.Project{ID: DefaultProjectID, Name: "default", CreatedAt: p.now().UTC()}
	if err := p.store.CreateProject(ctx, pr); err != nil && !errors.Is(err, store.ErrConflict) {
		return store.Project{}, fmt.Errorf("creating the default project: %w", err)
	}
	if b, err := os.ReadFile(tokenFile); err == nil {
		if got, err := p.Authenticate(ctx, strings.TrimSpace(string(b))); err == nil && got.Project.ID == DefaultProjectID {
			return got.Project, nil
		}
	}
	tok, err := p.adminToken(ctx)
	if err != nil {
		return store.Project{}, fmt.Errorf("creating the admin token: %w", err)
	}
	if err := WriteSecretFile(tokenFile, []byte(tok+"\n")); err != nil {
		return store.Project{}, fmt.Errorf("writing the admin token: %w", err)
	}
	return p.store.GetProject(ctx, DefaultProjectID)
}

// adminToken makes an operator token of the default project, named
// "admin", or "admin-<random>" when a node of the fleet has that name.
func (p *Platform) adminToken(ctx context.Context) (string, error) {
	name := "admin"
	for {
		tok, err := p.insertToken(ctx, store.Token{ID: newID("tok_"), ProjectID: DefaultProjectID, Name: name,
			Scopes: []string{ScopeOperator}, CreatedAt: p.now().UTC()})
		var pe *Error
		if !errors.As(err, &pe) || pe.Kind != Conflict || name != "admin" {
			return tok, err
		}
		name = "admin-" + newID("")[:8]
	}
}

// WriteSecretFile writes data to path with mode 0600 (its folder 0700),
// through a temporary file and a rename so a crash never leaves half a file.
func WriteSecretFile(path string, data []byte) error {
	return WriteSecretFileFrom(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteSecretFileFrom is WriteSecretFile with the content written by
// write, for content too large to build in memory first. If write fails,
// path is left as it was.
func WriteSecretFileFrom(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
