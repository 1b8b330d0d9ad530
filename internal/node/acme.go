package node

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/dnsverify"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/platform"
)

// acmeState is the node's ACME and DNS-01 wiring.
type acmeState struct {
	dns01    *certs.DNS01 // the delegation zone, the providers, the solver
	verifier *dnsverify.Verifier
}

// lookupTimeout bounds each ownership look-up.
const lookupTimeout = 5 * time.Second

// initACME builds what the platform and the certificate manager need; it
// runs before either.
func (n *Node) initACME() {
	n.acme.verifier = &dnsverify.Verifier{Resolver: n.cfg.ACME.Resolver, Timeout: lookupTimeout}
	n.acme.dns01 = certs.NewDNS01(n.cfg.ACME, n.db, n.fleet.Published.HTTPSRecord, n.log)
}

// platformOptions are the platform's look-ups: ownership records through
// the resolver, delegation targets and checks through the delegation zone.
func (n *Node) platformOptions() platform.Options {
	o := platform.Options{OwnAddrs: n.ownAddrs(), Ownership: n.acme.verifier.Owns, AllowPrivateWebhooks: n.cfg.Webhooks.AllowPrivate,
		Audit: n.cfg.Audit, Logger: n.log}
	if d := n.acme.dns01.Delegations(); d != nil {
		o.Delegation, o.CheckDelegations = d.Target, d.Check
	}
	return o
}

// certsConfig is the certificate manager's configuration: the ACME CAs in
// order, then the internal CA; challenges answered by the edge's
// listeners; DNS-01 through the delegation zone and the providers.
func (n *Node) certsConfig(storage certmagic.Storage, internal certmagic.Issuer) certs.Config {
	return n.cfg.ACME.Manager(certs.Config{Storage: storage, Status: n.db, Events: n.db, Orders: n.db, Logger: n.log,
		CacheCapacity: n.cfg.CertCacheSize, Metrics: n.metrics}, internal, n.acme.dns01)
}

// startACME starts the DNS server of the delegation zone and the periodic
// domain checks. They stop with ctx.
func (n *Node) startACME(ctx context.Context) error {
	a := n.cfg.ACME
	if z := n.acme.dns01.Zone; z != nil {
		if err := z.Start(ctx); err != nil {
			return err
		}
		if err := z.Listen(a.DNSAddr); err != nil {
			return &config.FieldError{Field: "ACME.DNSAddr", Value: strconv.Quote(a.DNSAddr), Err: fmt.Errorf("the delegation zone's DNS server: %w", err)}
		}
		n.serve("dns", z.Serve)
		n.wg.Go(func() {
			<-ctx.Done()
			z.Shutdown()
		})
	}
	n.wg.Go(func() { n.platform.RunDomainChecks(ctx, a.CheckInterval, n.syncer.Resync, n.log) })
	return nil
}

// DNSAddr is the address of the delegation zone's DNS server, "" if none.
func (n *Node) DNSAddr() string {
	if n.acme.dns01.Zone == nil {
		return ""
	}
	return n.acme.dns01.Zone.Addr()
}

// CheckDomains runs one round of domain checks now (pending verifications
// and delegation CNAMEs), as the periodic check does.
func (n *Node) CheckDomains(ctx context.Context) {
	n.platform.RecheckDomains(ctx, n.syncer.Resync, n.log)
}
