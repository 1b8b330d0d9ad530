package platform

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
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
	// HealthPath is the path (with an optional query) the edge asks each
	// upstream for in its active health check; "" means DefaultHealthPath.
	HealthPath string
	// HealthInterval is the time between two active health checks; 0
	// means DefaultHealthInterval.
	HealthInterval time.Duration
	// ClientCA is PEM certificates that verify clients' certificates; with
	// it the edge asks every client of the service for one (mTLS).
	ClientCA string
	// ClientAuth is ClientAuthRequire (the default with a ClientCA) or
	// ClientAuthOptional.
	ClientAuth string
}

// ServiceUpdate is a change to a service. Each field left at its zero
// value leaves that setting as it is.
type ServiceUpdate struct {
	// Upstreams, when not nil, replaces the service's upstream list; it
	// may not be empty.
	Upstreams []string
	// AddHosts are hostnames to serve too, under the project's domains (as
	// ServiceSpec.Hosts); one the service has already is left as it is.
	AddHosts []string
	// RemoveHosts are hostnames to stop serving; each must be one of the
	// service's, and not its own name NAME.DOMAIN.
	RemoveHosts []string
	HSTSMaxAge  *int
	// HealthPath, when not nil, replaces the health-check path; "" goes
	// back to DefaultHealthPath.
	HealthPath *string
	// HealthInterval, when not nil, replaces the health-check interval; 0
	// goes back to DefaultHealthInterval.
	HealthInterval *time.Duration
	// ClientCA, when not nil, replaces the client CA ("" turns client
	// certificates off); ClientAuth, when not nil, the mode (ClientAuthOff
	// turns them off).
	ClientCA, ClientAuth *string
}

func (u ServiceUpdate) empty() bool {
	return u.Upstreams == nil && len(u.AddHosts) == 0 && len(u.RemoveHosts) == 0 &&
		u.HSTSMaxAge == nil && u.HealthPath == nil && u.HealthInterval == nil && u.ClientCA == nil && u.ClientAuth == nil
}

// Health-check defaults of a service that sets none: the edge's own
// (edge.Config.HealthPath and HealthInterval).
const (
	DefaultHealthPath     = "/"
	DefaultHealthInterval = 10 * time.Second
)

// Bounds of a service's health-check interval: often enough to notice an
// upstream going down, seldom enough not to load it.
const (
	minHealthInterval = time.Second
	maxHealthInterval = time.Hour
	maxHealthPathLen  = 1024
)

// maxHostsPerService and maxUpstreams bound what one service may hold.
const (
	maxHostsPerService = 100
	maxUpstreams       = 32
)

// CreateService checks spec against the project's domains and stores the
// service. Its hostnames are served (and get certificates) as soon as this
// returns.
func (p *Platform) CreateService(ctx context.Context, projectID string, spec ServiceSpec) (store.Service, error) {
	domains, err := p.projectDomains(ctx, projectID)
	if err != nil {
		return store.Service{}, err
	}
	svc, err := p.newService(projectID, spec, domains)
	if err != nil {
		return store.Service{}, err
	}
	if err := p.checkServedUpstreams(ctx, svc.Upstreams, svc.Hostnames); err != nil {
		return store.Service{}, err
	}
	if err := p.store.CreateService(ctx, svc); err != nil {
		return store.Service{}, fromStore(err, fmt.Sprintf("service %q", svc.Name))
	}
	return svc, nil
}

// serviceBatcher is the optional ability of a Store to create many
// services in one transaction; *store.DB has it.
type serviceBatcher interface {
	CreateServices(ctx context.Context, ss []store.Service) error
}

