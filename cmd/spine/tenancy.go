package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/store"
)

// tenancyFlags are the server flags of what tenants may do: webhooks, and
// (quotas.go) their limits and the CA's budget.
type tenancyFlags struct {
	webhookAllowPrivate bool
	webhookTimeout      time.Duration
	quota               store.Quota
}

func (f *tenancyFlags) register(cmd *cobra.Command, up bool) {
	cmd.Flags().BoolVar(&f.webhookAllowPrivate, "webhook-allow-private", up, "let webhooks reach loopback, private and link-local addresses (spine up allows them for local development; a production node should not)")
	cmd.Flags().DurationVar(&f.webhookTimeout, "webhook-timeout", 15*time.Second, "bound of each webhook attempt, from connecting to the answer's status, 1s to 5m")
	cmd.Flags().IntVar(&f.quota.Domains, "quota-domains", 0, "most domains a project may hold, unless the operator gives it its own limit (spine quota set); 0: no limit")
	cmd.Flags().IntVar(&f.quota.Services, "quota-services", 0, "most services a project may have; 0: no limit")
	cmd.Flags().IntVar(&f.quota.Hostnames, "quota-hostnames", 0, "most hostnames a project's services may have in all; 0: no limit")
	cmd.Flags().IntVar(&f.quota.OrdersPerHour, "quota-orders-per-hour", 0, "most new certificate orders a project may have placed with ACME CAs in the last hour; 0: no limit")
}

func (f *tenancyFlags) check() error {
	if f.webhookTimeout < time.Second || f.webhookTimeout > node.MaxWebhookTimeout {
		return fmt.Errorf("--webhook-timeout %s: give a duration from 1s to 5m, e.g. 15s", f.webhookTimeout)
	}
	for _, q := range []struct {
		flag string
		v    int
	}{{"--quota-domains", f.quota.Domains}, {"--quota-services", f.quota.Services}, {"--quota-hostnames", f.quota.Hostnames}, {"--quota-orders-per-hour", f.quota.OrdersPerHour}} {
		if q.v < 0 || q.v > 1_000_000 {
			return fmt.Errorf("%s %d: give a limit from 1 to 1000000, or 0 for no limit", q.flag, q.v)
		}
	}
	return nil
}

func (f *tenancyFlags) webhooks() node.WebhooksConfig {
	return node.WebhooksConfig{AllowPrivate: f.webhookAllowPrivate, AttemptTimeout: f.webhookTimeout}
}
