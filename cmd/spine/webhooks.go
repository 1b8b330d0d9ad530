package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/client"
)

func newWebhookCmd(g *globals) *cobra.Command {
	wh := &cobra.Command{Use: "webhook", Aliases: []string{"webhooks"}, Short: "Send the project's events to your endpoints, signed (Standard Webhooks)"}

	var events []string
	add := &cobra.Command{
		Use:   "add URL [--event TYPE ...]",
		Short: "Add an endpoint; prints its signing secret (whsec_...), shown only this once",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			w, err := c.AddWebhook(ctx, client.WebhookCreate{URL: args[0], Events: events})
			if err != nil {
				return webhookFlagError(err)
			}
			return g.print(cmd.OutOrStdout(), w, func(tw *tabwriter.Writer) {
				webhookText(tw, w)
				fmt.Fprintf(tw, "secret:\t%s\n", w.Secret)
				fmt.Fprintf(tw, "\nKeep the secret: it is shown only this once. Verify each request's webhook-signature with it\n(any Standard Webhooks library does; see the README). Try the endpoint: spine webhook test %s\n", w.ID)
			})
		}),
	}
	add.Flags().StringArrayVar(&events, "event", nil, "an event type to send (repeatable; default: every type), e.g. certificate.failed")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the project's webhooks",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			ws, err := c.Webhooks(ctx)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), ws, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tURL\tEVENTS\tSTATE")
				for _, w := range ws {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", w.ID, w.URL, eventsText(w.Events), stateText(w))
				}
			})
		}),
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a webhook and its deliveries",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			if err := c.RemoveWebhook(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "webhook %s removed\n", args[0])
			return nil
		}),
	}
	enable := &cobra.Command{
		Use:   "enable ID",
		Short: "Enable a webhook that was disabled (it answered 410, or failed for days)",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			w, err := c.EnableWebhook(ctx, args[0])
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), w, func(tw *tabwriter.Writer) { webhookText(tw, w) })
		}),
	}
	test := &cobra.Command{
		Use:   "test ID",
		Short: "Send a test message to a webhook now and show how the endpoint answered",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(time.Minute, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			d, err := c.TestWebhook(ctx, args[0])
			if err != nil {
				return err
			}
			if err := g.print(cmd.OutOrStdout(), d, func(tw *tabwriter.Writer) { deliveryText(tw, d) }); err != nil {
				return err
			}
			if d.Status != "delivered" {
				return fmt.Errorf("the test message was not delivered: %s", d.LastError)
			}
			return nil
		}),
	}
	var limit int
	deliveries := &cobra.Command{
		Use:   "deliveries ID [--limit N]",
		Short: "List a webhook's latest deliveries: status, attempts, the endpoint's last answer",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return fmt.Errorf("--limit %d: give the most deliveries to list, 1 to 500 (0: 50)", limit)
			}
			ds, err := c.Deliveries(ctx, args[0], limit)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), ds, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tTYPE\tEVENT\tSTATUS\tATTEMPTS\tNEXT\tLAST ANSWER")
				for _, d := range ds {
					next := "-"
					if d.NextAttempt != nil {
						next = d.NextAttempt.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\n", d.ID, d.Type, d.EventID, d.Status, d.Attempts, next, lastAnswer(d))
				}
			})
		}),
	}
	deliveries.Flags().IntVar(&limit, "limit", 0, "most deliveries to list, newest first (default 50)")
	redeliver := &cobra.Command{
		Use:   "redeliver DELIVERY_ID",
		Short: "Send a delivery's message again (same webhook-id), at once",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			d, err := c.Redeliver(ctx, args[0])
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), d, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "delivery %s queued (message %s); see spine webhook deliveries %s\n", d.ID, d.MsgID, d.WebhookID)
			})
		}),
	}
	wh.AddCommand(add, list, remove, enable, test, deliveries, redeliver)
	return wh
}

// webhookFlagError names the flag an error of `webhook add` is about.
func webhookFlagError(err error) error {
	if client.IsCode(err, "invalid_event_type") {
		return fmt.Errorf("--event: %w", err)
	}
	return err
}

func webhookText(tw *tabwriter.Writer, w client.Webhook) {
	fmt.Fprintf(tw, "id:\t%s\n", w.ID)
	fmt.Fprintf(tw, "url:\t%s\n", w.URL)
	fmt.Fprintf(tw, "events:\t%s\n", eventsText(w.Events))
	fmt.Fprintf(tw, "state:\t%s\n", stateText(w))
}

func eventsText(evs []string) string {
	if len(evs) == 0 {
		return "all"
	}
	return strings.Join(evs, ",")
}

func stateText(w client.Webhook) string {
	switch {
	case !w.Enabled:
		return "disabled: " + w.DisabledReason
	case w.FailingSince != nil:
		return "failing since " + w.FailingSince.Format(time.RFC3339)
	}
	return "enabled"
}

func deliveryText(tw *tabwriter.Writer, d client.Delivery) {
	fmt.Fprintf(tw, "delivery:\t%s\n", d.ID)
	fmt.Fprintf(tw, "message:\t%s (%s)\n", d.MsgID, d.Type)
	fmt.Fprintf(tw, "status:\t%s\n", d.Status)
	fmt.Fprintf(tw, "answer:\t%s\n", lastAnswer(d))
}

func lastAnswer(d client.Delivery) string {
	switch {
	case d.LastError != "":
		return d.LastError
	case d.LastStatus != 0:
		return fmt.Sprint(d.LastStatus)
	}
	return "-"
}
