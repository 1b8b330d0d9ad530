// A node's DNS-01 as its ACMEConfig asks: the delegation zone, the DNS
// providers, and which domains can have wildcard certificates.

package certs

import (
	"log/slog"

	"github.com/mholt/acmez/v3"

	"github.com/spine-platform/spine/internal/dnsserver"
	"github.com/spine-platform/spine/internal/store"
)

// DNS01 is a node's DNS-01: Spine's delegation zone (dnsserver.Zone: its
// DNS server, delegations and solver) when ACMEConfig.DelegationZone is
// set, and the DNS01Mux that hands each challenge to a DNS provider's zone
// or to the delegation zone. The zero parts are nil: no zone, no DNS-01.
type DNS01 struct {
	Zone *dnsserver.Zone // nil without ACMEConfig.DelegationZone
	Mux  *DNS01Mux       // nil with neither providers nor a zone
}

// NewDNS01 builds the DNS-01 of a. kv holds the zone's records and
// delegations (*store.DB); https answers the zone's HTTPS records of the
// names the edge serves; the providers' and the zone's lines go to log.
func NewDNS01(a ACMEConfig, kv dnsserver.DelegationKV, https func(name string) (dnsserver.HTTPSRecord, bool), log *slog.Logger) *DNS01 {
	d := &DNS01{}
	var delegated acmez.Solver
	if a.DelegationZone != "" {
		d.Zone = dnsserver.NewZone(dnsserver.ZoneConfig{KV: kv, Zone: a.DelegationZone, Resolver: a.Resolver, HTTPS: https, Logger: log})
		delegated = d.Zone.Solver()
	}
	d.Mux = NewDNS01Mux(a.DNSProviders, a.DNSPropagationTimeout, a.Resolver, delegated, log)
	return d
}

// Delegations are the zone's delegations, nil without a zone.
func (d *DNS01) Delegations() *dnsserver.Delegations {
	if d.Zone == nil {
		return nil
	}
	return d.Zone.Delegations()
}

// Solver is Config.DNS01Solver: nil without DNS-01 (a nil *DNS01Mux in the
// interface would not be nil).
func (d *DNS01) Solver() acmez.Solver {
	if d.Mux == nil {
		return nil
	}
	return d.Mux
}

// Wildcard reports whether DNS-01 can be solved for a verified domain's
// names: it is in a DNS provider's zone, or its delegation CNAME was seen
// for its current project (serving.Compute's wildcard).
func (d *DNS01) Wildcard(dom store.Domain) bool {
	deleg := d.Delegations()
	return d.Mux.InProviderZone(dom.Name) || deleg != nil && deleg.Delegated(dom.Name, dom.ProjectID)
}
