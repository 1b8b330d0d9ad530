// DNS-01 for wildcard certificates: each challenge goes to the solver of
// its domain.

package certs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/logging"
)

// DNS01Mux is an acmez.Solver (Config.DNS01Solver) that hands each DNS-01
// challenge to the solver of its domain: the DNS provider of the longest
// zone that holds the domain, else the delegated solver (Spine's own DNS
// server, dnsserver.Solver), else none (the challenge fails).
type DNS01Mux struct {
	zones     map[string]acmez.Solver // zone (hostname.Normalize) -> solver
	delegated acmez.Solver            // may be nil
}

var (
	_ acmez.Solver = (*DNS01Mux)(nil)
	_ acmez.Waiter = (*DNS01Mux)(nil)
)

// NewDNS01Mux returns a mux over providers (by zone, e.g. "example.com"),
// each waited for up to propagationTimeout (0: certmagic's 2 minutes; -1:
// no check) through resolver ("host:port"; "": the system's), and
// delegated (may be nil). The providers' certmagic lines go to log (nil:
// none), through internal/logging's bridge. It returns nil if there are
// neither providers nor delegated.
func NewDNS01Mux(providers map[string]certmagic.DNSProvider, propagationTimeout time.Duration, resolver string, delegated acmez.Solver, log *slog.Logger) *DNS01Mux {
	if len(providers) == 0 && delegated == nil {
		return nil
	}
	m := &DNS01Mux{zones: map[string]acmez.Solver{}, delegated: delegated}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var resolvers []string
	if resolver != "" {
		resolvers = []string{resolver}
	}
	for zone, p := range providers {
		zone, err := hostname.Normalize(zone)
		if err != nil {
			continue // no domain can be under it
		}
		m.zones[zone] = &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
			DNSProvider:        p,
			PropagationTimeout: propagationTimeout,
			Resolvers:          resolvers,
			Logger:             logging.Certmagic(log.Handler()),
		}}
	}
	return m
}

// InProviderZone reports whether a DNS provider's zone holds domain, so
// that its wildcard names can be solved. A nil mux holds nothing.
func (m *DNS01Mux) InProviderZone(domain string) bool {
	return m != nil && m.zoneOf(domain) != ""
}

// zoneOf returns the longest zone that holds domain, or "".
func (m *DNS01Mux) zoneOf(domain string) string {
	best := ""
	for z := range m.zones {
		if hostname.InDomain(domain, z) && len(z) > len(best) {
			best = z
		}
	}
	return best
}

func (m *DNS01Mux) solver(chal acme.Challenge) (acmez.Solver, error) {
	domain := hostname.TrimWildcard(hostname.Fold(chal.Identifier.Value))
	if z := m.zoneOf(domain); z != "" {
		return m.zones[z], nil
	}
	if m.delegated != nil {
		return m.delegated, nil
	}
	return nil, fmt.Errorf("certs: no DNS-01 solver for %s", domain)
}

// Present hands the challenge to its domain's solver.
func (m *DNS01Mux) Present(ctx context.Context, chal acme.Challenge) error {
	s, err := m.solver(chal)
	if err != nil {
		return err
	}
	return s.Present(ctx, chal)
}

// Wait waits for the challenge's solver, if it waits.
func (m *DNS01Mux) Wait(ctx context.Context, chal acme.Challenge) error {
	s, err := m.solver(chal)
	if err != nil {
		return err
	}
	if w, ok := s.(acmez.Waiter); ok {
		return w.Wait(ctx, chal)
	}
	return nil
}

// CleanUp hands the clean-up to the challenge's solver.
func (m *DNS01Mux) CleanUp(ctx context.Context, chal acme.Challenge) error {
	s, err := m.solver(chal)
	if err != nil {
		return err
	}
	return s.CleanUp(ctx, chal)
}
