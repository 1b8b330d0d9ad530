package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/platform"
)

// tokenFlags names the flag of `token create` that each API error code is about.
var tokenFlags = map[string]string{
	"invalid_scope":  "--scope",
	"missing_scope":  "--scope",
	"invalid_expiry": "--expires",
	"invalid_name":   "--name",
	"conflict":       "--name",
}

func newTokenCmd(g *globals) *cobra.Command {
	tok := &cobra.Command{Use: "token", Aliases: []string{"tokens"}, Short: "Create, list and revoke the project's API tokens"}
	var in client.TokenCreate
	create := &cobra.Command{
		Use:   "create --name NAME [--scope S ...] [--expires 30d]",
		Short: "Make an API token and print its value (shown once)",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			if strings.TrimSpace(in.Name) == "" {
				return errors.New("--name: give the token a name (lower-case letters, digits, hyphens), e.g. --name ci")
			}
			if in.ExpiresIn != "" {
				if _, err := platform.ParseLifetime(in.ExpiresIn); err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
			}
			t, err := c.CreateToken(ctx, in)
			if err != nil {
				var e *client.Error
				if errors.As(err, &e) && tokenFlags[e.Code] != "" {
					return fmt.Errorf("%s: %w", tokenFlags[e.Code], err)
				}
				return err
			}
			if g.output == "json" {
				return g.print(cmd.OutOrStdout(), t, nil)
			}
			expires := "never expires"
			if t.ExpiresAt != nil {
				expires = "expires " + t.ExpiresAt.Format(time.RFC3339)
			}
			// The value alone on stdout (for $(...)), the rest on stderr.
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s created (scopes %s; %s); its value, shown only this once:\n", t.Name, strings.Join(t.Scopes, ", "), expires)
			fmt.Fprintln(cmd.OutOrStdout(), t.Value)
			return nil
		}),
	}
	create.Flags().StringVar(&in.Name, "name", "", "the token's name, unique in the project (lower-case letters, digits, hyphens)")
	create.Flags().StringArrayVar(&in.Scopes, "scope", nil, "what the token may do, repeatable: read, services:write, domains:write, tokens:write, operator (default: the scopes of the token that makes it)")
	create.Flags().StringVar(&in.ExpiresIn, "expires", "", "lifetime, e.g. 30d, 12h, 90m (default: never expires)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the project's tokens: name, scopes, created, last used, expiry",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			ts, err := c.Tokens(ctx)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), ts, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tSCOPES\tCREATED\tLAST USED\tEXPIRES")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, strings.Join(t.Scopes, ","), t.CreatedAt.Format(time.RFC3339), timeOr(t.LastUsedAt, "never"), timeOr(t.ExpiresAt, "never"))
				}
			})
		}),
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: from then on it gets 401 on every node",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			if err := c.RevokeToken(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		}),
	}
	tok.AddCommand(create, list, revoke)
	return tok
}

func timeOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Format(time.RFC3339)
}

func newProjectCmd(g *globals) *cobra.Command {
	pr := &cobra.Command{Use: "project", Aliases: []string{"projects"}, Short: "Operator commands on projects (an operator token: the default project's admin token)"}
	var storeFlag string
	create := &cobra.Command{
		Use:   "create NAME [--store DSN]",
		Short: "Create a project and print its API token (shown once); with --store, offline, on the store itself",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dsn := storeDSN(storeFlag)
			var (
				p   client.Project
				tok string
			)
			ctx, cancel := cmdContext(cmd, 30*time.Second)
			defer cancel()
			if dsn != "" {
				// Offline: no server needs to run (bootstrapping an empty store).
				sp, t, err := node.CreateProject(ctx, config.Config{DataDir: g.data, Store: dsn}, strings.ToLower(args[0]))
				if err != nil {
					return startError(configError(err))
				}
				p, tok = client.Project{ID: sp.ID, Name: sp.Name}, t
			} else {
				c, err := g.client()
				if err != nil {
					return err
				}
				pc, err := c.CreateProject(ctx, strings.ToLower(args[0]))
				if err != nil {
					return err
				}
				p, tok = pc.Project, pc.Token
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "project %s created (id %s); its API token, shown only this once:\n", p.Name, p.ID)
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	create.Flags().StringVar(&storeFlag, "store", "", "create it on this store directly, with no server running: sqlite:PATH or postgres://... (env SPINE_STORE)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List every project",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			ps, err := c.Projects(ctx)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), ps, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tID\tCREATED\tSTATE")
				for _, p := range ps {
					state := "active"
					if p.SuspendedAt != nil {
						state = "suspended since " + p.SuspendedAt.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.ID, timeOr(p.CreatedAt, "-"), state)
				}
			})
		}),
	}
	act := func(use, short, done string, do func(context.Context, *client.Client, string) error) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
				if err := do(ctx, c, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "project %s %s\n", args[0], done)
				return nil
			}),
		}
	}
	suspend := act("suspend", "Suspend a project: its services answer 503, its certificates are not renewed, its tokens change nothing", "suspended",
		func(ctx context.Context, c *client.Client, name string) error {
			_, err := c.SuspendProject(ctx, name)
			return err
		})
	resume := act("resume", "Resume a suspended project", "resumed",
		func(ctx context.Context, c *client.Client, name string) error {
			_, err := c.ResumeProject(ctx, name)
			return err
		})
	del := act("delete", "Delete a project: its services, domains (free for others from then on) and tokens", "deleted",
		func(ctx context.Context, c *client.Client, name string) error { return c.DeleteProject(ctx, name) })
	pr.AddCommand(create, list, suspend, resume, del)
	return pr
}

func newAuditCmd(g *globals) *cobra.Command {
	var q client.AuditQuery
	cmd := &cobra.Command{
		Use:   "audit [--project P] [--limit N] [--before ID]",
		Short: "Show the audit trail: every change made through the API, newest first",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			if q.Limit < 1 || q.Limit > 1000 {
				return fmt.Errorf("--limit %d: give from 1 to 1000", q.Limit)
			}
			if q.Before < 0 {
				return fmt.Errorf("--before %d: give the ID of an entry (spine audit shows them)", q.Before)
			}
			es, err := c.Audit(ctx, q)
			if err != nil {
				var e *client.Error
				if errors.As(err, &e) && (e.Code == "missing_scope" || e.Code == "not_found") && q.Project != "" {
					return fmt.Errorf("--project: %w", err)
				}
				return err
			}
			return g.print(cmd.OutOrStdout(), es, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tTIME\tPROJECT\tTOKEN\tACTION\tSUBJECT\tRESULT\tCLIENT")
				for _, e := range es {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Time.Format(time.RFC3339), dash(e.Project), dash(e.Token), e.Action, dash(e.Subject), e.Result, e.Client)
				}
			})
		}),
	}
	cmd.Flags().StringVar(&q.Project, "project", "", "an operator's filter: one project's entries (name or ID)")
	cmd.Flags().IntVar(&q.Limit, "limit", 100, "at most this many entries, 1 to 1000")
	cmd.Flags().Int64Var(&q.Before, "before", 0, "entries older than this ID (to page back)")
	return cmd
}
