package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/demo"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/gcgoal"
	"github.com/spine-platform/spine/internal/logging"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/store"
)

// serverFlags are the flags of `spine up` and `spine serve`.
type serverFlags struct {
	store         string
	secretKeyFile string
	httpsAddr     string
	httpAddr      string
	apiAddr       string
	metrics       string
	metricsSeries int
	domain        string
	leafLifetime  time.Duration
	acme          acmeFlags // acme.go
	certCacheSize int
	keepMemory    bool
	http3         bool
	ech           bool
	echPublicName string
	resync        time.Duration
	renewCheck    time.Duration
	renewalWindow float64
	logFormat     string
	logLevel      string
	accessLog     string
	tenancy       tenancyFlags  // tenancy.go
	testHooks     testHookFlags // testhooks.go: none unless built with the spinetest tag
}

func (f *serverFlags) register(cmd *cobra.Command, https, http, domain string) {
	// No env default for --store: cobra would print it, password and all, in --help.
	cmd.Flags().StringVar(&f.store, "store", "", "store: sqlite:PATH or postgres://... (default sqlite in the data folder; env SPINE_STORE)")
	cmd.Flags().StringVar(&f.secretKeyFile, "secret-key-file", "", "file of the keys that seal the private keys in the store and the snapshot, newest first; the same on every node of a fleet (default secret.key in the data folder, created if the store holds nothing sealed yet)")
	cmd.Flags().StringVar(&f.httpsAddr, "https-addr", https, "HTTPS listen address")
	cmd.Flags().StringVar(&f.httpAddr, "http-addr", http, "HTTP listen address (redirects to HTTPS, answers ACME HTTP-01)")
	cmd.Flags().StringVar(&f.apiAddr, "api-addr", config.DefaultAPIAddr, "API listen address (keep it on loopback unless a firewall guards it)")
	cmd.Flags().IntVar(&f.metricsSeries, "metrics-max-series", config.DefaultMetricsMaxSeries, "at most this many /metrics series labelled by hostname (certificates), and by service and upstream: beyond it those not ready or not healthy come first, and spine_certificate_hostnames counts every hostname; and at most this many services with request series, the least recently used dropped first")
	cmd.Flags().StringVar(&f.metrics, "metrics", config.MetricsOnAPI, "where GET /metrics (Prometheus, no token) is served: api (the API's listener), off, or HOST:PORT of a listener of its own (it names every project's hostnames and upstreams: move it off the API if tenants reach the API)")
	cmd.Flags().StringVar(&f.domain, "domain", domain, "domain given to the default project at start")
	cmd.Flags().DurationVar(&f.leafLifetime, "cert-lifetime", config.DefaultLeafLifetime, "lifetime of certificates from the internal CA, 1h to 8760h (renewed automatically, see --renewal-window-ratio)")
	cmd.Flags().IntVar(&f.certCacheSize, "cert-cache-size", config.DefaultCertCacheSize, "most certificates held in memory, at least 1; the others are loaded from the store on their hostname's first handshake (-1: no bound)")
	cmd.Flags().DurationVar(&f.resync, "resync-interval", config.DefaultResyncInterval, "how often the store is checked even without a change notice, to repair a missed one (every service is read again when its revision moved, and at least every ten intervals)")
	cmd.Flags().DurationVar(&f.renewCheck, "renew-check-interval", config.DefaultRenewCheckInterval, "how often certificates are checked for renewal (keep it well below the renewal window)")
	cmd.Flags().Float64Var(&f.renewalWindow, "renewal-window-ratio", config.DefaultRenewalWindowRatio, "part of a certificate's lifetime, at its end, in which it is renewed, between 0 and 1 (a CA's ARI window, when it gives one, comes first)")
	cmd.Flags().BoolVar(&f.http3, "http3", true, "serve HTTP/3 (QUIC) on the HTTPS port over UDP, advertised with Alt-Svc on HTTP/1.1 and HTTP/2 answers (--http3=false: TCP only)")
	cmd.Flags().BoolVar(&f.ech, "ech", true, "Encrypted Client Hello: clients that have the configuration (from DNS HTTPS records, see spine ech config) show only --ech-public-name on the wire (--ech=false: off)")
	cmd.Flags().StringVar(&f.echPublicName, "ech-public-name", "", "the name ECH clients show on the wire, served with a certificate of its own; the same on every node (default ech.<--domain>)")
	cmd.Flags().BoolVar(&f.keepMemory, "keep-freed-memory", false, "do not return freed memory to the OS after a burst of new connections or a sync of every service (the release costs a forced GC and a pause of up to a few hundred ms on one processor; without it the runtime returns that memory slowly)")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "text", "format of the log lines on stderr: text (key=value) or json (one object a line)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "least level logged: debug (every step for every hostname), info, warn or error")
	// spine up shows the traffic of local development; spine serve writes
	// none until asked, as Caddy and Traefik: a busy edge's lines in the
	// journal would hit journald's rate limit and take the node's own
	// warnings with them (README, "Access logs").
	accessDefault := config.AccessLogOff
	if domain == "localhost" {
		accessDefault = config.AccessLogStderr
	}
	cmd.Flags().StringVar(&f.accessLog, "access-log", accessDefault, "where to write one line per request, in the --log-format: stderr, a FILE (appended to, created 0640, reopened on SIGUSR1 for logrotate) or off")
	f.acme.register(cmd)
	f.tenancy.register(cmd, domain == "localhost") // spine up: local development
	f.testHooks.register(cmd)
}

