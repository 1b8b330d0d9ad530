package serving

import (
	"context"
	"crypto/sha256"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// ScanSum returns the fingerprint that Compute, then WithSuspended and
// WithUploaded, give the services scan yields (every service of the store,
// each once: store.DB.ScanServices), computed one service at a time:
// nothing of them is kept. A node that changed nothing compares it with
// the fingerprint it applied, every so often, to find a write made behind
// Spine's back, and reads every service only when they differ; the read
// held every service at once, 1.07 GiB resident at its peak at a million.
//
// Each service is served as Compute serves it: the hostnames
// platform.Serving allows under domains, none of them if the edge could
// not route it (Compute logs that; its full read will).
func ScanSum(ctx context.Context, scan func(context.Context, func(*store.Service) error) error, domains []store.Domain,
	wildcard func(store.Domain) bool, suspended map[string]bool, uploads []store.UploadedCert) ([sha256.Size]byte, error) {
	var wild []string
	byName := make(map[string]store.Domain, len(domains))
	for _, d := range domains {
		byName[d.Name] = d
		if d.Status == store.DomainVerified && wildcard(d) {
			wild = append(wild, d.Name)
		}
	}
	var (
		acc   [sha256.Size]byte
		check edge.RouteChecker // each distinct upstream parsed once
		hosts []string
		y     sched.Yielder
	)
	err := scan(ctx, func(s *store.Service) error {
		y.Maybe()
		hosts = appendServing(hosts[:0], s, byName)
		if len(hosts) == 0 {
			return nil
		}
		served := *s
		served.Hostnames = hosts
		if checkRoutes(&check, &served) != nil {
			return nil
		}
		xorInto(&acc, digest(&served))
		return nil
	})
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return WithUploaded(WithSuspended(combine(acc, wild), suspended), uploads), nil
}
