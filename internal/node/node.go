// Package node builds and runs one Spine node, and does nothing else: it
// validates its Config (package config), opens the store (or, with PostgreSQL
// down, starts from the fleet's snapshot), builds the platform, the
// certificate manager, the edge, the API, the fleet's parts and the sync
// loop, starts them, and stops them. Every feature it wires lives in the
// package named after it (syncer, fleet, certs, dnsserver, platform, api,
// edge, metrics); docs/architecture.md has the table.
//
// Data flows one way: the API writes to the store; the store announces the
// change; the sync loop (syncer.Loop) reads what changed and hands it to
// the edge and the certificate manager. The node never writes routing
// state itself.
//
// Package node may import any internal package; only cmd/spine and tests
// import it.
//
// Imports: never cmd.
// Imported by: only cmd/spine, tests.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/spine-platform/spine/internal/accesslog"
	"github.com/spine-platform/spine/internal/api"
	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/dashboard"
	"github.com/spine-platform/spine/internal/demo"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/events"
	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/secrets/keyfile"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/syncer"
	"github.com/spine-platform/spine/internal/webhooks"
)

// Node is a running Spine node.
type Node struct {
	cfg      config.Config
	log      *slog.Logger
	db       *store.DB
	platform *platform.Platform
	certs    *certs.Manager
	edge     *edge.Server
	fleet    *fleet.Node     // fleet mode and fail static (fleet.go)
	acme     acmeState       // ACME, verification and DNS-01 (acme.go)
	reads    *api.StaleReads // the platform's store: API reads answered while the store is away

	// The certificates' store and the internal CA; the edge's certificate
	// sources in order: an upload, a suspended name's stored certificate,
	// the manager's, the snapshot's (fleet.Certs).
	storage   *certs.Storage
	issuer    *certs.CAIssuer
	sources   *certs.Sources
	suspended *certs.Suspended
	uploaded  certs.Uploaded
	hub       *events.Hub
	webhooks  *webhooks.Sender
	// accessLog is nil when there is none (accesslog.go).
	accessLog *accesslog.Log
	metrics   *metrics.Registry // nil with Config.Metrics MetricsOff (metrics.go)
	syncer    *syncer.Loop      // keeps the edge and the certificates in step with the store

	httpsLn, httpLn, apiLn net.Listener
	quicConn               net.PacketConn // HTTP/3, on the HTTPS port over UDP; nil if Config.DisableHTTP3
	apiSrv                 *http.Server
	dash                   *dashboard.Dashboard
	demo                   *http.Server
	metricsAt              *metrics.Endpoint // where /metrics is served (Config.Metrics)

	keys *keyfile.Watcher // the secret key file, kept in step with the store's keyring

	warmUp  warmUpHook // the tests' hold on the warm-up; zero in production
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closing sync.Once
}

// warmUpHook forces a warm-up at a small count (above -1) and holds its
// first sync (hold), for tests (syncer.WarmConfig's Above and Hold).
type warmUpHook struct {
	above int
	hold  func(ctx context.Context) error
}

// Start builds every part of a node, listens on its addresses and returns
// once it serves: once the first snapshot of the store is applied, or,
// with a store of many hostnames (syncer.Loop.WarmUp), at once, each name
// then read from the store on its first connection until the first
// snapshot, which the sync loop applies in the background, is in. Ready
// (GET /ready) reports the first snapshot either way.
func Start(ctx context.Context, cfg config.Config) (*Node, error) {
	return start(ctx, cfg, warmUpHook{})
}

