package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/logging"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// serverFlags are the flags of `spine up` and `spine serve`.
type serverFlags struct {
	store         string
	httpsAddr     string
	httpAddr      string
	apiAddr       string
	domain        string
	leafLifetime  time.Duration
	acme          acmeFlags // acme.go
	certCacheSize int
	keepMemory    bool
	resync        time.Duration
	renewCheck    time.Duration
	renewalWindow float64
	logFormat     string
	logLevel      string
}

func (f *serverFlags) register(cmd *cobra.Command, https, http, domain string) {
	// No env default for --store: cobra would print it, password and all, in --help.
	cmd.Flags().StringVar(&f.store, "store", "", "store: sqlite:PATH or postgres://... (default sqlite in the data folder; env SPINE_STORE)")
	cmd.Flags().StringVar(&f.httpsAddr, "https-addr", https, "HTTPS listen address")
	cmd.Flags().StringVar(&f.httpAddr, "http-addr", http, "HTTP listen address (redirects to HTTPS, answers ACME HTTP-01)")
	cmd.Flags().StringVar(&f.apiAddr, "api-addr", "127.0.0.1:2019", "API listen address (keep it on loopback unless a firewall guards it)")
	cmd.Flags().StringVar(&f.domain, "domain", domain, "domain given to the default project at start")
	cmd.Flags().DurationVar(&f.leafLifetime, "cert-lifetime", 24*time.Hour, "lifetime of certificates from the internal CA, 1h to 8760h (renewed automatically, see --renewal-window-ratio)")
	cmd.Flags().IntVar(&f.certCacheSize, "cert-cache-size", 10000, "most certificates held in memory, at least 1; the others are loaded from the store on their hostname's first handshake (-1: no bound)")
	cmd.Flags().DurationVar(&f.resync, "resync-interval", 30*time.Second, "how often the whole store is read again even without a change notice, to repair a missed one")
	cmd.Flags().DurationVar(&f.renewCheck, "renew-check-interval", certmagic.DefaultRenewCheckInterval, "how often certificates are checked for renewal (keep it well below the renewal window)")
	cmd.Flags().Float64Var(&f.renewalWindow, "renewal-window-ratio", certmagic.DefaultRenewalWindowRatio, "part of a certificate's lifetime, at its end, in which it is renewed, between 0 and 1 (a CA's ARI window, when it gives one, comes first)")
	cmd.Flags().BoolVar(&f.keepMemory, "keep-freed-memory", false, "do not return freed memory to the OS after a burst of new connections (the release costs a forced GC and a pause of up to a few hundred ms on one processor)")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "text", "format of the log lines on stderr: text (key=value) or json (one object a line)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "least level logged: debug (every step for every hostname), info, warn or error")
	f.acme.register(cmd)
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
	if err := f.check(); err != nil {
		return err
	}
	// One handler for every line: Spine's, certmagic's and acmez's (through
	// the node's Logger), and the standard log package's (SetDefault).
	format, _ := logging.ParseFormat(f.logFormat) // checked
	level, _ := logging.ParseLevel(f.logLevel)
	log := logging.New(os.Stderr, format, level)
	slog.SetDefault(log)
	acmeCfg, err := f.acme.config()
	if err != nil {
		return err
	}
	acmeCfg.RenewCheckInterval, acmeCfg.RenewalWindowRatio = f.renewCheck, f.renewalWindow
	dsn := f.store
	if dsn == "" {
		dsn = os.Getenv("SPINE_STORE")
	}
	if err := checkStore(dsn); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	n, err := node.Start(startCtx, node.Config{
		DataDir:        g.data,
		Store:          dsn,
		HTTPSAddr:      f.httpsAddr,
		HTTPAddr:       f.httpAddr,
		APIAddr:        f.apiAddr,
		Domain:         f.domain,
		Demo:           up,
		LeafLifetime:   f.leafLifetime,
		CertCacheSize:  f.certCacheSize,
		ResyncInterval: f.resync,
		Edge:           edge.Config{KeepFreedMemory: f.keepMemory},
		ACME:           acmeCfg,
		Version:        spineVersion(),
		Logger:         log,
	})
	if err != nil {
		return startError(err)
	}
	log.Info("spine is serving", "https", n.HTTPSAddr(), "http", n.HTTPAddr(), "api", n.APIAddr(), "data", g.data, "version", spineVersion())
	if up {
		printNextSteps(cmd, g, n, f.domain)
	}
	<-ctx.Done()
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := n.Close(sctx); err != nil {
		return err
	}
	log.Info("spine stopped")
	return nil
}

// Bounds of --cert-lifetime. By default renewal starts at 2/3 of the
// lifetime and is checked every 10 minutes, so a lifetime under an hour
// could lapse before it is renewed; the internal CA's intermediate lives a
// year, and a leaf never outlives it.
const (
	minLeafLifetime = time.Hour
	maxLeafLifetime = 365 * 24 * time.Hour
)

