package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/edge"
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
}

func (f *serverFlags) register(cmd *cobra.Command, https, http, domain string) {
	cmd.Flags().StringVar(&f.store, "store", envOr("SPINE_STORE", ""), "store: sqlite:PATH or postgres://... (default sqlite in the data folder; env SPINE_STORE)")
	cmd.Flags().StringVar(&f.httpsAddr, "https-addr", https, "HTTPS listen address")
	cmd.Flags().StringVar(&f.httpAddr, "http-addr", http, "HTTP listen address (redirects to HTTPS, answers ACME HTTP-01)")
	cmd.Flags().StringVar(&f.apiAddr, "api-addr", "127.0.0.1:2019", "API listen address (keep it on loopback unless a firewall guards it)")
	cmd.Flags().StringVar(&f.domain, "domain", domain, "domain given to the default project at start")
	cmd.Flags().DurationVar(&f.leafLifetime, "cert-lifetime", 24*time.Hour, "lifetime of certificates from the internal CA (renewed automatically at 2/3)")
	cmd.Flags().IntVar(&f.certCacheSize, "cert-cache-size", 10000, "most certificates held in memory; the others are loaded from the store on their hostname's first handshake (-1: no bound)")
	cmd.Flags().BoolVar(&f.keepMemory, "keep-freed-memory", false, "do not return freed memory to the OS after a burst of new connections (the release costs a forced GC and a pause of up to a few hundred ms on one processor)")
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
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	acmeCfg, err := f.acme.config()
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	n, err := node.Start(startCtx, node.Config{
		DataDir:       g.data,
		Store:         f.store,
		HTTPSAddr:     f.httpsAddr,
		HTTPAddr:      f.httpAddr,
		APIAddr:       f.apiAddr,
		Domain:        f.domain,
		Demo:          up,
		LeafLifetime:  f.leafLifetime,
		CertCacheSize: f.certCacheSize,
		Edge:          edge.Config{KeepFreedMemory: f.keepMemory},
		ACME:          acmeCfg,
		Version:       spineVersion(),
		Logger:        log,
	})
	if err != nil {
		return err
	}
	log.Info("spine is serving", "https", n.HTTPSAddr(), "http", n.HTTPAddr(), "api", n.APIAddr(), "data", g.data)
	if up {
		printNextSteps(cmd, g, n, f.domain)
	}
	<-ctx.Done()
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	return n.Close(sctx)
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
				dsn = "sqlite:" + filepath.Join(g.data, "spine.db")
			}
			ctx, cancel := cmdContext(cmd, 30*time.Second)
			defer cancel()
			db, err := store.Open(ctx, dsn)
			if err != nil {
				return fmt.Errorf("opening the store: %w", err)
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
	create.Flags().StringVar(&storeDSN, "store", envOr("SPINE_STORE", ""), "store: sqlite:PATH or postgres://... (default sqlite in the data folder)")
	pr.AddCommand(create)
	return pr
}
