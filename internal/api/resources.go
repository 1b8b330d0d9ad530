package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

func (s *server) listDomains(w http.ResponseWriter, r *http.Request, p store.Project) error {
	ds, err := s.cfg.Platform.ListDomains(r.Context(), p.ID)
	if err != nil {
		return err
	}
	out := make([]client.Domain, 0, len(ds))
	for _, d := range ds {
		out = append(out, s.domainOut(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": out})
	return nil
}

func (s *server) addDomain(w http.ResponseWriter, r *http.Request, p store.Project) error {
	var in client.DomainCreate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	d, err := s.cfg.Platform.AddDomain(r.Context(), p.ID, in.Name, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.domainOut(d))
	return nil
}

func (s *server) getDomain(w http.ResponseWriter, r *http.Request, p store.Project) error {
	d, err := s.cfg.Platform.GetDomain(r.Context(), p.ID, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.domainOut(d))
	return nil
}

func (s *server) removeDomain(w http.ResponseWriter, r *http.Request, p store.Project) error {
	if err := s.cfg.Platform.RemoveDomain(r.Context(), p.ID, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// MaxServicePage is the most services a page of GET /v1/services holds,
// and its default size: a project of a million services is listed a
// thousand at a time, never in one answer (nor remembered whole for reads
// while the store is away).
const MaxServicePage = 1000

func (s *server) listServices(w http.ResponseWriter, r *http.Request, p store.Project) error {
	offset, err := queryInt(r, "offset", 0)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", MaxServicePage)
	if err != nil {
		return err
	}
	if offset < 0 {
		return &apiError{status: http.StatusBadRequest, code: "invalid_offset",
			msg: fmt.Sprintf("offset=%d is below 0; give the next_offset of the page before, or 0", offset)}
	}
	if limit < 1 || limit > MaxServicePage {
		return &apiError{status: http.StatusBadRequest, code: "invalid_limit",
			msg: fmt.Sprintf("limit=%d is not from 1 to %d; give the page's size, at most %d services", limit, MaxServicePage, MaxServicePage)}
	}
	after := r.URL.Query().Get("after")
	switch {
	case len(after) > maxAfter:
		return &apiError{status: http.StatusBadRequest, code: "invalid_after",
			msg: fmt.Sprintf("after=%.40q... is longer than %d bytes; give the next_after of the page before", after, maxAfter)}
	case after != "" && offset > 0:
		return &apiError{status: http.StatusBadRequest, code: "invalid_after",
			msg: "after= and offset= both given; page with one of them (after=, the next_after of the page before, is not moved by services created or deleted meanwhile)"}
	}
	page, err := s.servicePage(r.Context(), p.ID, after, int(offset), int(limit))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

// maxAfter bounds GET /v1/services' after=: a service name is at most 63
// bytes, and any string is a cursor.
const maxAfter = 253

// servicePage reads a page of the project's services by name, every
// hostname of each, from the store a page at a time: one more than limit,
// to tell whether a page follows.
func (s *server) servicePage(ctx context.Context, projectID, after string, offset, limit int) (client.ServicePage, error) {
	ss, total, err := s.cfg.Platform.ServiceSummaries(ctx, projectID, store.ServiceQuery{Hostnames: store.AllHostnames, After: after, Offset: offset, Limit: limit + 1})
	if err != nil {
		return client.ServicePage{}, err
	}
	more := len(ss) > limit
	ss = ss[:min(len(ss), limit)]
	page := client.ServicePage{Services: make([]client.Service, 0, len(ss)), Total: total}
	for _, sv := range ss {
		page.Services = append(page.Services, s.serviceOut(sv.Service))
	}
	if more {
		last := ss[len(ss)-1].Name
		page.NextAfter = &last
		if after == "" {
			next := offset + len(ss)
			page.NextOffset = &next
		}
	}
	return page, nil
}

func (s *server) services(ctx context.Context, projectID string) ([]client.Service, error) {
	ss, err := s.cfg.Platform.ListServices(ctx, projectID)
	if err != nil {
		return nil, err
	}
	out := make([]client.Service, 0, len(ss))
	for _, svc := range ss {
		out = append(out, s.serviceOut(svc))
	}
	return out, nil
}

func (s *server) createService(w http.ResponseWriter, r *http.Request, p store.Project) error {
	var in client.ServiceCreate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	var every time.Duration
	if in.HealthInterval != "" {
		d, err := parseInterval(in.HealthInterval)
		if err != nil {
			return err
		}
		every = d
	}
	svc, err := s.cfg.Platform.CreateService(r.Context(), p.ID, platform.ServiceSpec{
		Name:           in.Name,
		Domain:         in.Domain,
		Hosts:          in.Hosts,
		Upstreams:      in.Upstreams,
		HSTSMaxAge:     in.HSTSMaxAge,
		HealthPath:     in.HealthPath,
		HealthInterval: every,
		ClientCA:       in.ClientCA,
		ClientAuth:     in.ClientAuth,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.serviceOut(svc))
	return nil
}

func (s *server) getService(w http.ResponseWriter, r *http.Request, p store.Project) error {
	svc, err := s.cfg.Platform.GetService(r.Context(), p.ID, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.serviceOut(svc))
	return nil
}

func (s *server) updateService(w http.ResponseWriter, r *http.Request, p store.Project) error {
	var in client.ServiceUpdate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	u := platform.ServiceUpdate{
		Upstreams:   in.Upstreams,
		AddHosts:    in.AddHosts,
		RemoveHosts: in.RemoveHosts,
		HSTSMaxAge:  in.HSTSMaxAge,
		HealthPath:  in.HealthPath,
		ClientCA:    in.ClientCA,
		ClientAuth:  in.ClientAuth,
	}
	if in.HealthInterval != nil {
		d, err := parseInterval(*in.HealthInterval)
		if err != nil {
			return err
		}
		u.HealthInterval = &d
	}
	svc, err := s.cfg.Platform.UpdateService(r.Context(), p.ID, r.PathValue("name"), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.serviceOut(svc))
	return nil
}

// parseInterval reads a health-check interval given as a Go duration.
func parseInterval(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		shown := v
		if len(shown) > 40 {
			shown = shown[:40] + "..."
		}
		return 0, &apiError{status: http.StatusBadRequest, code: "invalid_health_interval",
			msg: fmt.Sprintf("health_interval %q is not a duration; write it like \"15s\" or \"1m\"", shown)}
	}
	return d, nil
}

func (s *server) deleteService(w http.ResponseWriter, r *http.Request, p store.Project) error {
	if err := s.cfg.Platform.DeleteService(r.Context(), p.ID, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) listCertificates(w http.ResponseWriter, r *http.Request, p store.Project) error {
	out, err := s.certificates(r.Context(), p.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"certificates": out})
	return nil
}

func (s *server) certificates(ctx context.Context, projectID string) ([]client.Certificate, error) {
	cs, err := s.cfg.Platform.ListCertificates(ctx, projectID)
	if err != nil {
		return nil, err
	}
	return s.certificatesOut(cs), nil
}

func (s *server) certificatesOut(cs []platform.Certificate) []client.Certificate {
	out := make([]client.Certificate, 0, len(cs))
	for _, c := range cs {
		out = append(out, client.Certificate{
			Hostname:   c.Hostname,
			Service:    c.Service,
			Status:     c.Status,
			Issuer:     c.Issuer,
			NotBefore:  timePtr(c.NotBefore),
			NotAfter:   timePtr(c.NotAfter),
			RenewAfter: s.renewAfter(c.CertStatus),
			Error:      c.Error,
			UpdatedAt:  timePtr(c.UpdatedAt),
		})
	}
	return out
}

func (s *server) uploadCertificate(w http.ResponseWriter, r *http.Request, p store.Project) error {
	var in client.CertificateUpload
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c, err := s.cfg.Platform.UploadCertificate(r.Context(), p.ID, platform.Upload{
		Host: r.PathValue("name"), Chain: []byte(in.Certificate), Key: []byte(in.PrivateKey), Root: []byte(in.Root)})
	if err != nil {
		return err
	}
	names := c.Names
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, client.UploadedCertificate{Hostname: c.Hostname, Issuer: c.Issuer, Subject: c.Subject, Names: names,
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, SHA256: c.SHA256, UploadedAt: c.UploadedAt})
	return nil
}

func (s *server) removeCertificate(w http.ResponseWriter, r *http.Request, p store.Project) error {
	if err := s.cfg.Platform.RemoveCertificate(r.Context(), p.ID, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// renewAfter is when the certificate's renewal window opens, nil while
// there is no certificate.
func (s *server) renewAfter(c store.CertStatus) *time.Time {
	if c.Status == platform.CertUploaded { // never renewed by Spine
		return nil
	}
	if c.NotAfter.IsZero() || !c.NotAfter.After(c.NotBefore) {
		return nil
	}
	life := c.NotAfter.Sub(c.NotBefore)
	return timePtr(c.NotAfter.Add(-time.Duration(float64(life) * s.cfg.RenewalWindowRatio)))
}

func (s *server) domainOut(d store.Domain) client.Domain {
	out := client.Domain{
		Name:       d.Name,
		Status:     d.Status,
		CreatedAt:  d.CreatedAt,
		VerifiedAt: timePtr(d.VerifiedAt),
		CheckedAt:  timePtr(d.CheckedAt),
		CheckError: d.CheckError,
	}
	if d.Status != store.DomainVerified {
		out.VerifyRecord = platform.VerificationRecord(d)
	}
	out.DelegationRecord = s.cfg.Platform.DelegationRecord(d)
	return out
}

func (s *server) serviceOut(svc store.Service) client.Service {
	out := client.Service{
		ID:         svc.ID,
		Name:       svc.Name,
		Domain:     svc.Domain,
		Hostnames:  svc.Hostnames,
		Upstreams:  svc.Upstreams,
		HSTSMaxAge: svc.HSTSMaxAge,
		// The defaults are shown as such: a service that sets none follows them.
		HealthPath:     cmp.Or(svc.HealthPath, platform.DefaultHealthPath),
		HealthInterval: cmp.Or(svc.HealthInterval, platform.DefaultHealthInterval).String(),
		ClientAuth:     svc.ClientAuth,
		ClientCA:       svc.ClientCA,
		CreatedAt:      svc.CreatedAt,
		UpdatedAt:      svc.UpdatedAt,
	}
	for _, h := range svc.Hostnames {
		if s.cfg.HTTPSPort == 443 {
			out.URLs = append(out.URLs, "https://"+h+"/")
		} else {
			out.URLs = append(out.URLs, fmt.Sprintf("https://%s:%d/", h, s.cfg.HTTPSPort))
		}
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
