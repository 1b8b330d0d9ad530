package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/client"
)

func newEventsCmd(g *globals) *cobra.Command {
	var (
		follow bool
		after  int64
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "events [--follow] [--after ID] [--limit N]",
		Short: "Print the project's events (domains verified, certificates issued or failing, services changed...); --follow streams new ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			if after < 0 {
				return fmt.Errorf("--after %d: give the ID of the last event you have (0: from the oldest kept)", after)
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: give the most events to print, or 0 for all", limit)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if follow {
				from := after
				if !cmd.Flags().Changed("after") {
					from = -1 // from the next one recorded
				}
				return c.StreamEvents(cmd.Context(), from, func(e client.Event) error {
					return g.printEvent(out, e)
				})
			}
			ctx, cancel := cmdContext(cmd, time.Minute)
			defer cancel()
			var all []client.Event
			for after = max(after, 0); ; {
				page, err := c.Events(ctx, after, 0)
				if err != nil {
					return err
				}
				all = append(all, page.Events...)
				after = page.Next
				if !page.More || (limit > 0 && len(all) >= limit) {
					break
				}
			}
			if limit > 0 && len(all) > limit {
				all = all[:limit]
			}
			return g.print(out, all, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tTIME\tTYPE\tSUBJECT\tDATA")
				for _, e := range all {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.ID, e.Time.Format(time.RFC3339), e.Type, e.Subject, compact(e.Data))
				}
			})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events as they are recorded (from --after if given, else from now)")
	cmd.Flags().Int64Var(&after, "after", 0, "print the events after this ID")
	cmd.Flags().IntVar(&limit, "limit", 0, "print at most this many events (0: all kept)")
	return cmd
}

// printEvent prints one followed event: a JSON line, or a text line.
func (g *globals) printEvent(w io.Writer, e client.Event) error {
	if g.output == "json" {
		return json.NewEncoder(w).Encode(e)
	}
	_, err := fmt.Fprintf(w, "%d  %s  %-28s %s  %s\n", e.ID, e.Time.Format(time.RFC3339), e.Type, e.Subject, compact(e.Data))
	return err
}

func compact(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
