package certs

import (
	"crypto/x509"
	"slices"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// ServedHostnames calls yield with each hostname a sync served, with its
// service's project and name, until yield returns false;
// serving.AppliedServices.Hostnames is one.
type ServedHostnames func(yield func(project, service, host string) bool)

// CertificateMetrics calls yield with the certificate of each hostname of
// hosts (a sync's), with its project and service, for
// metrics.Sources.Certificates, until yield returns false: the upload
// served for it if there is one (its validity is the one that matters),
// else the manager's status. The hostnames of the projects in suspended
// are left out: their certificates are not managed (nor renewed).
//
// A hostname the manager manages without a status in memory is one whose
// certificate the store recorded as valid at the manager's sync, loaded
// by its first handshake (with many hostnames, most of them): it is ready,
// its validity unknown here. Reported as not ready, 91,001 of 100,000
// such hostnames looked as if they had no certificate.
//
// It copies no service and keeps nothing: a scrape at a million hostnames
// costs a pass over them, yielding to handshakes every sched.Slice.
func (m *Manager) CertificateMetrics(hosts ServedHostnames, suspended []string, uploaded *Uploaded, yield func(metrics.Certificate) bool) {
	now := time.Now()
	var y sched.Yielder
	i := 0
	hosts(func(project, service, h string) bool {
		y.Every(i)
		i++
		if slices.Contains(suspended, project) {
			return true
		}
		if c := uploaded.Cached(h); c != nil && c.Leaf != nil {
			return yield(metrics.Certificate{
				Hostname: h, Project: project, Service: service, Issuer: issuerCN(c.Leaf),
				NotBefore: c.Leaf.NotBefore, NotAfter: c.Leaf.NotAfter,
				Ready: !now.Before(c.Leaf.NotBefore) && now.Before(c.Leaf.NotAfter),
			})
		}
		st, known := m.status.lookup(hostname.Fold(h))
		if !known && m.Manages(h) {
			return yield(metrics.Certificate{Hostname: h, Project: project, Service: service, Ready: true})
		}
		return yield(metrics.Certificate{
			Hostname: h, Project: project, Service: service, Issuer: st.Issuer,
			NotBefore: st.NotBefore, NotAfter: st.NotAfter,
			Ready: st.Status == store.CertActive && now.Before(st.NotAfter),
		})
	})
}

// issuerCN is a certificate's issuer as the status records name it.
func issuerCN(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}