// start is Start with the tests' hold on the warm-up (zero: none).
func start(ctx context.Context, cfg config.Config, warmUp warmUpHook) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	n = &Node{cfg: cfg, log: cfg.Logger, warmUp: warmUp}
	self := n // error returns set n to nil
	defer func() {
		if err != nil {
			self.Close(context.Background())
		}
	}()
	if err := n.openAccessLog(); err != nil { // first: a bad path writes nothing to the data folder
		return nil, err
	}
	if err := fleet.MakeDataDir(cfg.DataDir); err != nil {
		return nil, err
	}

	keys, keySum, err := keyfile.Read(cfg.SecretKeyFile) // nil if missing: the watcher's Ensure decides
	if err != nil {
		return nil, err
	}
	// The store, or, with PostgreSQL down, the snapshot to start from.
	if n.db, n.fleet, err = fleet.Join(ctx, cfg.Store, cfg.DataDir, keys, n.log); err != nil {
		return nil, err
	}
	if keys != nil {
		n.db.SetKeyring(keys)
	}
	n.keys = keyfile.NewWatcher(keyfile.Config{Path: cfg.SecretKeyFile, Store: n.db, NodeID: n.fleet.ID, Sum: keySum,
		// The migration's scan of every secret waits for the first sync: at
		// a million certificates it takes seconds of the processor that
		// the warm-up's handshakes from the store need (BENCHMARKS.md).
		Prepared: func() bool { return n.fleet.Prepare.Done() && n.syncer.Synced() },
		Changed:  func() { n.fleet.Snapshots.Due() }, Logger: n.log})
	n.db.SetDefaultQuota(cfg.Quota)
	n.reads = api.NewStaleReads(n.db)
	if err := n.listen(); err != nil {
		return nil, err
	}
	n.fleet.Published.HTTP3 = n.quicConn != nil
	if n.metricsAt, err = metrics.Listen(cfg.Metrics); err != nil {
		return nil, &config.FieldError{Field: "Metrics", Value: strconv.Quote(cfg.Metrics), Err: err}
	}
	n.metrics = n.newMetrics()
	n.initACME()
	n.platform = platform.New(n.reads, n.platformOptions())
	n.storage = certs.NewStorage(n.db, certs.StorageOptions{})
	n.issuer = certs.NewCAIssuer(n.storage, cfg.BeforeIssue)
	// Default project, admin token, domain, internal CA; retried before
	// each sync if the node starts from its snapshot.
	n.fleet.Prepare = fleet.NewPrepare(fleet.PrepareConfig{DataDir: cfg.DataDir, Domain: cfg.Domain, LeafLifetime: cfg.LeafLifetime,
		Keys: n.keys, Platform: n.platform, Tokens: n.db, RememberToken: n.reads.RememberToken, CAStorage: n.storage, SetCA: n.issuer.SetCA})
	if err := n.fleet.Prepare.Do(ctx); err != nil && !n.fleet.Static() {
		return nil, err
	}
	certsConfig := n.certsConfig(n.storage, n.issuer) // ACME CAs, then the internal CA
	n.suspended = certs.NewSuspended(n.storage, certsConfig.Issuers)
	n.certs, err = certs.New(certsConfig)
	if err != nil {
		return nil, fmt.Errorf("starting the certificate manager: %w", err)
	}
	n.fleet.Certs = fleet.NewCertificates(n.certs, n.fleet.Loaded.CertificatesByName(n.log)) // nil without a snapshot
	if n.fleet.Static() {
		// Once the store is back, a routed name outside the snapshot is
		// served with its stored certificate before the first sync ends.
		stored := n.suspended.Stored()
		n.fleet.Certs.LoadStored(func(ctx context.Context, host string) *tls.Certificate {
			return stored.Certificate(ctx, host, nil)
		}, func() bool { return n.fleet.Health.Reachable() && n.syncer.Last() == nil })
	}
	n.sources = &certs.Sources{Uploaded: &n.uploaded, Suspended: n.suspended, Manager: n.certs, Served: n.fleet.Certs}
	n.edge = edge.New(cfg.EdgeConfig(edge.Config{
		GetCertificate: n.sources.GetCertificate, // an upload, a suspended name's stored one, the manager's, the snapshot's
		HTTPChallenge:  n.certs.HandleHTTPChallenge,
		HTTPSPort:      port(n.httpsLn.Addr()),
		Logger:         n.log,
		AccessLog:      n.accessLog.LogFunc(), // nil without an access log
		Metrics:        n.metrics,
	}))
	n.fleet.Published.Serves = n.edge.Has
	n.fleet.Build(fleet.BuildConfig{Store: n.db, DataDir: cfg.DataDir, Source: n.snapshotSource,
		Self:    store.Node{Version: cfg.Version, HTTPSAddr: n.HTTPSAddr(), HTTPAddr: n.HTTPAddr(), APIAddr: n.APIAddr()},
		ECHName: cfg.ECHName(cfg.Domain), ECHDisabled: cfg.DisableECH, SetTicketKeys: n.edge.SetSessionTicketKeys, SetECHKeys: n.edge.SetECHKeys})
	n.syncer = n.newSyncLoop()
	if cfg.Demo {
		if n.demo, err = demo.Start(ctx, n.platform, cfg.Domain); err != nil {
			return nil, err
		}
	}
	// Watch before the first sync: a change committed between that sync and
	// the watch loop's start would otherwise wait for the next resync.
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	changes := n.db.Watch(runCtx)
	// With many hostnames, serve while the first sync runs (Run applies it).
	warm := !n.fleet.Static() && n.syncer.WarmUp(ctx)
	if !warm {
		syncer.AwaitListen(ctx, changes, n.db.Kind() == "postgres" && !n.fleet.Static()) // its first signal, then the first sync
	}
	if n.fleet.Static() {
		if err := n.serveSnapshot(n.fleet.Loaded); err != nil {
			return nil, err
		}
	} else if !warm {
		if err := n.syncer.Sync(ctx); err != nil {
			return nil, fmt.Errorf("reading the first snapshot: %w", err)
		}
	}

	if err := n.startACME(runCtx); err != nil { // before anything captures n
		return nil, err
	}
	n.wg.Go(func() { n.keys.Run(runCtx) })
	n.hub = events.NewHub(events.HubConfig{Store: n.db, Logger: n.log})
	n.wg.Go(func() { n.hub.Run(runCtx) })
	// The events' maintenance waits for the first sync: it would take the
	// processor from a warm-up's handshakes (events.MaintainConfig.After).
	n.wg.Go(func() {
		events.Maintain(runCtx, events.MaintainConfig{Store: n.db, After: n.syncer.StoreSynced(), Logger: n.log})
	})
	n.webhooks, err = webhooks.New(webhooks.Config{Store: n.db, Owner: n.fleet.ID, AllowPrivate: cfg.Webhooks.AllowPrivate,
		AttemptTimeout: cfg.Webhooks.AttemptTimeout, Logger: n.log})
	if err != nil {
		return nil, err
	}
	n.wg.Go(func() { n.webhooks.Run(runCtx) })
	local := api.NewLocal(api.Config{
		Platform:  n.platform,
		CARoot:    n.issuer.RootPEM,
		ECH:       n.fleet.Published.Info,
		Nodes:     n.fleet.Members.Nodes,
		Ready:     n.ready,
		HTTPSPort: port(n.httpsLn.Addr()),
		Version:   cfg.Version,
		StoreKind: n.db.Kind(),
		Events:    n.hub,
		Webhooks:  n.webhooks,
		Metrics:   n.metricsAt.APIHandler(n.metrics),
		Logger:    n.log,
		// The certificate manager's window, so that renew_after is its.
		RenewalWindowRatio: cfg.ACME.RenewalWindowRatio,
	})
	n.dash, err = dashboard.New(dashboard.Config{API: local, UpstreamHealth: n.edge.UpstreamHealth,
		EdgeAddr: n.httpsLn.Addr().String(), CARoot: n.issuer.RootPEM, StoreKind: n.db.Kind(), Logger: n.log})
	if err != nil {
		return nil, err
	}
	apiMux := http.NewServeMux()
	apiMux.Handle(dashboard.Prefix, n.dash) // the dashboard, same origin as the API
	apiMux.Handle("/", local.Handler())
	n.apiSrv = api.NewServer(apiMux, n.log)
	if n.fleet.ECH != nil { // ECH from the first handshake on (Run keeps the keys fresh)
		n.fleet.ECH.Load(ctx, n.fleet.Loaded) // the snapshot's, if the node started from it, until the store answers
	}
	n.serve("https", func() error { return n.edge.ServeTLS(n.httpsLn) })
	if n.quicConn != nil { // the fleet's QUIC keys, else (nil) the node's own
		var keys *edge.QUICKeys
		if k := n.fleet.QUICKeysFor(ctx, n.db); k != nil {
			keys = &edge.QUICKeys{StatelessReset: k.StatelessReset, Token: k.Token}
		}
		n.serve("h3", func() error { return n.edge.ServeQUIC(n.quicConn, keys) })
	}
	n.serve("http", func() error { return n.edge.ServeHTTP(n.httpLn) })
	n.serve("api", func() error { return n.apiSrv.Serve(n.apiLn) })
	n.serve("metrics", func() error { return n.metricsAt.Serve(n.metrics) })
	n.wg.Go(func() { n.syncer.Run(runCtx, changes) })
	n.wg.Go(func() { n.platform.Maintain(runCtx) }) // token last use, audit retention
	n.fleet.Run(runCtx, &n.wg)                      // heartbeat, ticket and ECH keys, snapshot writer
	return n, nil
}

