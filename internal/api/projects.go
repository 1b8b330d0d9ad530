package api

import (
	"net/http"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/store"
)

// The operator's routes: every project of the platform. They need the
// operator scope (see New).

func projectOut(p store.Project) client.Project {
	return client.Project{ID: p.ID, Name: p.Name, CreatedAt: timePtr(p.CreatedAt), SuspendedAt: timePtr(p.SuspendedAt)}
}

func (s *server) listProjects(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	ps, err := s.cfg.Platform.ListProjects(r.Context())
	if err != nil {
		return err
	}
	out := make([]client.Project, 0, len(ps))
	for _, p := range ps {
		out = append(out, projectOut(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": out})
	return nil
}

func (s *server) createProject(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	var in client.ProjectCreate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	setSubject(r, in.Name)
	p, tok, err := s.cfg.Platform.CreateProject(r.Context(), in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, client.ProjectCreated{Project: projectOut(p), Token: tok})
	return nil
}

func (s *server) getProject(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	p, err := s.cfg.Platform.GetProject(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, projectOut(p))
	return nil
}

func (s *server) deleteProject(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	if _, err := s.cfg.Platform.DeleteProject(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) suspendProject(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	return s.setSuspended(w, r, true)
}

func (s *server) resumeProject(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	return s.setSuspended(w, r, false)
}

func (s *server) setSuspended(w http.ResponseWriter, r *http.Request, suspend bool) error {
	p, err := s.cfg.Platform.SuspendProject(r.Context(), r.PathValue("name"), suspend)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, projectOut(p))
	return nil
}
