package node

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
	"github.com/miekg/dns"

	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/dnsserver"
	"github.com/spine-platform/spine/internal/dnsverify"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// Presets of well-known ACME directories.
const (
	LetsEncryptProduction = "https://acme-v02.api.letsencrypt.org/directory"
	LetsEncryptStaging    = "https://acme-staging-v02.api.letsencrypt.org/directory"
)

// ACMEConfig configures certificates from ACME CAs, domain verification and
// DNS-01. The zero value keeps the internal CA as the only issuer.
type ACMEConfig struct {
	// CAs are ACME directory URLs, tried in order for each certificate
	// until one issues. The internal CA comes after them unless
	// NoInternalFallback. Default: none (the internal CA alone).
	CAs []string
	// TrustedRoots, if set, are the roots trusted for the CAs' own HTTPS
	// (a private CA such as Pebble or a company CA). Default: the system's.
	TrustedRoots *x509.CertPool
	// Email is the ACME account contact. Default: none.
	Email string
	// EAB is the External Account Binding some CAs require. Default: none.
	EAB *acme.EAB
	// NoInternalFallback leaves the internal CA out of the issuers, so a
	// name no ACME CA issues for gets no certificate at all.
	NoInternalFallback bool

	// Resolver is the DNS resolver (host:port) that ownership records
	// (_spine-challenge TXT), delegation CNAMEs and CAA records are
	// looked up with.
	// Default: the first name server of /etc/resolv.conf.
	Resolver string
	// CheckInterval is how often domains waiting for verification, and
	// verified domains' delegation CNAMEs, are looked up again. Default 1m.
	CheckInterval time.Duration

	// DelegationZone is a zone that Spine's own DNS server answers for
	// (e.g. "acme.spine.example.net", delegated to it with NS records).
	// A domain whose _acme-challenge CNAME points into it (see the
	// domain's delegation_record) gets wildcard certificates through
	// DNS-01 without DNS credentials. Default: none.
	DelegationZone string
	// DNSAddr is where that DNS server listens, UDP and TCP. Default ":53".
	DNSAddr string
	// DNSProviders solve DNS-01 for domains under each zone (the key,
	// e.g. "example.com") with a libdns provider such as
	// rfc2136.Provider; those domains get wildcard certificates too.
	DNSProviders map[string]certmagic.DNSProvider
	// DNSPropagationTimeout bounds the wait for a provider's record to be
	// visible; -1 skips the check. Default: certmagic's (2 minutes).
	DNSPropagationTimeout time.Duration

	// RenewCheckInterval and RenewalWindowRatio: see certs.Config.
	// Renewal follows the CA's ARI window when it offers one.
	RenewCheckInterval time.Duration
	RenewalWindowRatio float64

	// OrderBurst and OrderInterval pace the orders of each CA and account:
	// see certs.Config.ACMEOrderBurst. Defaults 50 and 1s.
	OrderBurst    int
	OrderInterval time.Duration
}

// acmeState is the node's ACME and DNS-01 state.
type acmeState struct {
	secret    atomic.Pointer[[]byte]            // key of delegation labels, from the store
	delegated atomic.Pointer[map[string]string] // domain -> project, delegation CNAME seen
	dnsSrv    *dnsserver.Server
	dnsUDP    net.PacketConn
	dnsTCP    net.Listener
	records   *dnsserver.KVStore
	verifier  *dnsverify.Verifier
	checkMu   sync.Mutex // one check round at a time
}

// KV keys of the node's ACME state, shared by a fleet.
const (
	secretKey      = "spine/dns01/secret"
	delegatedKeys  = "spine/dns01/delegated"
	maxChecksRound = 100 // domains looked up per round, so a round stays bounded
	lookupTimeout  = 5 * time.Second
)

// initACME builds what the platform and the certificate manager need; it
// runs before either.
func (n *Node) initACME() {
	a := &n.acme
	empty := map[string]string{}
	a.delegated.Store(&empty)
	a.verifier = &dnsverify.Verifier{Resolver: n.cfg.ACME.Resolver, Timeout: lookupTimeout}
	a.records = &dnsserver.KVStore{KV: n.db}
}

// ownership is the platform's ownership lookup.
func (n *Node) ownership(ctx context.Context, domain, value string) (bool, string, error) {
	res, err := n.acme.verifier.Verify(ctx, domain, strings.TrimPrefix(value, dnsverify.ValuePrefix))
	if res.OK {
		return true, res.Detail, nil
	}
	if errors.Is(err, dnsverify.ErrResolver) {
		return false, res.Detail, err
	}
	return false, res.Detail, nil
}