// check refuses flag values that make no sense, before anything is started
// or written, with a message that names the flag and says what to give.
func (f *serverFlags) check() error {
	for _, a := range []struct{ flag, addr string }{
		{"--https-addr", f.httpsAddr}, {"--http-addr", f.httpAddr}, {"--api-addr", f.apiAddr},
	} {
		if err := checkListenAddr(a.flag, a.addr); err != nil {
			return err
		}
	}
	if f.leafLifetime < minLeafLifetime || f.leafLifetime > maxLeafLifetime {
		return fmt.Errorf("--cert-lifetime %s: give a duration from 1h to 8760h (a year), e.g. 24h", f.leafLifetime)
	}
	for _, d := range []struct {
		flag string
		d    time.Duration
	}{{"--resync-interval", f.resync}, {"--renew-check-interval", f.renewCheck}} {
		if d.d <= 0 {
			return fmt.Errorf("%s %s: give a positive duration, e.g. 30s", d.flag, d.d)
		}
	}
	if !(f.renewalWindow > 0 && f.renewalWindow < 1) {
		return fmt.Errorf("--renewal-window-ratio %g: give the part of the lifetime to renew in, between 0 and 1 (e.g. 0.33: the last third)", f.renewalWindow)
	}
	if _, err := logging.ParseFormat(f.logFormat); err != nil {
		return fmt.Errorf("--log-format %q: give text or json", f.logFormat)
	}
	if _, err := logging.ParseLevel(f.logLevel); err != nil {
		return fmt.Errorf("--log-level %q: give debug, info, warn or error", f.logLevel)
	}
	if f.certCacheSize == 0 || f.certCacheSize < -1 {
		return fmt.Errorf("--cert-cache-size %d: give the most certificates to hold in memory (at least 1, e.g. 10000), or -1 for no bound", f.certCacheSize)
	}
	if f.domain != "" {
		if _, err := platform.NormalizeHostname(f.domain); err != nil {
			return fmt.Errorf("--domain: %w; give the domain this node serves, e.g. example.com", err)
		}
	}
	return nil
}

// checkListenAddr checks that addr is HOST:PORT or :PORT, with a numeric
// port (0 picks a free one).
func checkListenAddr(flag, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !validPort(port, true) || strings.ContainsAny(host, " /") {
		return fmt.Errorf("%s %q: write HOST:PORT or :PORT with a port from 0 to 65535, e.g. :443 or 127.0.0.1:8443", flag, addr)
	}
	return nil
}

// validPort reports whether p is a port number; zero only if zeroOK.
func validPort(p string, zeroOK bool) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n <= 65535 && (n > 0 || zeroOK && n == 0) && p == strconv.Itoa(n)
}

// checkStore checks the shape of a --store value ("" is the default) and,
// for SQLite, that its folder can exist, before anything is written. The
// value is shown without its password.
func checkStore(dsn string) error {
	const want = "write sqlite:PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
	switch {
	case dsn == "":
		return nil
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		if path == "" || strings.ContainsAny(path, "?#") {
			return fmt.Errorf("--store %q: give the path of the database file after sqlite: (without '?' or '#'), e.g. sqlite:/var/lib/spine/spine.db", dsn)
		}
		// The nearest folder that exists must be a folder, or the store's
		// folder cannot be created.
		for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
			fi, err := os.Stat(dir)
			if err == nil {
				if !fi.IsDir() {
					return fmt.Errorf("--store %q: %s is not a folder; give a path whose folder exists or can be created", dsn, dir)
				}
				return nil
			}
			if !errors.Is(err, fs.ErrNotExist) || dir == filepath.Dir(dir) {
				return fmt.Errorf("--store %q: %w; give a path whose folder exists or can be created", dsn, err)
			}
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		// pgx decides what it accepts (a socket folder in ?host=, several
		// hosts, no host for localhost), and its errors hide the password.
		if _, err := pgconn.ParseConfig(dsn); err != nil {
			return fmt.Errorf("--store %s: not a PostgreSQL URL (%v); %s", shownURL(dsn), err, want)
		}
		return nil
	default:
		return fmt.Errorf("--store: unknown kind of store (the value is not shown: it may hold a password); %s", want)
	}
}

// shownURL is raw as it may appear in a message: no password, no query
// (which may carry one, as ?password=), or nothing if it is no URL.
func shownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(value not shown: not a URL)"
	}
	u.RawQuery, u.ForceQuery = "", false
	return strconv.Quote(u.Redacted())
}

// startError adds to an error of node.Start the flag to look at.
func startError(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w (check --store: is the database running at that address, and does it accept this user?)", err)
	}
	return err
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
	fmt.Fprintf(cmd.OutOrStdout(), `
Spine is up. Every service you create is served over HTTPS on *.%[1]s.

  Try the demo service:
    curl --cacert %[2]s https://%[3]s.%[1]s:%[4]s/

  Create your own (point it at anything listening on HTTP):
    go run ./cmd/spine service create api --upstream http://127.0.0.1:9000 --wait%[5]s%[6]s
    curl --cacert %[2]s https://api.%[1]s:%[4]s/

  See what is served:   go run ./cmd/spine service list%[5]s%[6]s
  Certificates:         go run ./cmd/spine cert list%[5]s%[6]s
  Trust the CA:         %[2]s (or: go run ./cmd/spine ca root)

`, domain, root, node.DemoService, port, api, data)
}

func newProjectCmd(g *globals) *cobra.Command {
	pr := &cobra.Command{Use: "project", Short: "Operator commands on projects (talk to the store directly)"}
	var storeDSN string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project and print its API token (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dsn := storeDSN
			if dsn == "" {
				dsn = os.Getenv("SPINE_STORE")
			}
			if err := checkStore(dsn); err != nil {
				return err
			}
			if dsn == "" {
				dsn = "sqlite:" + filepath.Join(g.data, "spine.db")
			}
			ctx, cancel := cmdContext(cmd, 30*time.Second)
			defer cancel()
			db, err := store.Open(ctx, dsn)
			if err != nil {
				return startError(fmt.Errorf("opening the store: %w", err))
			}
			defer db.Close()
			p, tok, err := platform.New(db, platform.Options{}).CreateProject(ctx, strings.ToLower(args[0]))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "project %s created (id %s); its API token, shown only this once:\n", p.Name, p.ID)
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	create.Flags().StringVar(&storeDSN, "store", "", "store: sqlite:PATH or postgres://... (default sqlite in the data folder; env SPINE_STORE)")
	pr.AddCommand(create)
	return pr
}