func newUpCmd(g *globals) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole platform on this machine: HTTPS on *.localhost, SQLite, internal CA, a demo service",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, g, f, true)
		},
	}
	f.register(cmd, "127.0.0.1:8443", "127.0.0.1:8080", "localhost")
	return cmd
}

func newServeCmd(g *globals) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a production Spine node (HTTPS on :443, HTTP on :80, API on loopback)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, g, f, false)
		},
	}
	f.register(cmd, ":443", ":80", "")
	return cmd
}

func run(cmd *cobra.Command, g *globals, f serverFlags, up bool) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := f.config(g, up)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return configError(err)
	}
	// One handler for every line: Spine's, certmagic's and acmez's (through
	// the node's Logger), and the standard log package's (SetDefault).
	format, _ := logging.ParseFormat(f.logFormat) // checked by config
	level, _ := logging.ParseLevel(f.logLevel)
	log := logging.New(os.Stderr, format, level)
	slog.SetDefault(log)
	// The node warns about small UDP buffers itself, naming the sysctls;
	// quic-go's own warning (through the log package) would repeat it.
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	cfg.Logger = log
	// The collector's heap goal is at least 16 MiB above the live heap
	// (internal/gcgoal): on a node with few hostnames it otherwise runs
	// every 50 handshakes; and at most 128 MiB above it, so that a node
	// with hundreds of thousands of hostnames does not keep as much again
	// in garbage. GOGC in the environment turns this off.
	defer gcgoal.Start(gcgoal.DefaultFloor, gcgoal.DefaultCeiling)()
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	n, err := node.Start(startCtx, cfg)
	if err != nil {
		return startError(err)
	}
	log.Info("spine is serving", "https", n.HTTPSAddr(), "http", n.HTTPAddr(), "api", n.APIAddr(), "data", g.data, "version", spineVersion())
	if up {
		printNextSteps(cmd, g, n, f.domain)
	}
	waitReopening(ctx, n, log)
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := n.Close(sctx); err != nil {
		return err
	}
	log.Info("spine stopped")
	return nil
}

// waitReopening waits for ctx to end, opening the access log file again on
// each SIGUSR1 (logrotate's postrotate; the signal nginx and Traefik use).
// SIGHUP keeps its default: it ends a `spine up` whose terminal closed.
func waitReopening(ctx context.Context, n *node.Node, log *slog.Logger) {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-usr1:
			if err := n.ReopenAccessLog(); err != nil {
				log.Error("reopening the access log", "err", err)
			} else {
				log.Info("access log reopened")
			}
		}
	}
}

