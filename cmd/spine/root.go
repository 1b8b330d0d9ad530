package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/client"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func spineVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// globals are the flags every command takes.
type globals struct {
	data   string
	api    string
	output string
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "spine",
		Short:         "Spine serves every service on your domain over HTTPS, with certificates it gets and renews itself",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.data, "data", envOr("SPINE_DATA", ".spine"), "data folder (env SPINE_DATA)")
	root.PersistentFlags().StringVar(&g.api, "api", envOr("SPINE_API", "http://127.0.0.1:2019"), "API address (env SPINE_API)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format of list/show commands: text or json")
	root.AddCommand(
		newUpCmd(g), newServeCmd(g),
		newServiceCmd(g), newDomainCmd(g), newCertCmd(g), newCACmd(g),
		newProjectCmd(g), newTokenCmd(g), newAuditCmd(g), newVersionCmd(g),
		newNodesCmd(g), newSecretsCmd(g), newInspectCmd(g), newECHCmd(g), newEventsCmd(g), newWebhookCmd(g), newQuotaCmd(g), newCommandsCmd(),
	)
	return root
}

// newCommandsCmd is `spine __commands`, hidden: it prints the path of every
// command a user can run, one a line, so that tests can tell when a new
// command has no case of theirs (internal/security's TestSecretHygiene).
func newCommandsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "__commands",
		Short:  "List every runnable command (for tests)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var walk func(c *cobra.Command)
			walk = func(c *cobra.Command) {
				if c.Hidden {
					return
				}
				if c.Runnable() && c.HasParent() {
					fmt.Fprintln(cmd.OutOrStdout(), strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" "))
				}
				for _, sub := range c.Commands() {
					walk(sub)
				}
			}
			walk(cmd.Root())
			return nil
		},
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// client returns an API client with the token from SPINE_TOKEN or <data>/admin.token.
func (g *globals) client() (*client.Client, error) {
	tok := os.Getenv("SPINE_TOKEN")
	if tok == "" {
		b, err := os.ReadFile(filepath.Join(g.data, "admin.token"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("no API token: set SPINE_TOKEN, or run this where `spine up` runs (it writes %s), or pass --data", filepath.Join(g.data, "admin.token"))
			}
			return nil, fmt.Errorf("reading the API token: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	api := g.api
	if !strings.Contains(api, "://") {
		api = "http://" + api
	}
	return client.New(api, tok), nil
}

func (g *globals) checkOutput() error {
	if g.output != "text" && g.output != "json" {
		return fmt.Errorf("--output must be text or json, not %q", g.output)
	}
	return nil
}

// print writes v as JSON when --output json, else calls text.
func (g *globals) print(w io.Writer, v any, text func(tw *tabwriter.Writer)) error {
	if err := g.checkOutput(); err != nil {
		return err
	}
	if g.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

func cmdContext(cmd *cobra.Command, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), d)
}

func newCACmd(g *globals) *cobra.Command {
	ca := &cobra.Command{Use: "ca", Short: "The internal certificate authority"}
	ca.AddCommand(&cobra.Command{
		Use:   "root",
		Short: "Print the internal CA's root certificate (PEM), to add to a trust store",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			pem, err := c.CARoot(ctx)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(pem)
			return err
		}),
	})
	ca.AddCommand(newCATrustCmd(g, true), newCATrustCmd(g, false))
	return ca
}

// withClient wraps the body of a command that talks to the API: it builds the
// client and bounds the call by timeout.
func (g *globals) withClient(timeout time.Duration, run func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
		defer cancel()
		return run(ctx, c, cmd, args)
	}
}
