package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/store"
)

// tenancyFlags are the server flags of what tenants may do: webhooks, and
// (quotas.go) their limits and the CA's budget.
type tenancyFlags struct {
	webhookAllowPrivate bool
	webhookTimeout      time.Duration
	quota               store.Quota
	budgetFlags         []string // --acme-ca-budget CA=SPEC
}

func (f *tenancyFlags) register(cmd *cobra.Command, up bool) {
	cmd.Flags().BoolVar(&f.webhookAllowPrivate, "webhook-allow-private", up, "let webhooks reach loopback, private and link-local addresses (spine up allows them for local development; a production node should not)")
	cmd.Flags().DurationVar(&f.webhookTimeout, "webhook-timeout", 15*time.Second, "bound of each webhook attempt, from connecting to the answer's status, 1s to 5m")
	cmd.Flags().IntVar(&f.quota.Domains, "quota-domains", 0, "most domains a project may hold, unless the operator gives it its own limit (spine quota set); 0: no limit")
	cmd.Flags().IntVar(&f.quota.Services, "quota-services", 0, "most services a project may have; 0: no limit")
	cmd.Flags().IntVar(&f.quota.Hostnames, "quota-hostnames", 0, "most hostnames a project's services may have in all; 0: no limit")
	cmd.Flags().IntVar(&f.quota.OrdersPerHour, "quota-orders-per-hour", 0, "most new certificate orders a project may have placed with ACME CAs in the last hour; 0: no limit")
	cmd.Flags().StringArrayVar(&f.budgetFlags, "acme-ca-budget", nil, "an ACME CA's limits for the account every tenant shares, kept by Spine: CA=ORDERS/WINDOW,CERTS_PER_DOMAIN/WINDOW,FAILED_VALIDATIONS/WINDOW (a part may be -), or CA=off; CA is a URL or a preset (repeatable; Let's Encrypt's are known: letsencrypt=300/3h,50/168h,5/1h)")
}

// budgets reads --acme-ca-budget.
func (f *tenancyFlags) budgets() (map[string]store.CABudget, error) {
	out := map[string]store.CABudget{}
	const want = "write CA=ORDERS/WINDOW,CERTS_PER_DOMAIN/WINDOW,FAILED_VALIDATIONS/WINDOW (e.g. letsencrypt=300/3h,50/168h,5/1h; a part may be -), or CA=off"
	for _, v := range f.budgetFlags {
		ca, spec, ok := strings.Cut(v, "=")
		if !ok || ca == "" || spec == "" {
			return nil, fmt.Errorf("--acme-ca-budget %q: %s", v, want)
		}
		if u, ok := acmePresets[ca]; ok {
			ca = u
		}
		if spec == "off" {
			out[ca] = store.CABudget{}
			continue
		}
		parts := strings.Split(spec, ",")
		if len(parts) != 3 {
			return nil, fmt.Errorf("--acme-ca-budget %q: %d limits; %s", v, len(parts), want)
		}
		var b store.CABudget
		for i, p := range parts {
			if p == "-" {
				continue
			}
			count, window, ok := strings.Cut(p, "/")
			n, err1 := strconv.Atoi(count)
			d, err2 := time.ParseDuration(window)
			if !ok || err1 != nil || err2 != nil || n <= 0 || d <= 0 {
				return nil, fmt.Errorf("--acme-ca-budget %q: %q is not COUNT/WINDOW with a positive count and duration (e.g. 300/3h)", v, p)
			}
			switch i {
			case 0:
				b.Orders, b.OrdersWindow = n, d
			case 1:
				b.DomainCerts, b.DomainCertsWindow = n, d
			case 2:
				b.FailedValidations, b.FailedValidationsWindow = n, d
			}
		}
		out[ca] = b
	}
	return out, nil
}

func (f *tenancyFlags) check() error {
	if f.webhookTimeout < time.Second || f.webhookTimeout > config.MaxWebhookTimeout {
		return fmt.Errorf("--webhook-timeout %s: give a duration from 1s to 5m, e.g. 15s", f.webhookTimeout)
	}
	for _, q := range []struct {
		flag string
		v    int
	}{{"--quota-domains", f.quota.Domains}, {"--quota-services", f.quota.Services}, {"--quota-hostnames", f.quota.Hostnames}, {"--quota-orders-per-hour", f.quota.OrdersPerHour}} {
		if err := store.CheckQuota(q.v); err != nil {
			return fmt.Errorf("%s %d: %w", q.flag, q.v, err)
		}
	}
	return nil
}

func (f *tenancyFlags) webhooks() config.WebhooksConfig {
	return config.WebhooksConfig{AllowPrivate: f.webhookAllowPrivate, AttemptTimeout: f.webhookTimeout}
}
