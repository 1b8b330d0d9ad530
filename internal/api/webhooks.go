package api

import (
	"context"
	"net/http"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// WebhookTester sends a test message to a webhook at once and records it;
// *webhooks.Sender implements it.
type WebhookTester interface {
	Test(ctx context.Context, w store.Webhook) (store.Delivery, error)
}

func webhookOut(w store.Webhook) client.Webhook {
	out := client.Webhook{ID: w.ID, URL: w.URL, Events: w.Events, Enabled: w.DisabledAt.IsZero(), DisabledAt: timePtr(w.DisabledAt),
		DisabledReason: w.DisabledReason, FailingSince: timePtr(w.FailingSince), CreatedAt: w.CreatedAt}
	if out.Events == nil {
		out.Events = []string{}
	}
	return out
}

func deliveryOut(d store.Delivery, payload bool) client.Delivery {
	out := client.Delivery{ID: d.ID, WebhookID: d.WebhookID, MsgID: d.MsgID, EventID: d.EventID, Type: d.Type, Status: d.Status,
		Attempts: d.Attempts, NextAttempt: timePtr(d.NextAttempt), LastStatus: d.LastStatus, LastError: d.LastError,
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if payload {
		out.Payload = d.Payload
	}
	return out
}

func (s *server) addWebhook(w http.ResponseWriter, r *http.Request, p store.Project) error {
	var in client.WebhookCreate
	if err := decode(w, r, &in); err != nil {
		return err
	}
	wh, err := s.cfg.Platform.AddWebhook(r.Context(), p.ID, platform.WebhookSpec{URL: in.URL, Events: in.Events})
	if err != nil {
		return err
	}
	out := webhookOut(wh)
	out.Secret = wh.Secret // this answer only
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request, p store.Project) error {
	ws, err := s.cfg.Platform.ListWebhooks(r.Context(), p.ID)
	if err != nil {
		return err
	}
	out := make([]client.Webhook, 0, len(ws))
	for _, wh := range ws {
		out = append(out, webhookOut(wh))
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": out})
	return nil
}

func (s *server) getWebhook(w http.ResponseWriter, r *http.Request, p store.Project) error {
	wh, err := s.cfg.Platform.GetWebhook(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, webhookOut(wh))
	return nil
}

func (s *server) removeWebhook(w http.ResponseWriter, r *http.Request, p store.Project) error {
	if err := s.cfg.Platform.RemoveWebhook(r.Context(), p.ID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) enableWebhook(w http.ResponseWriter, r *http.Request, p store.Project) error {
	wh, err := s.cfg.Platform.EnableWebhook(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, webhookOut(wh))
	return nil
}

func (s *server) testWebhook(w http.ResponseWriter, r *http.Request, p store.Project) error {
	wh, err := s.cfg.Platform.GetWebhook(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	if s.cfg.Webhooks == nil {
		return &apiError{status: http.StatusServiceUnavailable, code: "webhooks_unavailable", msg: "this server sends no webhooks"}
	}
	d, err := s.cfg.Webhooks.Test(r.Context(), wh)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deliveryOut(d, false))
	return nil
}

func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request, p store.Project) error {
	limit, err := queryInt(r, "limit", 0)
	if err != nil {
		return err
	}
	ds, err := s.cfg.Platform.ListDeliveries(r.Context(), p.ID, r.PathValue("id"), int(limit))
	if err != nil {
		return err
	}
	out := make([]client.Delivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, deliveryOut(d, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
	return nil
}

func (s *server) getDelivery(w http.ResponseWriter, r *http.Request, p store.Project) error {
	d, err := s.cfg.Platform.GetDelivery(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deliveryOut(d, true))
	return nil
}

func (s *server) redeliver(w http.ResponseWriter, r *http.Request, p store.Project) error {
	d, err := s.cfg.Platform.Redeliver(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, deliveryOut(d, false))
	return nil
}