// delegationTarget is the name a domain's _acme-challenge CNAME must point
// to, or "" without a delegation zone (or before the secret is loaded).
func (n *Node) delegationTarget(projectID, domain string) string {
	zone := n.cfg.ACME.DelegationZone
	secret := n.acme.secret.Load()
	if zone == "" || secret == nil {
		return ""
	}
	return dnsserver.CNAMETarget(dnsserver.DelegationLabel(*secret, projectID, domain), zone)
}

// certsConfig is the certificate manager's configuration: the ACME CAs in
// order, then the internal CA; challenges answered by the edge's
// listeners; DNS-01 through the delegation zone and the providers.
func (n *Node) certsConfig(storage certmagic.Storage, internal certmagic.Issuer) certs.Config {
	a := n.cfg.ACME
	var issuers []certmagic.Issuer
	for _, u := range a.CAs {
		issuers = append(issuers, &certs.ACMEIssuer{
			CA:           u,
			TrustedRoots: a.TrustedRoots,
			Email:        a.Email,
			EAB:          a.EAB,
			Resolver:     a.Resolver,
		})
	}
	if len(issuers) == 0 || !a.NoInternalFallback {
		issuers = append(issuers, internal)
	}
	return certs.Config{
		Storage:            storage,
		Issuers:            issuers,
		Status:             n.db,
		Logger:             zapLogger(),
		RenewCheckInterval: a.RenewCheckInterval,
		RenewalWindowRatio: a.RenewalWindowRatio,
		DNS01Solver:        n.dns01Solver(),
		CacheCapacity:      n.cfg.CertCacheSize,
		ACMEOrderBurst:     a.OrderBurst,
		ACMEOrderInterval:  a.OrderInterval,
	}
}

// dns01Solver routes each DNS-01 challenge to the provider of the domain's
// zone, else to the delegation zone; nil when neither is configured.
func (n *Node) dns01Solver() acmez.Solver {
	a := n.cfg.ACME
	if a.DelegationZone == "" && len(a.DNSProviders) == 0 {
		return nil
	}
	mux := &dns01Mux{providers: map[string]acmez.Solver{}}
	for zone, p := range a.DNSProviders {
		mux.providers[normalizeZone(zone)] = &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
			DNSProvider:        p,
			PropagationTimeout: a.DNSPropagationTimeout,
			Resolvers:          resolvers(a.Resolver),
		}}
	}
	if a.DelegationZone != "" {
		mux.delegated = &dnsserver.Solver{Records: n.acme.records, Target: n.delegatedTarget}
	}
	return mux
}

func resolvers(r string) []string {
	if r == "" {
		return nil
	}
	return []string{r}
}

func normalizeZone(z string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(z)), ".")
}

// delegatedTarget is the solver's Target: the delegation name of a domain
// whose CNAME has been seen.
func (n *Node) delegatedTarget(domain string) (string, bool) {
	project, ok := (*n.acme.delegated.Load())[domain]
	if !ok {
		return "", false
	}
	t := n.delegationTarget(project, domain)
	return t, t != ""
}

// dns01Mux is an acmez.Solver that hands each challenge to the solver of
// its domain.
type dns01Mux struct {
	providers map[string]acmez.Solver // zone -> solver
	delegated acmez.Solver            // may be nil
}

func (m *dns01Mux) solver(chal acme.Challenge) (acmez.Solver, error) {
	domain := strings.TrimPrefix(strings.ToLower(chal.Identifier.Value), "*.")
	if z := zoneOf(domain, m.providers); z != "" {
		return m.providers[z], nil
	}
	if m.delegated != nil {
		return m.delegated, nil
	}
	return nil, fmt.Errorf("no DNS-01 solver for %s", domain)
}

// zoneOf returns the longest zone of zones that domain is in, or "".
func zoneOf[V any](domain string, zones map[string]V) string {
	best := ""
	for z := range zones {
		if (domain == z || strings.HasSuffix(domain, "."+z)) && len(z) > len(best) {
			best = z
		}
	}
	return best
}

func (m *dns01Mux) Present(ctx context.Context, chal acme.Challenge) error {
	s, err := m.solver(chal)
	if err != nil {
		return err
	}
	return s.Present(ctx, chal)
}