// CreateServices creates a service in the project for each of specs, in
// one store transaction: all of them or none. Each spec is checked as
// CreateService checks it, and the first that fails a check is named in
// the error; a name or hostname already taken fails the whole batch with
// a Conflict. It is for bulk loads (bench/seed): the store is told of the
// change once, not once per service. The store must be able to write
// batches (*store.DB can).
func (p *Platform) CreateServices(ctx context.Context, projectID string, specs []ServiceSpec) ([]store.Service, error) {
	b, ok := p.store.(serviceBatcher)
	if !ok {
		return nil, fmt.Errorf("platform: the store cannot create services in batches")
	}
	domains, err := p.projectDomains(ctx, projectID)
	if err != nil {
		return nil, err
	}
	svcs := make([]store.Service, 0, len(specs))
	var ups, hosts []string
	for i, spec := range specs {
		svc, err := p.newService(projectID, spec, domains)
		if err != nil {
			return nil, fmt.Errorf("service %d of the batch (%q): %w", i, spec.Name, err)
		}
		svcs = append(svcs, svc)
		ups = append(ups, svc.Upstreams...)
		hosts = append(hosts, svc.Hostnames...)
	}
	if err := p.checkServedUpstreams(ctx, sortedUnique(ups), hosts); err != nil {
		return nil, err
	}
	if err := b.CreateServices(ctx, svcs); err != nil {
		return nil, fromStore(err, "services")
	}
	return svcs, nil
}

// projectDomains returns the project's domains, or an error if it has none.
func (p *Platform) projectDomains(ctx context.Context, projectID string) ([]store.Domain, error) {
	domains, err := p.store.ListDomains(ctx, projectID)
	if err != nil {
		return nil, fromStore(err, "domains")
	}
	if len(domains) == 0 {
		return nil, invalid("no_domain", "this project has no domain yet; add one first with `spine domain add DOMAIN`")
	}
	return domains, nil
}

