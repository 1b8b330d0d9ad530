package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"

	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/dnsserver"
	"github.com/spine-platform/spine/internal/dnsverify"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// acmeState is the node's ACME and DNS-01 wiring.
type acmeState struct {
	delegations *dnsserver.Delegations // nil without a delegation zone
	dns01       *certs.DNS01Mux        // nil without DNS-01
	dnsSrv      *dnsserver.Server
	dnsUDP      net.PacketConn
	dnsTCP      net.Listener
	records     *dnsserver.KVStore
	verifier    *dnsverify.Verifier
}

// lookupTimeout bounds each ownership look-up.
const lookupTimeout = 5 * time.Second

// initACME builds what the platform and the certificate manager need; it
// runs before either.
func (n *Node) initACME() {
	a, cfg := &n.acme, n.cfg.ACME
	a.verifier = &dnsverify.Verifier{Resolver: cfg.Resolver, Timeout: lookupTimeout}
	a.records = &dnsserver.KVStore{KV: n.db}
	var delegated acmez.Solver
	if cfg.DelegationZone != "" {
		a.delegations = dnsserver.NewDelegations(n.db, cfg.DelegationZone, cfg.Resolver)
		delegated = &dnsserver.Solver{Records: a.records, Target: a.delegations.SolverTarget}
	}
	a.dns01 = certs.NewDNS01Mux(cfg.DNSProviders, cfg.DNSPropagationTimeout, cfg.Resolver, delegated, n.log)
}

// platformOptions are the platform's look-ups: ownership records through
// the resolver, delegation targets and checks through the delegation zone.
func (n *Node) platformOptions() platform.Options {
	o := platform.Options{OwnAddrs: n.ownAddrs(), Ownership: n.acme.verifier.Owns, AllowPrivateWebhooks: n.cfg.Webhooks.AllowPrivate,
		AuditMaxAge: n.cfg.AuditMaxAge, AuditMaxEntries: n.cfg.AuditMaxEntries, Logger: n.log}
	if d := n.acme.delegations; d != nil {
		o.Delegation, o.CheckDelegations = d.Target, d.Check
	}
	return o
}

// certsConfig is the certificate manager's configuration: the ACME CAs in
// order, then the internal CA; challenges answered by the edge's
// listeners; DNS-01 through the delegation zone and the providers.
func (n *Node) certsConfig(storage certmagic.Storage, internal certmagic.Issuer) certs.Config {
	a := n.cfg.ACME
	cfg := certs.Config{
		Storage:            storage,
		Issuers:            a.Issuers(internal), // the ACME CAs in order, then the internal CA
		Status:             n.db,
		Events:             n.db,
		Orders:             n.db,
		Logger:             n.log,
		RenewCheckInterval: a.RenewCheckInterval,
		RenewalWindowRatio: a.RenewalWindowRatio,
		CacheCapacity:      n.cfg.CertCacheSize,
		ACMEOrderBurst:     a.OrderBurst,
		ACMEOrderInterval:  a.OrderInterval,
		Metrics:            n.metrics,
	}
	if n.acme.dns01 != nil { // a nil *DNS01Mux in the interface would not be nil
		cfg.DNS01Solver = n.acme.dns01
	}
	return cfg
}

// wildcard reports whether DNS-01 can be solved for a verified domain's
// names: it is in a DNS provider's zone, or its delegation CNAME was seen
// for its current project.
func (n *Node) wildcard(d store.Domain) bool {
	deleg := n.acme.delegations
	return n.acme.dns01.InProviderZone(d.Name) || deleg != nil && deleg.Delegated(d.Name, d.ProjectID)
}

// startACME loads the delegation key, starts the DNS server of the
// delegation zone and the periodic domain checks. They stop with ctx.
func (n *Node) startACME(ctx context.Context) error {
	a := n.cfg.ACME
	if d := n.acme.delegations; d != nil {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := d.LoadKey(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("loading the DNS-01 delegation key: %w", err)
		}
		srv, err := dnsserver.New(dnsserver.Config{Zone: a.DelegationZone, Records: n.acme.records, HTTPS: n.httpsRecord, Logger: n.log})
		if err != nil {
			return err
		}
		if n.acme.dnsUDP, n.acme.dnsTCP, err = dnsserver.Listen(a.DNSAddr); err != nil {
			return &FieldError{Field: "ACME.DNSAddr", Value: strconv.Quote(a.DNSAddr), Err: fmt.Errorf("the delegation zone's DNS server: %w", err)}
		}
		n.acme.dnsSrv = srv
		n.serve("dns", func() error {
			err := srv.Serve(n.acme.dnsUDP, n.acme.dnsTCP)
			if errors.Is(err, dnsserver.ErrServerClosed) {
				return nil
			}
			return err
		})
		n.wg.Go(func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(sctx)
			cancel()
		})
	}
	n.wg.Go(func() { n.platform.RunDomainChecks(ctx, a.CheckInterval, n.resync, n.log) })
	return nil
}

// DNSAddr is the address of the delegation zone's DNS server, "" if none.
func (n *Node) DNSAddr() string {
	if n.acme.dnsUDP == nil {
		return ""
	}
	return n.acme.dnsUDP.LocalAddr().String()
}

// CheckDomains runs one round of domain checks now (pending verifications
// and delegation CNAMEs), as the periodic check does.
func (n *Node) CheckDomains(ctx context.Context) {
	changed, err := n.platform.CheckDomains(ctx)
	if err != nil && ctx.Err() == nil {
		n.log.Warn("domain checks", "err", err)
	}
	if changed {
		n.resync(ctx)
	}
}