func (m *dns01Mux) Wait(ctx context.Context, chal acme.Challenge) error {
	s, err := m.solver(chal)
	if err != nil {
		return err
	}
	if w, ok := s.(acmez.Waiter); ok {
		return w.Wait(ctx, chal)
	}
	return nil
}

func (m *dns01Mux) CleanUp(ctx context.Context, chal acme.Challenge) error {
	s, err := m.solver(chal)
	if err != nil {
		return err
	}
	return s.CleanUp(ctx, chal)
}

var (
	_ acmez.Solver = (*dns01Mux)(nil)
	_ acmez.Waiter = (*dns01Mux)(nil)
)

// servable keeps, of every service, the hostnames that may be served: under
// a verified domain of the service's own project (so a domain taken over
// by another project stops serving the old one's services). It also
// returns the domains whose services share one wildcard certificate.
func (n *Node) servable(ctx context.Context, svcs []store.Service) ([]store.Service, []string, error) {
	ds, err := n.db.ListDomains(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	byName := make(map[string]store.Domain, len(ds))
	for _, d := range ds {
		byName[d.Name] = d
	}
	if err := n.loadDelegations(ctx); err != nil {
		return nil, nil, err
	}
	out := make([]store.Service, 0, len(svcs))
	var y sched.Yielder
	for _, s := range svcs {
		y.Maybe()
		var hosts []string
		for _, h := range s.Hostnames {
			if platform.Serving(s, h, byName) {
				hosts = append(hosts, h)
			}
		}
		if len(hosts) > 0 {
			s.Hostnames = hosts
			out = append(out, s)
		}
	}
	delegated := *n.acme.delegated.Load()
	var wild []string
	for _, d := range ds {
		if d.Status != store.DomainVerified {
			continue
		}
		if zoneOf(d.Name, n.providerZones()) != "" || (delegated[d.Name] == d.ProjectID && n.delegationTarget(d.ProjectID, d.Name) != "") {
			wild = append(wild, d.Name)
		}
	}
	return out, wild, nil
}

func (n *Node) providerZones() map[string]bool {
	zones := map[string]bool{}
	for z := range n.cfg.ACME.DNSProviders {
		zones[normalizeZone(z)] = true
	}
	return zones
}

// loadDelegations reads which domains' delegation CNAMEs have been seen
// (by any node) from the store.
func (n *Node) loadDelegations(ctx context.Context) error {
	if n.cfg.ACME.DelegationZone == "" {
		return nil
	}
	keys, err := n.db.ListKeys(ctx, delegatedKeys, false)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		v, err := n.db.GetKey(ctx, k)
		if err != nil {
			continue
		}
		m[strings.TrimPrefix(k, delegatedKeys+"/")] = string(v)
	}
	n.acme.delegated.Store(&m)
	return nil
}

// startACME loads the delegation secret, starts the DNS server of the
// delegation zone and the periodic checks. They stop with ctx.
func (n *Node) startACME(ctx context.Context) error {
	a := n.cfg.ACME
	if a.DelegationZone != "" {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := n.loadSecret(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("loading the DNS-01 delegation key: %w", err)
		}
		srv, err := dnsserver.New(dnsserver.Config{Zone: a.DelegationZone, Records: n.acme.records, Logger: n.log})
		if err != nil {
			return err
		}
		addr := a.DNSAddr
		if addr == "" {
			addr = ":53"
		}
		if n.acme.dnsUDP, n.acme.dnsTCP, err = dnsserver.Listen(addr); err != nil {
			return fmt.Errorf("the delegation zone's DNS server (--dns-addr %s): %w", addr, err)
		}
		n.acme.dnsSrv = srv
		n.serve("dns", func() error {
			err := srv.Serve(n.acme.dnsUDP, n.acme.dnsTCP)
			if errors.Is(err, dnsserver.ErrServerClosed) {
				return nil
			}
			return err
		})
	}
	interval := a.CheckInterval
	if interval <= 0 {
		interval = time.Minute
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				if n.acme.dnsSrv != nil {
					sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					n.acme.dnsSrv.Shutdown(sctx)
					cancel()
				}
				return
			case <-t.C:
				n.checkDomains(ctx)
			}
		}
	}()
	return nil
}

// DNSAddr is the address of the delegation zone's DNS server, "" if none.
func (n *Node) DNSAddr() string {
	if n.acme.dnsUDP == nil {
		return ""
	}
	return n.acme.dnsUDP.LocalAddr().String()
}