// config turns the flags into the node's configuration, refusing what only
// the command line can get wrong: a flag given as zero or empty (which
// config.Config would take for its default; a flag shows its default
// instead), the log flags, and the ACME flags' syntax (acme.go).
// config.Config.Validate checks the rest.
func (f *serverFlags) config(g *globals, up bool) (config.Config, error) {
	if err := f.tenancy.check(); err != nil {
		return config.Config{}, err
	}
	for _, z := range []struct {
		flag, hint string
		zero       bool
	}{
		{"--https-addr", "write HOST:PORT or :PORT, e.g. :443", f.httpsAddr == ""},
		{"--http-addr", "write HOST:PORT or :PORT, e.g. :80", f.httpAddr == ""},
		{"--api-addr", "write HOST:PORT, e.g. 127.0.0.1:2019", f.apiAddr == ""},
		{"--metrics", "write api, off, or HOST:PORT, e.g. 127.0.0.1:9180", f.metrics == ""},
		{"--dns-addr", "write HOST:PORT or :PORT, e.g. :53", f.acme.dnsAddr == ""},
		{"--cert-lifetime", "give a duration from 1h to 8760h (a year), e.g. 24h", f.leafLifetime == 0},
		{"--cert-cache-size", "give the most certificates to hold in memory (at least 1, e.g. 10000), or -1 for no bound", f.certCacheSize == 0},
		{"--resync-interval", "give a positive duration, e.g. 30s", f.resync == 0},
		{"--renew-check-interval", "give a positive duration, e.g. 10m", f.renewCheck == 0},
		{"--domain-check-interval", "give a positive duration, e.g. 1m", f.acme.checkInterval == 0},
		{"--renewal-window-ratio", "give the part of the lifetime to renew in, between 0 and 1 (e.g. 0.33: the last third)", f.renewalWindow == 0},
	} {
		if z.zero {
			return config.Config{}, fmt.Errorf("%s (empty or zero): %s", z.flag, z.hint)
		}
	}
	if _, err := logging.ParseFormat(f.logFormat); err != nil {
		return config.Config{}, fmt.Errorf("--log-format %q: give text or json", f.logFormat)
	}
	if _, err := logging.ParseLevel(f.logLevel); err != nil {
		return config.Config{}, fmt.Errorf("--log-level %q: give debug, info, warn or error", f.logLevel)
	}
	if f.accessLog == "" {
		return config.Config{}, errors.New("--access-log (empty): give stderr, the path of a file, or off")
	}
	acmeCfg, err := f.acme.config()
	if err != nil {
		return config.Config{}, err
	}
	acmeCfg.RenewCheckInterval, acmeCfg.RenewalWindowRatio = f.renewCheck, f.renewalWindow
	if acmeCfg.Budgets, err = f.tenancy.budgets(); err != nil {
		return config.Config{}, err
	}
	format, _ := logging.ParseFormat(f.logFormat)
	cfg := config.Config{
		AccessLog:       f.accessLog,
		AccessLogFormat: format,
		DataDir:         g.data,
		Store:           storeDSN(f.store),
		SecretKeyFile:   f.secretKeyFile,
		Settings: edge.Settings{HTTPSAddr: f.httpsAddr, HTTPAddr: f.httpAddr, DisableHTTP3: !f.http3,
			DisableECH: !f.ech, ECHPublicName: f.echPublicName},
		APIAddr:          f.apiAddr,
		Metrics:          f.metrics,
		MetricsMaxSeries: f.metricsSeries,
		Domain:           f.domain,
		Demo:             up,
		LeafLifetime:     f.leafLifetime,
		CertCacheSize:    f.certCacheSize,
		ResyncInterval:   f.resync,
		Edge:             edge.Config{KeepFreedMemory: f.keepMemory},
		ACME:             acmeCfg,
		Webhooks:         f.tenancy.webhooks(),
		Quota:            f.tenancy.quota,
		Version:          spineVersion(),
	}
	f.testHooks.apply(&cfg)
	return cfg, nil
}