// listen opens the listeners, with HTTPS's UDP socket for HTTP/3 unless it
// is off (edge.ListenHTTPS); an address that cannot be had is a
// *FieldError of its field.
func (n *Node) listen() error {
	var err error
	n.httpsLn, n.quicConn, err = edge.ListenHTTPS(n.cfg.HTTPSAddr, !n.cfg.DisableHTTP3, n.log)
	if le := (*edge.ListenError)(nil); errors.As(err, &le) {
		hint := "is another server using it? pick another address"
		if le.What == "HTTP/3 (UDP)" {
			hint += ", or turn HTTP/3 off"
		}
		return &config.FieldError{Field: "HTTPSAddr", Value: strconv.Quote(n.cfg.HTTPSAddr), Err: fmt.Errorf("listening for %s: %w (%s)", le.What, le.Err, hint)}
	}
	for _, l := range []struct {
		field, what, addr string
		ln                *net.Listener
	}{
		{"HTTPAddr", "HTTP", n.cfg.HTTPAddr, &n.httpLn},
		{"APIAddr", "the API", n.cfg.APIAddr, &n.apiLn},
	} {
		if *l.ln, err = net.Listen("tcp", l.addr); err != nil {
			return &config.FieldError{Field: l.field, Value: strconv.Quote(l.addr), Err: fmt.Errorf("listening for %s: %w (is another server using it? pick another address)", l.what, err)}
		}
	}
	return nil
}

