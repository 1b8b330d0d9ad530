// Uploaded certificates: a project's own certificate for one of its
// hostnames, served instead of the managed one.

package certs

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// Uploaded serves the certificates projects uploaded (store
// uploaded_certs, read by every sync); its zero value is ready. A hostname
// it serves is not handed to the Manager: nothing is issued or renewed
// for it while the upload is there.
//
// served holds, per hostname routed to the project that uploaded its
// certificate, that certificate parsed; it is swapped whole by each sync
// that changed something, so handshakes read it without a lock. Its bound
// is the uploaded certificates; parsed keeps the parsed certificates
// between syncs by the leaf's SHA-256, so a sync parses only new uploads.
//
// retiring holds the certificates of hostnames whose upload was removed
// while they stay routed: the hostname goes back to the certificate
// manager, and until the manager has a valid certificate for it a
// handshake gets the removed upload, so removing one leaves no gap. An
// entry goes when the manager answers with a valid certificate, when the
// certificate expires, or when a sync finds the hostname no longer routed
// (or uploaded again); so it is bounded by the routed hostnames. It lives
// in this node's memory only: a node restarted during the switch waits for
// the managed certificate as for any new name.
//
// Apply is called by one goroutine at a time (the node's sync); Certificate
// and Cached are safe for concurrent use with it and with each other.
type Uploaded struct {
	served atomic.Pointer[map[string]*tls.Certificate]
	parsed map[string]*tls.Certificate // by leaf SHA-256 and hostname; Apply's only

	mu       sync.Mutex
	retiring map[string]*tls.Certificate
}

// Concerns returns the hostnames whose owner Apply reads for ups: those of
// the uploads, of the uploads served now and of the retiring ones.
func (u *Uploaded) Concerns(ups []store.UploadedCert) map[string]bool {
	want := make(map[string]bool, len(ups))
	for _, c := range ups {
		want[c.Hostname] = true
	}
	if old := u.served.Load(); old != nil {
		for h := range *old {
			want[h] = true
		}
	}
	u.mu.Lock()
	for h := range u.retiring {
		want[h] = true
	}
	u.mu.Unlock()
	return want
}

// Apply makes the uploads whose hostname is routed to their own project
// (owner: routed hostname to project ID, serving.Owners, of at least the
// hostnames Concerns returns) the served ones,
// moves those no longer served but still routed to retiring, and returns
// hosts without the served ones: the names the certificate manager is to
// manage.
func (u *Uploaded) Apply(owner map[string]string, hosts []string, ups []store.UploadedCert, log *slog.Logger) []string {
	served := make(map[string]*tls.Certificate, len(ups))
	parsed := make(map[string]*tls.Certificate, len(ups))
	for _, c := range ups {
		if owner[c.Hostname] != c.ProjectID {
			continue // not routed, or routed to another project (its domain moved)
		}
		key := c.SHA256 + " " + c.Hostname
		cert := u.parsed[key]
		if cert == nil {
			pair, err := tls.X509KeyPair(c.Chain, c.Key)
			if err == nil {
				pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0])
			}
			if err != nil { // checked at upload; a store edited by hand
				log.Warn("not serving an uploaded certificate that does not load", "hostname", c.Hostname, "sha256", c.SHA256, "err", err)
				continue
			}
			cert = &pair
		}
		parsed[key] = cert
		served[c.Hostname] = cert
	}
	u.parsed = parsed

	u.mu.Lock()
	next := map[string]*tls.Certificate{}
	for h, cert := range u.retiring {
		if _, routed := owner[h]; routed && served[h] == nil {
			next[h] = cert
		}
	}
	if old := u.served.Load(); old != nil {
		for h, cert := range *old {
			if _, routed := owner[h]; routed && served[h] == nil {
				next[h] = cert
			}
		}
	}
	u.retiring = next
	u.mu.Unlock()
	u.served.Store(&served)

	if len(served) == 0 {
		return hosts
	}
	managed := make([]string, 0, len(hosts))
	var y sched.Yielder // a million names is tens of milliseconds
	for i, h := range hosts {
		y.Every(i)
		if served[h] == nil {
			managed = append(managed, h)
		}
	}
	return managed
}

// Certificate returns the uploaded certificate to serve for host, or nil.
// managed is the certificate manager's answer without waiting; a retiring
// upload is served until it has a valid one.
func (u *Uploaded) Certificate(host string, managed func() (*tls.Certificate, error)) *tls.Certificate {
	if m := u.served.Load(); m != nil {
		if cert := (*m)[host]; cert != nil {
			return cert
		}
	}
	u.mu.Lock()
	cert := u.retiring[host]
	u.mu.Unlock()
	if cert == nil {
		return nil
	}
	now := time.Now()
	if mc, err := managed(); err == nil && mc != nil && validAt(mc, now) {
		u.drop(host, cert)
		return nil
	}
	if !validAt(cert, now) {
		u.drop(host, cert)
		return nil
	}
	return cert
}

// Cached is the uploaded certificate served for host, or nil, without
// looking at retiring ones (for the snapshot and the metrics).
func (u *Uploaded) Cached(host string) *tls.Certificate {
	if m := u.served.Load(); m != nil {
		return (*m)[host]
	}
	return nil
}

// drop forgets host's retiring certificate if it is still cert.
func (u *Uploaded) drop(host string, cert *tls.Certificate) {
	u.mu.Lock()
	if u.retiring[host] == cert {
		delete(u.retiring, host)
	}
	u.mu.Unlock()
}

// validAt reports whether cert's leaf is valid at now.
func validAt(cert *tls.Certificate, now time.Time) bool {
	leaf := cert.Leaf
	if leaf == nil {
		if len(cert.Certificate) == 0 {
			return false
		}
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return false
		}
	}
	return !now.Before(leaf.NotBefore) && now.Before(leaf.NotAfter)
}
