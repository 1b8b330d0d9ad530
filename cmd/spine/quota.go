package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/client"
)

func newQuotaCmd(g *globals) *cobra.Command {
	quota := &cobra.Command{
		Use:   "quota",
		Short: "The project's limits (domains, services, hostnames, certificate orders per hour) and its use",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			q, err := c.Quota(ctx)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), q, func(tw *tabwriter.Writer) { quotaText(tw, q) })
		}),
	}
	show := &cobra.Command{
		Use:   "show PROJECT_ID",
		Short: "Operator: a project's limits, its own limits and its use",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			q, err := c.ProjectQuota(ctx, args[0])
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), q, func(tw *tabwriter.Writer) { quotaText(tw, q) })
		}),
	}
	var vals [4]string
	names := [4]string{"domains", "services", "hostnames", "orders-per-hour"}
	set := &cobra.Command{
		Use:   "set PROJECT_ID [--domains N] [--services N] [--hostnames N] [--orders-per-hour N]",
		Short: "Operator: set a project's own limits (N, 0 for no limit, or default to follow spine serve --quota-...)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			cur, err := c.ProjectQuota(ctx, args[0])
			if err != nil {
				return err
			}
			o := *cur.Override
			fields := [4]**int{&o.Domains, &o.Services, &o.Hostnames, &o.OrdersPerHour}
			changed := false
			for i, name := range names {
				if !cmd.Flags().Changed(name) {
					continue
				}
				changed = true
				if vals[i] == "default" {
					*fields[i] = nil
					continue
				}
				n, err := strconv.Atoi(vals[i])
				if err != nil || n < 0 {
					return fmt.Errorf("--%s %q: give a limit (0 for no limit) or default", name, vals[i])
				}
				*fields[i] = &n
			}
			if !changed {
				return fmt.Errorf("give at least one of --domains, --services, --hostnames, --orders-per-hour")
			}
			q, err := c.SetProjectQuota(ctx, args[0], o)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), q, func(tw *tabwriter.Writer) { quotaText(tw, q) })
		}),
	}
	for i, name := range names {
		set.Flags().StringVar(&vals[i], name, "", "limit of "+name+": N, 0 for no limit, or default")
	}
	quota.AddCommand(show, set)
	return quota
}

func quotaText(tw *tabwriter.Writer, q client.Quota) {
	lim := func(p *int) string {
		if p == nil {
			return "no limit"
		}
		return strconv.Itoa(*p)
	}
	own := func(p *int) string {
		switch {
		case q.Override == nil:
			return ""
		case p == nil:
			return "default"
		case *p == 0:
			return "own: no limit"
		}
		return "own"
	}
	fmt.Fprintf(tw, "project:\t%s\n", q.Project)
	fmt.Fprintln(tw, "LIMIT\tUSED\tMAX\t")
	var o client.QuotaLimits
	if q.Override != nil {
		o = *q.Override
	}
	fmt.Fprintf(tw, "domains\t%d\t%s\t%s\n", q.Usage.Domains, lim(q.Limits.Domains), own(o.Domains))
	fmt.Fprintf(tw, "services\t%d\t%s\t%s\n", q.Usage.Services, lim(q.Limits.Services), own(o.Services))
	fmt.Fprintf(tw, "hostnames\t%d\t%s\t%s\n", q.Usage.Hostnames, lim(q.Limits.Hostnames), own(o.Hostnames))
	fmt.Fprintf(tw, "certificate orders per hour\t%d\t%s\t%s\n", q.Usage.OrdersLastHour, lim(q.Limits.OrdersPerHour), own(o.OrdersPerHour))
}