func (n *Node) ownAddrs() []string {
	var out []string
	for _, ln := range []net.Listener{n.httpsLn, n.httpLn, n.apiLn} {
		out = append(out, ln.Addr().String())
	}
	return out
}

func (n *Node) serve(what string, run func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := run(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			n.log.Error("listener stopped", "listener", what, "err", err)
		}
	}()
}

func (n *Node) ready(ctx context.Context) error {
	if !n.syncer.Synced() {
		return errors.New("the first snapshot is not loaded yet")
	}
	if err := n.db.Ping(ctx); err != nil {
		return fmt.Errorf("the store is not reachable: %w", err)
	}
	return nil
}

// HTTPSAddr, HTTPAddr and APIAddr return the addresses the node listens on.
func (n *Node) HTTPSAddr() string { return n.httpsLn.Addr().String() }
func (n *Node) HTTPAddr() string  { return n.httpLn.Addr().String() }
func (n *Node) APIAddr() string   { return n.apiLn.Addr().String() }

// DashboardURL is the dashboard's address on the API listener.
func (n *Node) DashboardURL() string { return "http://" + n.APIAddr() + dashboard.Prefix }

// SignInURL returns a link that signs a browser into the dashboard as the
// admin token (fleet.AdminToken), once, within ten minutes. The link
// holds a code, never the token.
func (n *Node) SignInURL() (string, error) {
	tok, err := fleet.AdminToken(n.cfg.DataDir)
	if err != nil {
		return "", err
	}
	return "http://" + n.APIAddr() + n.dash.SignInPath(tok), nil
}

// CA returns the node's internal CA.
func (n *Node) CA() *ca.CA { return n.issuer.CA() }

// Platform returns the rules layer, for tools and tests that act as the operator.
func (n *Node) Platform() *platform.Platform { return n.platform }

// Close stops serving: listeners are closed, open requests get until ctx ends.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	n.closing.Do(func() {
		if n.cancel != nil {
			n.cancel()
		}
		if n.apiSrv != nil {
			errs = append(errs, n.apiSrv.Shutdown(ctx))
		}
		errs = append(errs, n.metricsAt.Shutdown(ctx)) // nil: nothing to stop
		if n.edge != nil {
			errs = append(errs, n.edge.Shutdown(ctx))
		}
		if n.demo != nil {
			errs = append(errs, n.demo.Shutdown(ctx))
		}
		errs = append(errs, n.accessLog.Close()) // after the edge: its last lines are written; nil: none
		for _, ln := range []net.Listener{n.httpsLn, n.httpLn, n.apiLn} {
			if ln != nil {
				ln.Close()
			}
		}
		if n.quicConn != nil {
			n.quicConn.Close()
		}
		n.wg.Wait()
		if n.certs != nil {
			n.certs.Stop()
		}
		if n.db != nil {
			errs = append(errs, n.db.Close())
		}
	})
	return errors.Join(errs...)
}

func port(a net.Addr) int {
	_, p, _ := net.SplitHostPort(a.String())
	v, _ := strconv.Atoi(p)
	return v
}
