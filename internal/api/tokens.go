package api

import (
	"net/http"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

func tokenOut(t store.Token) client.Token {
	return client.Token{
		Name:       t.Name,
		Scopes:     platform.EffectiveScopes(t.Scopes),
		CreatedAt:  t.CreatedAt,
		LastUsedAt: timePtr(t.LastUsedAt),
		ExpiresAt:  timePtr(t.ExpiresAt),
	}
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	ts, err := s.cfg.Platform.ListTokens(r.Context(), callerOf(r))
	if err != nil {
		return err
	}
	out := make([]client.Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenOut(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	var in client.TokenCreate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	setSubject(r, in.Name)
	t, value, err := s.cfg.Platform.CreateToken(r.Context(), callerOf(r), platform.TokenSpec{Name: in.Name, Scopes: in.Scopes, ExpiresIn: in.ExpiresIn})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, client.TokenCreated{Token: tokenOut(t), Value: value})
	return nil
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	if err := s.cfg.Platform.RevokeToken(r.Context(), callerOf(r), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
