package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// AddWebhook adds a webhook; the answer holds its signing secret, once.
func (c *Client) AddWebhook(ctx context.Context, in WebhookCreate) (Webhook, error) {
	var w Webhook
	return w, c.do(ctx, http.MethodPost, "/v1/webhooks", in, &w)
}

// Webhooks lists the project's webhooks (without their secrets).
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	var out struct{ Webhooks []Webhook }
	return out.Webhooks, c.do(ctx, http.MethodGet, "/v1/webhooks", nil, &out)
}

// Webhook returns one webhook.
func (c *Client) Webhook(ctx context.Context, id string) (Webhook, error) {
	var w Webhook
	return w, c.do(ctx, http.MethodGet, "/v1/webhooks/"+url.PathEscape(id), nil, &w)
}

// RemoveWebhook deletes a webhook and its deliveries.
func (c *Client) RemoveWebhook(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/webhooks/"+url.PathEscape(id), nil, nil)
}

// EnableWebhook enables a disabled webhook again.
func (c *Client) EnableWebhook(ctx context.Context, id string) (Webhook, error) {
	var w Webhook
	return w, c.do(ctx, http.MethodPost, "/v1/webhooks/"+url.PathEscape(id)+"/enable", nil, &w)
}

// TestWebhook sends a test message to the webhook now and returns how it went.
func (c *Client) TestWebhook(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	return d, c.do(ctx, http.MethodPost, "/v1/webhooks/"+url.PathEscape(id)+"/test", nil, &d)
}

// Deliveries lists a webhook's latest deliveries, newest first; limit 0
// asks for the server's default.
func (c *Client) Deliveries(ctx context.Context, webhookID string, limit int) ([]Delivery, error) {
	path := "/v1/webhooks/" + url.PathEscape(webhookID) + "/deliveries"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out struct{ Deliveries []Delivery }
	return out.Deliveries, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Delivery returns one delivery, with the body it sends.
func (c *Client) Delivery(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	return d, c.do(ctx, http.MethodGet, "/v1/deliveries/"+url.PathEscape(id), nil, &d)
}

// Redeliver queues a delivery's message again (same webhook-id), to be sent at once.
func (c *Client) Redeliver(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	return d, c.do(ctx, http.MethodPost, "/v1/deliveries/"+url.PathEscape(id)+"/redeliver", nil, &d)
}
