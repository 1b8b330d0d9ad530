package platform

import (
	"context"
	"fmt"
	"strings"

	"github.com/spine-platform/spine/internal/store"
)

// ServiceSpec is what a user asks for when creating a service.
type ServiceSpec struct {
	Name      string   // a DNS label; the service is served at <Name>.<Domain>
	Domain    string   // one of the project's domains; "" picks the project's first domain
	Hosts     []string // further hostnames under the project's domains
	Upstreams []string // one or more http:// or https:// URLs
	// HSTSMaxAge is the Strict-Transport-Security max-age in seconds; nil
	// means DefaultHSTSMaxAge (one year), 0 turns the header off.
	HSTSMaxAge *int
}

// maxHostsPerService and maxUpstreams bound what one service may hold.
const (
	maxHostsPerService = 100
	maxUpstreams       = 32
)

// CreateService checks spec against the project's domains and stores the
// service. Its hostnames are served (and get certificates) as soon as this
// returns.
func (p *Platform) CreateService(ctx context.Context, projectID string, spec ServiceSpec) (store.Service, error) {
	name := strings.ToLower(strings.TrimSpace(spec.Name))
	if err := checkName("service name", name); err != nil {
		return store.Service{}, err
	}
	domains, err := p.store.ListDomains(ctx, projectID)
	if err != nil {
		return store.Service{}, fromStore(err, "domains")
	}
	if len(domains) == 0 {
		return store.Service{}, invalid("no_domain", "this project has no domain yet; add one first with `spine domain add DOMAIN`")
	}
	domain := firstDomain(domains)
	if spec.Domain != "" {
		norm, err := NormalizeHostname(spec.Domain)
		if err != nil {
			return store.Service{}, err
		}
		if !hasDomain(domains, norm) {
			return store.Service{}, invalid("unknown_domain", fmt.Sprintf("domain %q is not one of this project's domains (%s); add it with `spine domain add`", norm, domainNames(domains)))
		}
		domain = norm
	}
	primary, err := NormalizeHostname(name + "." + domain)
	if err != nil {
		return store.Service{}, err
	}
	hosts := []string{primary}
	if len(spec.Hosts) > maxHostsPerService {
		return store.Service{}, invalid("too_many_hosts", fmt.Sprintf("a service may have at most %d hostnames", maxHostsPerService))
	}
	for _, h := range spec.Hosts {
		norm, err := NormalizeHostname(h)
		if err != nil {
			return store.Service{}, err
		}
		if !underAny(norm, domains) {
			return store.Service{}, invalid("host_outside_domains", fmt.Sprintf("hostname %q is not under any of this project's domains (%s); add its domain first", norm, domainNames(domains)))
		}
		if norm != primary {
			hosts = append(hosts, norm)
		}
	}
	hosts = append(hosts[:1], sortedUnique(hosts[1:])...)

	if len(spec.Upstreams) == 0 {
		return store.Service{}, invalid("no_upstream", "a service needs at least one upstream, for example --upstream http://127.0.0.1:9000")
	}
	if len(spec.Upstreams) > maxUpstreams {
		return store.Service{}, invalid("too_many_upstreams", fmt.Sprintf("a service may have at most %d upstreams", maxUpstreams))
	}
	var ups []string
	for _, raw := range spec.Upstreams {
		u, err := p.checkUpstream(raw)
		if err != nil {
			return store.Service{}, err
		}
		ups = append(ups, u)
	}
	ups = sortedUniqueKeepOrder(ups)
	if err := p.checkServedUpstreams(ctx, ups, hosts); err != nil {
		return store.Service{}, err
	}

	hsts := DefaultHSTSMaxAge
	if spec.HSTSMaxAge != nil {
		hsts = *spec.HSTSMaxAge
		if hsts < 0 || hsts > 2*DefaultHSTSMaxAge {
			return store.Service{}, invalid("invalid_hsts", "hsts_max_age must be between 0 (off) and 63072000 seconds (two years)")
		}
	}
	now := p.now().UTC()
	svc := store.Service{
		ID:         newID("svc_"),
		ProjectID:  projectID,
		Name:       name,
		Domain:     domain,
		Hostnames:  hosts,
		Upstreams:  ups,
		HSTSMaxAge: hsts,
		CreatedAt:  now,
		UpdatedAt:  now,
	}
	if err := p.store.CreateService(ctx, svc); err != nil {
		return store.Service{}, fromStore(err, fmt.Sprintf("service %q", name))
	}
	return svc, nil
}

// GetService returns one of the project's services.
func (p *Platform) GetService(ctx context.Context, projectID, name string) (store.Service, error) {
	if err := checkName("service name", strings.ToLower(name)); err != nil {
		return store.Service{}, err
	}
	s, err := p.store.GetService(ctx, projectID, strings.ToLower(name))
	return s, fromStore(err, fmt.Sprintf("service %q", name))
}

// ListServices returns the project's services.
func (p *Platform) ListServices(ctx context.Context, projectID string) ([]store.Service, error) {
	ss, err := p.store.ListServices(ctx, projectID)
	return ss, fromStore(err, "services")
}

// DeleteService removes a service; its hostnames stop being served and renewed.
func (p *Platform) DeleteService(ctx context.Context, projectID, name string) error {
	if err := checkName("service name", strings.ToLower(name)); err != nil {
		return err
	}
	return fromStore(p.store.DeleteService(ctx, projectID, strings.ToLower(name)), fmt.Sprintf("service %q", name))
}

// Certificate is the certificate state of one of a project's hostnames.
type Certificate struct {
	Service string
	store.CertStatus
}

// ListCertificates returns the certificate state of every hostname of the
// project's services; a hostname with no record yet is pending.
func (p *Platform) ListCertificates(ctx context.Context, projectID string) ([]Certificate, error) {
	svcs, err := p.store.ListServices(ctx, projectID)
	if err != nil {
		return nil, fromStore(err, "services")
	}
	byName, err := p.domainsByName(ctx)
	if err != nil {
		return nil, err
	}
	var out []Certificate
	for _, s := range svcs {
		for _, h := range s.Hostnames {
			if !Serving(s, h, byName) {
				// Not served, so no certificate is asked for: say why.
				out = append(out, Certificate{Service: s.Name, CertStatus: store.CertStatus{Hostname: h, Status: store.CertPending, Error: notServedReason(s, h, byName)}})
				continue
			}
			st, err := p.store.GetCertStatus(ctx, h)
			if err != nil {
				if e := fromStore(err, "certificate").(*Error); e.Kind != NotFound {
					return nil, e
				}
				st = store.CertStatus{Hostname: h, Status: store.CertPending}
			}
			out = append(out, Certificate{Service: s.Name, CertStatus: st})
		}
	}
	return out, nil
}

func firstDomain(ds []store.Domain) string {
	first := ds[0]
	for _, d := range ds[1:] {
		if d.CreatedAt.Before(first.CreatedAt) {
			first = d
		}
	}
	return first.Name
}

func hasDomain(ds []store.Domain, name string) bool {
	for _, d := range ds {
		if d.Name == name {
			return true
		}
	}
	return false
}

func underAny(host string, ds []store.Domain) bool {
	for _, d := range ds {
		if isUnder(host, d.Name) {
			return true
		}
	}
	return false
}

func domainNames(ds []store.Domain) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Name
	}
	return strings.Join(names, ", ")
}

func sortedUniqueKeepOrder(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
