package api

import (
	"net/http"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// operatorOnly refuses a project other than the default one (the
// operator's).
func operatorOnly(p store.Project, what string) error {
	if p.ID != platform.DefaultProjectID {
		return &apiError{status: http.StatusForbidden, code: "forbidden", msg: what + " is for the operator: use the admin token of the default project"}
	}
	return nil
}

func limitsOut(q store.Quota) client.QuotaLimits {
	v := func(n int) *int {
		if n == 0 {
			return nil
		}
		return &n
	}
	return client.QuotaLimits{Domains: v(q.Domains), Services: v(q.Services), Hostnames: v(q.Hostnames), OrdersPerHour: v(q.OrdersPerHour)}
}

func quotaOut(projectID string, q store.Quota, u store.QuotaUsage) client.Quota {
	return client.Quota{Project: projectID, Limits: limitsOut(q),
		Usage: client.QuotaUsage{Domains: u.Domains, Services: u.Services, Hostnames: u.Hostnames, OrdersLastHour: u.OrdersLastHour}}
}

func (s *server) quota(w http.ResponseWriter, r *http.Request, p store.Project) error {
	q, u, err := s.cfg.Platform.Quota(r.Context(), p.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, quotaOut(p.ID, q, u))
	return nil
}

func (s *server) projectQuotaAnswer(w http.ResponseWriter, r *http.Request, projectID string) error {
	o, q, u, err := s.cfg.Platform.ProjectQuota(r.Context(), projectID)
	if err != nil {
		return err
	}
	out := quotaOut(projectID, q, u)
	out.Override = &client.QuotaLimits{Domains: o.Domains, Services: o.Services, Hostnames: o.Hostnames, OrdersPerHour: o.OrdersPerHour}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getProjectQuota(w http.ResponseWriter, r *http.Request, p store.Project) error {
	if err := operatorOnly(p, "another project's quota"); err != nil {
		return err
	}
	return s.projectQuotaAnswer(w, r, r.PathValue("id"))
}

func (s *server) setProjectQuota(w http.ResponseWriter, r *http.Request, p store.Project) error {
	if err := operatorOnly(p, "setting a project's quota"); err != nil {
		return err
	}
	var in client.QuotaLimits
	if err := decode(w, r, &in); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.cfg.Platform.SetQuota(r.Context(), id, store.QuotaOverride{Domains: in.Domains, Services: in.Services,
		Hostnames: in.Hostnames, OrdersPerHour: in.OrdersPerHour}); err != nil {
		return err
	}
	return s.projectQuotaAnswer(w, r, id)
}
