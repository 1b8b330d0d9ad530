package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/client"
)

func newDomainVerifyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify DOMAIN",
		Short: "Look up the domain's ownership record now and verify it (or take it over from another project)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			d, err := c.VerifyDomain(ctx, args[0])
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), d, func(tw *tabwriter.Writer) {
				switch {
				case d.Moved:
					fmt.Fprintf(tw, "domain %s verified and moved to this project; the other project's services on it are no longer served\n", d.Name)
				case d.Status == "verified":
					fmt.Fprintf(tw, "domain %s verified\n", d.Name)
				default:
					fmt.Fprintf(tw, "domain %s is still %s: %s\n", d.Name, d.Status, d.CheckDetail)
					if d.VerifyRecord != "" {
						fmt.Fprintf(tw, "\nExpected this DNS record:\n\n  %s\n", d.VerifyRecord)
					}
				}
				printDelegation(tw, d)
			})
		}),
	}
}

// printDelegation shows the CNAME that lets Spine get wildcard certificates
// for the domain.
func printDelegation(tw *tabwriter.Writer, d client.Domain) {
	if d.DelegationRecord == "" {
		return
	}
	fmt.Fprintf(tw, "\nFor wildcard certificates (one certificate for all services, no DNS credentials), also create:\n\n  %s\n", d.DelegationRecord)
}
