package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// MaintainStore is what the maintenance reads and writes. *store.DB implements it.
type MaintainStore interface {
	ListCertStatusDue(ctx context.Context, ratio float64, now time.Time, limit int) ([]store.CertStatus, error)
	AppendHostnameEvent(ctx context.Context, hostname string, e store.Event) (store.Event, bool, error)
	AppendEvent(ctx context.Context, e store.Event) (store.Event, bool, error)
	ListUploadedCerts(ctx context.Context, projectID string, withKeys bool) ([]store.UploadedCert, error)
	PruneEvents(ctx context.Context, before time.Time, keep int) (int64, error)
	PruneDeliveries(ctx context.Context, before time.Time, keep int) (int64, error)
}

// MaintainConfig configures Maintain. It is not changed once handed over.
type MaintainConfig struct {
	// Store is read and pruned. Required.
	Store MaintainStore
	// Interval is how often the work runs. Default 5 minutes.
	Interval time.Duration
	// After, if set, holds the first round until it is closed: a node
	// passes its first sync's end (syncer.Loop.StoreSynced). At a million
	// hostnames the first round after a bulk import (a prune of a million
	// service.created events, 4,000 transactions) took a fifth of the
	// node's processor over its warm-up's first 30 s, and slowed its
	// store's reads (SQLite: the deletes' write-ahead log), while
	// handshakes read their names from the store (BENCHMARKS.md). Default
	// nil: at once.
	After <-chan struct{}
	// ExpiringRatio: a certificate with less than this part of its
	// lifetime left, and not renewed, is expiring. Default 1/3.
	ExpiringRatio float64
	// ExpiringGrace is how long a certificate may stay past that point
	// before it is reported: Spine renews at that point, so a certificate
	// still there after this long is one whose renewal fails or waits.
	// Default 1 hour.
	ExpiringGrace time.Duration
	// MaxAge and MaxPerProject bound the events kept. Defaults 30 days and 10,000.
	MaxAge        time.Duration
	MaxPerProject int
	// DeliveryMaxAge and DeliveriesPerWebhook bound the finished webhook
	// deliveries kept. Defaults 7 days and 1,000.
	DeliveryMaxAge       time.Duration
	DeliveriesPerWebhook int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives warnings. Default slog.Default().
	Logger *slog.Logger
}

