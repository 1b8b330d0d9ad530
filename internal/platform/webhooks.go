package platform

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/store"
)

// Bounds of webhooks.
const (
	MaxWebhooksPerProject = 20
	maxWebhookURL         = 2048
	DefaultDeliveryPage   = 50
	MaxDeliveryPage       = 500
)

// WebhookSpec is what a user asks for when adding a webhook.
type WebhookSpec struct {
	URL    string
	Events []string // event types; empty: every type
}

var (
	webhookIDRE  = regexp.MustCompile(`^wh_[0-9a-f]{24}$`)
	deliveryIDRE = regexp.MustCompile(`^dlv_[0-9a-f]{24}$`)
)

// AddWebhook checks spec and stores a new webhook of the project. It
// returns the webhook with its signing secret, which no later answer
// shows: the caller shows it once.
func (p *Platform) AddWebhook(ctx context.Context, projectID string, spec WebhookSpec) (store.Webhook, error) {
	u, err := p.checkWebhookURL(spec.URL)
	if err != nil {
		return store.Webhook{}, err
	}
	evs, err := checkEventTypes(spec.Events)
	if err != nil {
		return store.Webhook{}, err
	}
	w := store.Webhook{ID: newID("wh_"), ProjectID: projectID, URL: u, Events: evs, Secret: NewWebhookSecret(), CreatedAt: p.now().UTC()}
	if err := p.store.CreateWebhook(ctx, w, MaxWebhooksPerProject); err != nil {
		return store.Webhook{}, webhookError(err, "webhook")
	}
	return w, nil
}

// webhookError is fromStore, with the limit of webhooks as its own code.
func webhookError(err error, what string) error {
	e := fromStore(err, what)
	if pe, ok := e.(*Error); ok && pe.Kind == Conflict && strings.Contains(pe.Message, "the most it may have") {
		pe.Kind, pe.Code = Invalid, "too_many_webhooks"
	}
	return e
}