// newService checks spec as a new service of the project, which has
// domains, and returns the service to store.
func (p *Platform) newService(projectID string, spec ServiceSpec, domains []store.Domain) (store.Service, error) {
	name := strings.ToLower(strings.TrimSpace(spec.Name))
	if err := checkName("service name", name); err != nil {
		return store.Service{}, err
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
	if len(spec.Hosts) > maxHostsPerService {
		return store.Service{}, tooManyHosts()
	}
	extra, err := checkHosts(spec.Hosts, domains)
	if err != nil {
		return store.Service{}, err
	}
	hosts := append([]string{primary}, sortedUnique(slices.DeleteFunc(extra, func(h string) bool { return h == primary }))...)

	ups, err := p.checkUpstreams(spec.Upstreams)
	if err != nil {
		return store.Service{}, err
	}

	hsts := DefaultHSTSMaxAge
	if spec.HSTSMaxAge != nil {
		if hsts, err = checkHSTS(*spec.HSTSMaxAge); err != nil {
			return store.Service{}, err
		}
	}
	healthPath, err := checkHealthPath(spec.HealthPath)
	if err != nil {
		return store.Service{}, err
	}
	if err := checkHealthInterval(spec.HealthInterval); err != nil {
		return store.Service{}, err
	}
	clientCA, clientAuth, err := clientAuthOf(spec.ClientCA, spec.ClientAuth)
	if err != nil {
		return store.Service{}, err
	}
	now := p.now().UTC()
	svc := store.Service{
		ClientCA:   clientCA,
		ClientAuth: clientAuth,
		ID:         newID("svc_"),
		ProjectID:  projectID,
		Name:       name,
		Domain:     domain,
		Hostnames:  hosts,
		Upstreams:  ups,
		HSTSMaxAge: hsts,
		HealthPath: healthPath,
		// The interval is stored as given: 0 follows the default.
		HealthInterval: spec.HealthInterval,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	return svc, nil
}

// UpdateService changes a service in place, in one store transaction:
// nothing is changed unless every part of u is valid. Its hostnames,
// upstreams and settings are served by every node as soon as the nodes read
// the change (no request or connection is dropped); an added hostname gets
// its certificate as a new service's would, and a removed one stops being
// served and renewed and is free for any project.
func (p *Platform) UpdateService(ctx context.Context, projectID, name string, u ServiceUpdate) (store.Service, error) {
	name = strings.ToLower(name)
	if err := checkName("service name", name); err != nil {
		return store.Service{}, err
	}
	if u.empty() {
		return store.Service{}, invalid("nothing_to_update", "nothing to change: give at least one of upstreams, add_hosts, remove_hosts, hsts_max_age, health_path, health_interval, client_ca, client_auth (the CLI's --upstream, --add-host, --remove-host, --hsts-max-age, --health-path, --health-interval, --client-ca, --client-auth)")
	}
	if len(u.AddHosts) > maxHostsPerService {
		return store.Service{}, tooManyHosts()
	}
	var add []string
	if len(u.AddHosts) > 0 {
		domains, err := p.store.ListDomains(ctx, projectID)
		if err != nil {
			return store.Service{}, fromStore(err, "domains")
		}
		if add, err = checkHosts(u.AddHosts, domains); err != nil {
			return store.Service{}, err
		}
	}
	remove := make(map[string]bool, len(u.RemoveHosts))
	for _, h := range u.RemoveHosts {
		norm, err := NormalizeHostname(h)
		if err != nil {
			return store.Service{}, err
		}
		remove[norm] = true
	}
	for _, h := range add {
		if remove[h] {
			return store.Service{}, invalid("host_added_and_removed", fmt.Sprintf("hostname %q is both added and removed; give it once", h))
		}
	}
	var ups []string
	if u.Upstreams != nil {
		var err error
		if ups, err = p.checkUpstreams(u.Upstreams); err != nil {
			return store.Service{}, err
		}
	}
	if u.HSTSMaxAge != nil {
		if _, err := checkHSTS(*u.HSTSMaxAge); err != nil {
			return store.Service{}, err
		}
	}
	var healthPath string
	if u.HealthPath != nil {
		var err error
		if healthPath, err = checkHealthPath(*u.HealthPath); err != nil {
			return store.Service{}, err
		}
	}
	if u.HealthInterval != nil {
		if err := checkHealthInterval(*u.HealthInterval); err != nil {
			return store.Service{}, err
		}
	}
	if u.ClientCA != nil || u.ClientAuth != nil {
		// Checked before the store's transaction, as the other parts; the
		// current CA is only needed for a mode given alone.
		probe := "x"
		if _, _, err := changeClientAuth(probe, ClientAuthRequire, u.ClientCA, u.ClientAuth); err != nil {
			return store.Service{}, err
		}
	}
	if ups != nil || len(add) > 0 {
		// A proxy loop needs the upstreams and hostnames the service will
		// have; the store's copy read here is checked again by nothing, as
		// at create (the edge refuses no such route; it only loops).
		cur, err := p.store.GetService(ctx, projectID, name)
		if err != nil {
			return store.Service{}, fromStore(err, fmt.Sprintf("service %q", name))
		}
		check := ups
		if check == nil {
			check = cur.Upstreams
		}
		if err := p.checkServedUpstreams(ctx, check, add); err != nil {
			return store.Service{}, err
		}
	}

	now := p.now().UTC()
	svc, err := p.store.UpdateService(ctx, projectID, name, func(s *store.Service) error {
		hosts, err := changeHosts(s.Hostnames, add, remove)
		if err != nil {
			return err
		}
		s.Hostnames = hosts
		if ups != nil {
			s.Upstreams = ups
		}
		if u.HSTSMaxAge != nil {
			s.HSTSMaxAge = *u.HSTSMaxAge
		}
		if u.HealthPath != nil {
			s.HealthPath = healthPath
		}
		if u.HealthInterval != nil {
			s.HealthInterval = *u.HealthInterval
		}
		if s.ClientCA, s.ClientAuth, err = changeClientAuth(s.ClientCA, s.ClientAuth, u.ClientCA, u.ClientAuth); err != nil {
			return err
		}
		s.UpdatedAt = now
		return nil
	})
	if err != nil {
		return store.Service{}, fromStore(err, fmt.Sprintf("service %q", name))
	}
	return svc, nil
}

// changeHosts returns hosts (the first is the service's own name) with add
// added and remove removed, the others sorted as at create.
func changeHosts(hosts, add []string, remove map[string]bool) ([]string, error) {
	primary := hosts[0]
	have := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		have[h] = true
	}
	for h := range remove {
		if h == primary {
			return nil, invalid("cannot_remove_primary", fmt.Sprintf("hostname %q is the service's own name; it cannot be removed (delete the service instead)", h))
		}
		if !have[h] {
			return nil, invalid("not_a_host", fmt.Sprintf("hostname %q is not one of the service's hostnames (%s)", h, strings.Join(hosts, ", ")))
		}
	}
	extra := make([]string, 0, len(hosts)+len(add))
	for _, h := range append(hosts[1:len(hosts):len(hosts)], add...) {
		if h != primary && !remove[h] {
			extra = append(extra, h)
		}
	}
	extra = sortedUnique(extra)
	if len(extra) > maxHostsPerService {
		return nil, tooManyHosts()
	}
	return append([]string{primary}, extra...), nil
}

// checkHosts normalises hostnames and checks that each is under one of
// domains.
func checkHosts(hosts []string, domains []store.Domain) ([]string, error) {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		norm, err := NormalizeHostname(h)
		if err != nil {
			return nil, err
		}
		if !underAny(norm, domains) {
			return nil, invalid("host_outside_domains", fmt.Sprintf("hostname %q is not under any of this project's domains (%s); add its domain first", norm, domainNames(domains)))
		}
		out = append(out, norm)
	}
	return out, nil
}