func (c *MaintainConfig) setDefaults() {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Minute
	}
	if c.ExpiringRatio <= 0 || c.ExpiringRatio >= 1 {
		c.ExpiringRatio = 1.0 / 3
	}
	if c.ExpiringGrace <= 0 {
		c.ExpiringGrace = time.Hour
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 30 * 24 * time.Hour
	}
	if c.MaxPerProject <= 0 {
		c.MaxPerProject = 10000
	}
	if c.DeliveryMaxAge <= 0 {
		c.DeliveryMaxAge = 7 * 24 * time.Hour
	}
	if c.DeliveriesPerWebhook <= 0 {
		c.DeliveriesPerWebhook = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// expiringPage bounds the certificates one round looks at.
const expiringPage = 1000

// Maintain runs MaintainOnce every cfg.Interval until ctx ends, the first
// once cfg.After is closed. Every node of a fleet may run it: the expiring
// events carry a key, and pruning twice deletes nothing more.
func Maintain(ctx context.Context, cfg MaintainConfig) {
	cfg.setDefaults()
	if cfg.After != nil {
		select {
		case <-ctx.Done():
			return
		case <-cfg.After:
		}
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		if err := MaintainOnce(ctx, cfg); err != nil && ctx.Err() == nil {
			cfg.Logger.Warn("events maintenance", "component", "events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// uploadedExpiryMarks are the times before an uploaded certificate's end
// at which certificate.expiring is recorded for it: Spine does not renew
// it, its owner must upload the next one.
var uploadedExpiryMarks = []time.Duration{30 * 24 * time.Hour, 7 * 24 * time.Hour, 24 * time.Hour}

// MaintainOnce records certificate.expiring for the managed certificates
// that have passed their renewal point by ExpiringGrace and are not
// renewed, and for uploaded certificates at each of uploadedExpiryMarks;
// then it prunes old events and deliveries.
func MaintainOnce(ctx context.Context, cfg MaintainConfig) error {
	cfg.setDefaults()
	now := cfg.Now()
	var errs []error
	uploaded, err := cfg.Store.ListUploadedCerts(ctx, "", false)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing uploaded certificates: %w", err))
	}
	isUploaded := make(map[string]bool, len(uploaded))
	for _, c := range uploaded {
		isUploaded[c.Hostname] = true
		if e, ok := UploadedExpiringEvent(c, now); ok {
			if _, _, err := cfg.Store.AppendEvent(ctx, e); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, fmt.Errorf("recording %s expiring: %w", c.Hostname, err))
				break
			}
		}
	}
	due, err := cfg.Store.ListCertStatusDue(ctx, cfg.ExpiringRatio, now.Add(-cfg.ExpiringGrace), expiringPage)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing expiring certificates: %w", err))
	}
	for _, s := range due {
		if isUploaded[s.Hostname] {
			continue // the managed certificate is not renewed while an upload is served
		}
		_, _, err := cfg.Store.AppendHostnameEvent(ctx, s.Hostname, ExpiringEvent(s, now))
		if err != nil && !errors.Is(err, store.ErrNotFound) { // a name no project holds any more
			errs = append(errs, fmt.Errorf("recording %s expiring: %w", s.Hostname, err))
			break
		}
	}
	pruneStart := time.Now()
	n, err := cfg.Store.PruneEvents(ctx, now.Add(-cfg.MaxAge), cfg.MaxPerProject)
	if err != nil {
		errs = append(errs, fmt.Errorf("pruning events: %w", err))
	}
	if n > 0 {
		// After a bulk import, a million of them: seconds of the store's
		// work, which the operator sees here.
		cfg.Logger.Info("pruned old events", "component", "events", "events", n,
			"max_age", cfg.MaxAge, "max_per_project", cfg.MaxPerProject, "took", time.Since(pruneStart).Round(time.Millisecond))
	}
	if _, err := cfg.Store.PruneDeliveries(ctx, now.Add(-cfg.DeliveryMaxAge), cfg.DeliveriesPerWebhook); err != nil {
		errs = append(errs, fmt.Errorf("pruning webhook deliveries: %w", err))
	}
	return errors.Join(errs...)
}

// ExpiringEvent is the certificate.expiring event of s. Its key names the
// certificate (hostname and expiry), so a fleet records it once.
func ExpiringEvent(s store.CertStatus, now time.Time) store.Event {
	data := map[string]any{
		"hostname":  s.Hostname,
		"issuer":    s.Issuer,
		"not_after": s.NotAfter.UTC().Format(time.RFC3339),
		"left":      s.NotAfter.Sub(now).Round(time.Second).String(),
	}
	if s.Error != "" {
		data["renewal_error"] = s.Error
	}
	return store.Event{
		Type:    store.EventCertificateExpiring,
		Subject: s.Hostname,
		Data:    mustJSON(data),
		Time:    now,
		Key:     fmt.Sprintf("expiring:%s:%d", s.Hostname, s.NotAfter.UnixNano()),
	}
}

// UploadedExpiringEvent is the certificate.expiring event of an uploaded
// certificate at now: for the nearest of uploadedExpiryMarks that now has
// passed, before the certificate's end; ok is false outside them. Its key
// names the certificate and the mark, so each is recorded once.
func UploadedExpiringEvent(c store.UploadedCert, now time.Time) (store.Event, bool) {
	if !now.Before(c.NotAfter) {
		return store.Event{}, false
	}
	var mark time.Duration
	for _, m := range uploadedExpiryMarks {
		if !now.Before(c.NotAfter.Add(-m)) && (mark == 0 || m < mark) {
			mark = m
		}
	}
	if mark == 0 {
		return store.Event{}, false
	}
	return store.Event{
		ProjectID: c.ProjectID,
		Type:      store.EventCertificateExpiring,
		Subject:   c.Hostname,
		Data: mustJSON(map[string]any{
			"hostname":  c.Hostname,
			"issuer":    c.Issuer,
			"not_after": c.NotAfter.UTC().Format(time.RFC3339),
			"left":      c.NotAfter.Sub(now).Round(time.Second).String(),
			"uploaded":  true,
			"mark":      fmt.Sprintf("%dd", int(mark/(24*time.Hour))),
		}),
		Time: now,
		Key:  fmt.Sprintf("expiring:%s:%d:%d", c.Hostname, c.NotAfter.UnixNano(), int64(mark)),
	}, true
}
