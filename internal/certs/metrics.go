package certs

import (
	"crypto/x509"
	"slices"
	"time"

	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/store"
)

// CertificateMetrics is the certificate of each hostname of svcs (a sync's
// services), with its project and service, for metrics.Sources.Certificates:
// the upload served for it if there is one (its validity is the one that
// matters), else the manager's status. The hostnames of the projects in
// suspended are left out: their certificates are not managed (nor renewed).
func (m *Manager) CertificateMetrics(svcs []store.Service, suspended []string, uploaded *Uploaded) []metrics.Certificate {
	now := time.Now()
	var out []metrics.Certificate
	for _, svc := range svcs {
		if slices.Contains(suspended, svc.ProjectID) {
			continue
		}
		for _, h := range svc.Hostnames {
			if c := uploaded.Cached(h); c != nil && c.Leaf != nil {
				out = append(out, metrics.Certificate{
					Hostname: h, Project: svc.ProjectID, Service: svc.Name, Issuer: issuerCN(c.Leaf),
					NotBefore: c.Leaf.NotBefore, NotAfter: c.Leaf.NotAfter,
					Ready: !now.Before(c.Leaf.NotBefore) && now.Before(c.Leaf.NotAfter),
				})
				continue
			}
			st := m.Status(h)
			out = append(out, metrics.Certificate{
				Hostname: h, Project: svc.ProjectID, Service: svc.Name, Issuer: st.Issuer,
				NotBefore: st.NotBefore, NotAfter: st.NotAfter,
				Ready: st.Status == store.CertActive && now.Before(st.NotAfter),
			})
		}
	}
	return out
}

// issuerCN is a certificate's issuer as the status records name it.
func issuerCN(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}