func tooManyHosts() error {
	return invalid("too_many_hosts", fmt.Sprintf("a service may have at most %d hostnames", maxHostsPerService))
}

// checkUpstreams checks a service's upstream list and returns it in
// canonical form, without duplicates.
func (p *Platform) checkUpstreams(raw []string) ([]string, error) {
	if len(raw) == 0 {
		return nil, invalid("no_upstream", "a service needs at least one upstream, for example --upstream http://127.0.0.1:9000")
	}
	if len(raw) > maxUpstreams {
		return nil, invalid("too_many_upstreams", fmt.Sprintf("a service may have at most %d upstreams", maxUpstreams))
	}
	ups := make([]string, 0, len(raw))
	for _, r := range raw {
		u, err := p.checkUpstream(r)
		if err != nil {
			return nil, err
		}
		ups = append(ups, u)
	}
	return sortedUniqueKeepOrder(ups), nil
}

func checkHSTS(v int) (int, error) {
	if v < 0 || v > 2*DefaultHSTSMaxAge {
		return 0, invalid("invalid_hsts", "hsts_max_age must be between 0 (off) and 63072000 seconds (two years)")
	}
	return v, nil
}

// checkHealthPath checks a health-check path (with an optional query) and
// returns it as stored: "" for the default.
func checkHealthPath(path string) (string, error) {
	if path == "" || path == DefaultHealthPath {
		return "", nil
	}
	bad := func(why string) (string, error) {
		return "", invalid("invalid_health_path", fmt.Sprintf("health path %q %s; give a path such as /healthz", truncate(path, 80), why))
	}
	if len(path) > maxHealthPathLen {
		return bad(fmt.Sprintf("is %d bytes long; the limit is %d", len(path), maxHealthPathLen))
	}
	if path[0] != '/' {
		return bad("must start with /")
	}
	for i := 0; i < len(path); i++ {
		if c := path[i]; c <= ' ' || c >= 0x7f {
			return bad("may hold only printable ASCII without spaces (percent-encode the others)")
		}
	}
	u, err := url.ParseRequestURI(path)
	if err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(path, "//") {
		return bad("is not a path")
	}
	if strings.Contains(path, "#") {
		return bad("may not hold a fragment (#)")
	}
	return path, nil
}