// storeDSN is --store, else $SPINE_STORE, else "" (the data folder's SQLite).
func storeDSN(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv("SPINE_STORE")
}

// flagOf names the flag of each config.Config field the flags set.
var flagOf = map[string]string{
	"AccessLog": "--access-log", "AccessLogFormat": "--log-format",
	"HTTPSAddr": "--https-addr", "HTTPAddr": "--http-addr", "APIAddr": "--api-addr", "Metrics": "--metrics", "MetricsMaxSeries": "--metrics-max-series", "Store": "--store", "SecretKeyFile": "--secret-key-file",
	"Domain": "--domain", "ECHPublicName": "--ech-public-name", "LeafLifetime": "--cert-lifetime", "CertCacheSize": "--cert-cache-size",
	"ResyncInterval": "--resync-interval", "ACME.CheckInterval": "--domain-check-interval",
	"Webhooks.AttemptTimeout": "--webhook-timeout", "Quota.Domains": "--quota-domains", "Quota.Services": "--quota-services",
	"Quota.Hostnames": "--quota-hostnames", "Quota.OrdersPerHour": "--quota-orders-per-hour", "ACME.Budgets": "--acme-ca-budget",
	"ACME.RenewCheckInterval": "--renew-check-interval", "ACME.RenewalWindowRatio": "--renewal-window-ratio",
	"ACME.DNSAddr": "--dns-addr", "ACME.CAs": "--acme-ca", "ACME.EAB": "--acme-eab-kid and --acme-eab-hmac",
	"ACME.EAB.MACKey": "--acme-eab-hmac", "ACME.DelegationZone": "--dns-delegation-zone", "ACME.DNSProviders": "--dns-rfc2136",
}

// configError rewrites a *config.FieldError in the words of the command line:
// the flag instead of the field.
func configError(err error) error {
	var fe *config.FieldError
	if !errors.As(err, &fe) || flagOf[fe.Field] == "" {
		return err
	}
	name := flagOf[fe.Field]
	if fe.Value != "" {
		name += " " + fe.Value
	}
	if fe.Field == "ACME.CAs" {
		return fmt.Errorf("%s: %w, or one of letsencrypt, letsencrypt-staging", name, fe.Err)
	}
	return fmt.Errorf("%s: %w", name, fe.Err)
}

// startError adds to an error of node.Start the flag to look at.
func startError(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w (check --store: is the database running at that address, and does it accept this user?)", err)
	}
	return configError(err)
}

func printNextSteps(cmd *cobra.Command, g *globals, n *node.Node, domain string) {
	_, port, _ := net.SplitHostPort(n.HTTPSAddr())
	root := filepath.Join(g.data, "ca", "root.pem")
	api := ""
	if n.APIAddr() != "127.0.0.1:2019" {
		api = " --api http://" + n.APIAddr()
	}
	data := ""
	if g.data != ".spine" {
		data = " --data " + g.data
	}
	dash := "  Dashboard:            " + n.DashboardURL() + "\n"
	if link, err := n.SignInURL(); err == nil {
		dash += "  Sign in (once, within 10 minutes): " + link + "\n"
	}
	fmt.Fprintf(cmd.OutOrStdout(), `
Spine is up. Every service you create is served over HTTPS on *.%[1]s.

%[7]s
  Try the demo service:
    curl --cacert %[2]s https://%[3]s.%[1]s:%[4]s/

  Create your own (point it at anything listening on HTTP):
    go run ./cmd/spine service create api --upstream http://127.0.0.1:9000 --wait%[5]s%[6]s
    curl --cacert %[2]s https://api.%[1]s:%[4]s/

  See what is served:   go run ./cmd/spine service list%[5]s%[6]s
  Certificates:         go run ./cmd/spine cert list%[5]s%[6]s
  Trust the CA:         go run ./cmd/spine ca trust%[5]s%[6]s (system and browsers; needs root for the system store, or add --no-system), or use %[2]s

`, domain, root, demo.Service, port, api, data, dash)
}
