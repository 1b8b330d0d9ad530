package platform

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// CreateProject makes a project and its first API token ("initial", with
// every project scope). The token is returned once and stored only as a
// hash.
func (p *Platform) CreateProject(ctx context.Context, name string) (store.Project, string, error) {
	name = strings.TrimSpace(name)
	if err := checkName("project name", name); err != nil {
		return store.Project{}, "", err
	}
	pr := store.Project{ID: newID("prj_"), Name: name, CreatedAt: p.now().UTC()}
	if err := p.store.CreateProject(ctx, pr); err != nil {
		return store.Project{}, "", fromStore(err, fmt.Sprintf("project %q", name))
	}
	tok, err := p.insertToken(ctx, store.Token{ID: newID("tok_"), ProjectID: pr.ID, Name: "initial", CreatedAt: pr.CreatedAt})
	if err != nil {
		return store.Project{}, "", err
	}
	return pr, tok, nil
}

// ListProjects returns every project.
func (p *Platform) ListProjects(ctx context.Context) ([]store.Project, error) {
	ps, err := p.store.ListProjects(ctx)
	return ps, fromStore(err, "projects")
}

// findProject returns the project whose ID or name is ref.
func (p *Platform) findProject(ctx context.Context, ref string) (store.Project, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return store.Project{}, invalid("invalid_name", "project name is empty")
	}
	ps, err := p.store.ListProjects(ctx)
	if err != nil {
		return store.Project{}, fromStore(err, "projects")
	}
	for _, pr := range ps {
		if pr.ID == ref || pr.Name == ref {
			return pr, nil
		}
	}
	if err := checkName("project name", ref); err != nil && !strings.HasPrefix(ref, "prj_") {
		return store.Project{}, err
	}
	return store.Project{}, &Error{Kind: NotFound, Code: "not_found", Message: fmt.Sprintf("project %q does not exist (spine project list)", ref)}
}

// GetProject returns the project whose ID or name is ref.
func (p *Platform) GetProject(ctx context.Context, ref string) (store.Project, error) {
	return p.findProject(ctx, ref)
}

// SuspendProject suspends (or, with suspend false, resumes) the project
// whose ID or name is ref. A suspended project's services answer 503 at
// the edge, its certificates are not renewed, and its tokens may read but
// change nothing. The default project, the operator's own, cannot be
// suspended.
func (p *Platform) SuspendProject(ctx context.Context, ref string, suspend bool) (store.Project, error) {
	pr, err := p.findProject(ctx, ref)
	if err != nil {
		return store.Project{}, err
	}
	if pr.ID == DefaultProjectID {
		return store.Project{}, invalid("default_project", "the default project is the operator's own; it cannot be suspended or deleted")
	}
	if suspend == !pr.SuspendedAt.IsZero() {
		return pr, nil // already so
	}
	pr.SuspendedAt = p.now().UTC()
	if !suspend {
		pr.SuspendedAt = time.Time{}
	}
	if err := p.store.SuspendProject(ctx, pr.ID, pr.SuspendedAt); err != nil {
		return store.Project{}, fromStore(err, fmt.Sprintf("project %q", pr.Name))
	}
	return pr, nil
}

// DeleteProject deletes the project whose ID or name is ref, with its
// services, domains and tokens, in one transaction: its hostnames stop
// being served and renewed and its domains are free for other projects.
// The default project cannot be deleted.
func (p *Platform) DeleteProject(ctx context.Context, ref string) (store.Project, error) {
	pr, err := p.findProject(ctx, ref)
	if err != nil {
		return store.Project{}, err
	}
	if pr.ID == DefaultProjectID {
		return store.Project{}, invalid("default_project", "the default project is the operator's own; it cannot be suspended or deleted")
	}
	if err := p.store.DeleteProject(ctx, pr.ID); err != nil {
		return store.Project{}, fromStore(err, fmt.Sprintf("project %q", pr.Name))
	}
	return pr, nil
}
