package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/client"
)

func newNodesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "nodes",
		Short: "List the fleet's nodes: address, version, last heartbeat, store connection (admin token)",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			nodes, err := c.Nodes(ctx)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), nodes, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tHTTPS\tAPI\tVERSION\tLAST HEARTBEAT\tSTORE")
				for _, n := range nodes {
					beat := "unknown"
					if n.LastHeartbeat != nil {
						beat = n.SinceHeartbeat + " ago"
					}
					st := "connected"
					if !n.StoreConnected {
						st = "not connected"
					}
					id := n.ID
					if n.Self {
						id += " (this)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", id, n.HTTPSAddr, n.APIAddr, n.Version, beat, st)
				}
			})
		}),
	}
}