func checkHealthInterval(d time.Duration) error {
	if d == 0 || (d >= minHealthInterval && d <= maxHealthInterval) {
		return nil
	}
	return invalid("invalid_health_interval", fmt.Sprintf("health interval %s must be between %s and %s (0 for the default, %s)", d, minHealthInterval, maxHealthInterval, DefaultHealthInterval))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
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

// CertUploaded is the status ListCertificates gives a hostname served
// with a certificate its project uploaded (UploadCertificate).
const CertUploaded = store.CertUploaded

// ListCertificates returns the certificate state of every hostname of the
// project's services; a hostname with no record yet is pending, one with
// an uploaded certificate is CertUploaded with that certificate's issuer
// and validity. Uploaded certificates of hostnames no service has come
// last, with no service.
func (p *Platform) ListCertificates(ctx context.Context, projectID string) ([]Certificate, error) {
	svcs, err := p.store.ListServices(ctx, projectID)
	if err != nil {
		return nil, fromStore(err, "services")
	}
	var hosts []string
	for _, s := range svcs {
		hosts = append(hosts, s.Hostnames...)
	}
	byName, err := p.domainsByName(ctx, hosts)
	if err != nil {
		return nil, err
	}
	get := p.store.GetCertStatus
	if l, ok := p.store.(CertStatusLister); ok && countHostnames(svcs) > manyCertificates {
		// One read of every status instead of one per name: a project with
		// 10,000 names is read in one query (the dashboard's pages).
		all, err := l.ListCertStatus(ctx)
		switch {
		case errors.Is(err, errors.ErrUnsupported): // name by name, then
		case err != nil:
			return nil, fromStore(err, "certificates")
		default:
			byHost := make(map[string]store.CertStatus, len(all))
			for _, c := range all {
				byHost[c.Hostname] = c
			}
			get = func(_ context.Context, h string) (store.CertStatus, error) {
				if c, ok := byHost[h]; ok {
					return c, nil
				}
				return store.CertStatus{}, store.ErrNotFound
			}
		}
	}
	uploaded, err := p.store.ListUploadedCerts(ctx, projectID, false)
	if err != nil {
		return nil, fromStore(err, "uploaded certificates")
	}
	up := make(map[string]store.UploadedCert, len(uploaded))
	for _, c := range uploaded {
		up[c.Hostname] = c
	}
	var out []Certificate
	for _, s := range svcs {
		for _, h := range s.Hostnames {
			if !Serving(s, h, byName) {
				// Not served, so no certificate is asked for: say why.
				delete(up, h)
				out = append(out, Certificate{Service: s.Name, CertStatus: store.CertStatus{Hostname: h, Status: store.CertPending, Error: notServedReason(s, h, byName)}})
				continue
			}
			if c, ok := up[h]; ok {
				delete(up, h)
				out = append(out, Certificate{Service: s.Name, CertStatus: uploadedStatus(c)})
				continue
			}
			st, err := get(ctx, h)
			if err != nil {
				if e := fromStore(err, "certificate").(*Error); e.Kind != NotFound {
					return nil, e
				}
				st = store.CertStatus{Hostname: h, Status: store.CertPending}
			}
			out = append(out, Certificate{Service: s.Name, CertStatus: st})
		}
	}
	for _, c := range uploaded {
		if _, ok := up[c.Hostname]; ok {
			out = append(out, Certificate{CertStatus: uploadedStatus(c)})
		}
	}
	return out, nil
}

// CertStatusLister is a Store that reads every certificate status at once
// (*store.DB, api.StaleReads); ListCertificates uses it for a project with
// more than manyCertificates names.
type CertStatusLister interface {
	ListCertStatus(ctx context.Context) ([]store.CertStatus, error)
}

// manyCertificates is where one read of every status (every project's)
// costs less than a read per name.
const manyCertificates = 64

func countHostnames(svcs []store.Service) int {
	n := 0
	for _, s := range svcs {
		n += len(s.Hostnames)
	}
	return n
}

func uploadedStatus(c store.UploadedCert) store.CertStatus {
	return store.CertStatus{Hostname: c.Hostname, Status: CertUploaded, Issuer: c.Issuer,
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, UpdatedAt: c.UploadedAt}
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
		if hostname.InDomain(host, d.Name) {
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