// checkWebhookURL returns the URL a webhook is sent to, or why it cannot be.
func (p *Platform) checkWebhookURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	bad := func(why string) error {
		return invalid("invalid_webhook_url", fmt.Sprintf("webhook URL %q %s; write it like https://hooks.example.com/spine", redactUpstream(raw), why))
	}
	if raw == "" {
		return "", invalid("invalid_webhook_url", "the webhook URL is empty; write it like https://hooks.example.com/spine")
	}
	if len(raw) > maxWebhookURL {
		return "", invalid("invalid_webhook_url", fmt.Sprintf("the webhook URL is %d characters long; the limit is %d", len(raw), maxWebhookURL))
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return "", bad("is not an absolute URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return "", bad(fmt.Sprintf("has scheme %q; use https:// (or http://)", u.Scheme))
	case u.User != nil:
		return "", invalid("invalid_webhook_url", fmt.Sprintf("webhook URL %q holds credentials; they are not supported (the signature authenticates Spine)", u.Redacted()))
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", bad("has a fragment, which is never sent")
	}
	host := hostname.Fold(u.Hostname())
	if host == "" {
		return "", bad("has no host")
	}
	if port := u.Port(); port != "" {
		n, err := hostname.ParsePort(port)
		if err != nil || n == 0 {
			return "", bad(fmt.Sprintf("has port %q; give a port from 1 to 65535", port))
		}
		u.Host = u.Host[:len(u.Host)-len(port)] + strconv.Itoa(n) // "0443" is 443
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if what, bad := RefusedAddress(ip, p.allowPrivateWebhooks); bad {
			return "", invalid("private_webhook_url", fmt.Sprintf("webhook URL %q points at %s, %s: webhooks may reach public addresses only (the operator may allow private ones, never the metadata address, with --webhook-allow-private)", redactUpstream(raw), ip, what))
		}
	} else if err != nil {
		if _, err := NormalizeHostname(host); err != nil {
			return "", bad("has a host that is not a valid name: " + err.Error())
		}
		if hostname.InDomain(host, "localhost") && !p.allowPrivateWebhooks {
			return "", invalid("private_webhook_url", fmt.Sprintf("webhook URL %q points at this machine: webhooks may reach public addresses only (the operator may allow private ones with --webhook-allow-private)", redactUpstream(raw)))
		}
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	return u.String(), nil
}

// checkEventTypes checks a webhook's event filter: known types, each once, sorted.
func checkEventTypes(evs []string) ([]string, error) {
	known := store.EventTypes()
	if len(evs) > len(known) {
		return nil, invalid("invalid_event_type", fmt.Sprintf("%d event types given; there are %d: %s", len(evs), len(known), strings.Join(known, ", ")))
	}
	var out []string
	for _, e := range evs {
		e = strings.ToLower(strings.TrimSpace(e))
		if !slices.Contains(known, e) {
			return nil, invalid("invalid_event_type", fmt.Sprintf("event type %.64q is not one of %s", e, strings.Join(known, ", ")))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return out, nil
}

func checkWebhookID(id string) error {
	if !webhookIDRE.MatchString(id) {
		return invalid("invalid_webhook_id", fmt.Sprintf("%.80q is not a webhook ID; they look like wh_ and 24 hex digits (spine webhook list)", id))
	}
	return nil
}

// GetWebhook returns one of the project's webhooks.
func (p *Platform) GetWebhook(ctx context.Context, projectID, id string) (store.Webhook, error) {
	if err := checkWebhookID(id); err != nil {
		return store.Webhook{}, err
	}
	w, err := p.store.GetWebhook(ctx, projectID, id)
	return w, fromStore(err, fmt.Sprintf("webhook %q", id))
}

// ListWebhooks returns the project's webhooks.
func (p *Platform) ListWebhooks(ctx context.Context, projectID string) ([]store.Webhook, error) {
	ws, err := p.store.ListWebhooks(ctx, projectID)
	return ws, fromStore(err, "webhooks")
}

// RemoveWebhook deletes one of the project's webhooks and its deliveries.
func (p *Platform) RemoveWebhook(ctx context.Context, projectID, id string) error {
	if err := checkWebhookID(id); err != nil {
		return err
	}
	return fromStore(p.store.DeleteWebhook(ctx, projectID, id), fmt.Sprintf("webhook %q", id))
}

// EnableWebhook enables a disabled webhook again.
func (p *Platform) EnableWebhook(ctx context.Context, projectID, id string) (store.Webhook, error) {
	if err := checkWebhookID(id); err != nil {
		return store.Webhook{}, err
	}
	if err := p.store.EnableWebhook(ctx, projectID, id); err != nil {
		return store.Webhook{}, fromStore(err, fmt.Sprintf("webhook %q", id))
	}
	return p.GetWebhook(ctx, projectID, id)
}

// ListDeliveries returns up to limit of a webhook's deliveries, newest
// first; limit 0 means DefaultDeliveryPage.
func (p *Platform) ListDeliveries(ctx context.Context, projectID, webhookID string, limit int) ([]store.Delivery, error) {
	if err := checkWebhookID(webhookID); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = DefaultDeliveryPage
	}
	if limit < 1 || limit > MaxDeliveryPage {
		return nil, invalid("invalid_limit", fmt.Sprintf("limit=%d: give a number of deliveries from 1 to %d", limit, MaxDeliveryPage))
	}
	ds, err := p.store.ListDeliveries(ctx, projectID, webhookID, limit)
	return ds, fromStore(err, fmt.Sprintf("webhook %q", webhookID))
}

func checkDeliveryID(id string) error {
	if !deliveryIDRE.MatchString(id) {
		return invalid("invalid_delivery_id", fmt.Sprintf("%.80q is not a delivery ID; they look like dlv_ and 24 hex digits (spine webhook deliveries WEBHOOK)", id))
	}
	return nil
}

// GetDelivery returns one of the project's deliveries.
func (p *Platform) GetDelivery(ctx context.Context, projectID, id string) (store.Delivery, error) {
	if err := checkDeliveryID(id); err != nil {
		return store.Delivery{}, err
	}
	d, err := p.store.GetDelivery(ctx, projectID, id)
	return d, fromStore(err, fmt.Sprintf("delivery %q", id))
}

// Redeliver queues the message of one of the project's deliveries again,
// with the same webhook-id, to be sent at once.
func (p *Platform) Redeliver(ctx context.Context, projectID, id string) (store.Delivery, error) {
	if err := checkDeliveryID(id); err != nil {
		return store.Delivery{}, err
	}
	d, err := p.store.Redeliver(ctx, projectID, id, p.now().UTC())
	return d, fromStore(err, fmt.Sprintf("delivery %q", id))
}

// WebhookSecretPrefix starts every webhook signing secret.
const WebhookSecretPrefix = "whsec_"

// NewWebhookSecret returns a new webhook signing secret: "whsec_" and 32 random bytes in
// standard base64, the form Standard Webhooks libraries read.
func NewWebhookSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b[:])
}