// loadSecret reads the delegation key, or makes it, once for the fleet.
func (n *Node) loadSecret(ctx context.Context) error {
	owner := fmt.Sprintf("node-%p", n)
	for {
		v, err := n.db.GetKey(ctx, secretKey)
		if err == nil && len(v) >= 32 {
			n.acme.secret.Store(&v)
			return nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		ok, err := n.db.TryLock(ctx, secretKey, owner, time.Minute)
		if err != nil {
			return err
		}
		if ok {
			if _, err := n.db.GetKey(ctx, secretKey); errors.Is(err, store.ErrNotFound) {
				b := make([]byte, 32)
				rand.Read(b)
				err = n.db.PutKey(ctx, secretKey, b)
			}
			n.db.Unlock(context.WithoutCancel(ctx), secretKey, owner)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkDomains verifies domains that wait for it and looks up verified
// domains' delegation CNAMEs; a change is applied by the next sync, which
// the store's change notice (or the resync tick) brings.
func (n *Node) checkDomains(ctx context.Context) {
	n.acme.checkMu.Lock()
	defer n.acme.checkMu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	verified, err := n.platform.RecheckPending(rctx, maxChecksRound)
	if err != nil && ctx.Err() == nil {
		n.log.Warn("re-checking pending domains", "err", err)
	}
	changed := verified > 0
	if n.cfg.ACME.DelegationZone != "" && n.acme.secret.Load() != nil {
		c, err := n.checkDelegations(rctx)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("checking DNS-01 delegations", "err", err)
		}
		changed = changed || c
	}
	if changed {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := n.sync(sctx); err != nil && ctx.Err() == nil {
			n.log.Warn("sync after domain checks", "err", err)
		}
	}
}

// checkDelegations looks up _acme-challenge.<domain> of up to
// maxChecksRound verified domains and records which point at their
// delegation name. It reports whether anything changed.
func (n *Node) checkDelegations(ctx context.Context) (bool, error) {
	ds, err := n.db.ListDomains(ctx, "")
	if err != nil {
		return false, err
	}
	if err := n.loadDelegations(ctx); err != nil {
		return false, err
	}
	seen := *n.acme.delegated.Load()
	changed := false
	checked := 0
	for _, d := range ds {
		if d.Status != store.DomainVerified || strings.HasSuffix(d.Name, "localhost") {
			continue
		}
		if checked++; checked > maxChecksRound || ctx.Err() != nil {
			break
		}
		want := n.delegationTarget(d.ProjectID, d.Name)
		got, err := lookupCNAME(ctx, n.cfg.ACME.Resolver, "_acme-challenge."+d.Name)
		if err != nil {
			continue // unknown: keep what was recorded
		}
		key := delegatedKeys + "/" + d.Name
		ok := strings.EqualFold(dns.CanonicalName(got), want)
		switch {
		case ok && seen[d.Name] != d.ProjectID:
			if err := n.db.PutKey(ctx, key, []byte(d.ProjectID)); err != nil {
				return changed, err
			}
			changed = true
		case !ok && seen[d.Name] != "":
			if err := n.db.DeleteKey(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
				return changed, err
			}
			changed = true
		}
	}
	if changed {
		return true, n.loadDelegations(ctx)
	}
	return false, nil
}

// lookupCNAME returns the target of name's CNAME ("" if it has none)
// through resolver.
func lookupCNAME(ctx context.Context, resolver, name string) (string, error) {
	if resolver == "" {
		cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(cfg.Servers) == 0 {
			return "", errors.New("no DNS resolver configured")
		}
		resolver = net.JoinHostPort(cfg.Servers[0], cfg.Port)
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeCNAME)
	m.RecursionDesired = true
	in, _, err := (&dns.Client{}).ExchangeContext(ctx, m, resolver)
	if err != nil {
		return "", err
	}
	if in.Rcode != dns.RcodeSuccess && in.Rcode != dns.RcodeNameError {
		return "", fmt.Errorf("lookup of %s: %s", name, dns.RcodeToString[in.Rcode])
	}
	for _, rr := range in.Answer {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, dns.Fqdn(name)) {
			return c.Target, nil
		}
	}
	return "", nil
}

// CheckDomains runs one round of domain checks now (pending verifications
// and delegation CNAMEs), as the periodic check does.
func (n *Node) CheckDomains(ctx context.Context) { n.checkDomains(ctx) }
