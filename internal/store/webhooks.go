package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Webhook is an endpoint that receives a project's events.
type Webhook struct {
	ID        string
	ProjectID string
	URL       string
	// Events are the event types it receives; empty: every type.
	Events []string
	// Secret is the signing secret ("whsec_..."). Only the sender reads
	// it; list and get answers of the API never show it.
	Secret         string
	CreatedAt      time.Time
	DisabledAt     time.Time // zero while enabled
	DisabledReason string
	FailingSince   time.Time // first failed attempt since the last success; zero if none
}

// Takes reports whether w receives events of type typ.
func (w Webhook) Takes(typ string) bool {
	return len(w.Events) == 0 || slices.Contains(w.Events, typ)
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Delivery is one message to one webhook: a row of the outbox.
type Delivery struct {
	ID        string
	ProjectID string
	WebhookID string
	// MsgID is the webhook-id header: the same for every attempt and for
	// a redelivery, so a receiver can drop duplicates.
	MsgID   string
	EventID int64 // 0 for a test message
	Type    string
	// Payload is the body sent: JSON {type, timestamp, data}.
	Payload     json.RawMessage
	Status      string // DeliveryPending, DeliveryDelivered or DeliveryFailed
	Attempts    int
	NextAttempt time.Time // while pending
	LastStatus  int       // HTTP status of the last attempt; 0 if no answer
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Bounds of the outbox.
const (
	// MaxPendingDeliveries bounds the deliveries waiting for one webhook;
	// beyond it, a new event's delivery is recorded as failed at once
	// ("outbox full"), to be redelivered by hand once the endpoint is back.
	MaxPendingDeliveries = 1000
	// MaxDeliveryPayload bounds a delivery's body.
	MaxDeliveryPayload = 64 << 10
)

// maxPending is MaxPendingDeliveries, or a test's smaller bound.
func (db *DB) maxPending() int {
	if db.pendingBound > 0 {
		return db.pendingBound
	}
	return MaxPendingDeliveries
}

const webhookColumns = `id, project_id, url, events, secret, created_at, disabled_at, disabled_reason, failing_since`

// CreateWebhook stores w. CreatedAt defaults to now. It returns ErrNotFound
// if the project does not exist and ErrConflict if it already has max
// webhooks (max <= 0: no bound).
func (db *DB) CreateWebhook(ctx context.Context, w Webhook, max int) error {
	evs, err := json.Marshal(nonNil(w.Events))
	if err != nil {
		return err
	}
	secret, err := db.seal(webhookSecretName(w.ID), []byte(w.Secret))
	if err != nil {
		return err
	}
	return db.write(ctx, "creating webhook", false, func(tx *sql.Tx) error {
		if max > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhooks WHERE project_id = $1`, w.ProjectID).Scan(&n); err != nil {
				return err
			}
			if n >= max {
				return conflict("the project has %d webhooks, the most it may have; remove one first", n)
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			w.ID, w.ProjectID, w.URL, string(evs), string(secret), toNanos(orNow(w.CreatedAt)), toNanos(w.DisabledAt), w.DisabledReason, toNanos(w.FailingSince))
		switch {
		case db.isUnique(err):
			return conflict("webhook %q already exists", w.ID)
		case db.isForeignKey(err):
			return notFound("project %q not found", w.ProjectID)
		}
		return err
	})
}

// GetWebhook returns a project's webhook, or ErrNotFound.
func (db *DB) GetWebhook(ctx context.Context, projectID, id string) (Webhook, error) {
	w, err := db.scanWebhook(db.r.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 AND project_id = $2`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return Webhook{}, notFound("webhook %q not found", id)
	}
	if err != nil {
		return Webhook{}, db.wrap("reading webhook", err)
	}
	return w, nil
}

// ListWebhooks returns a project's webhooks, oldest first.
func (db *DB) ListWebhooks(ctx context.Context, projectID string) ([]Webhook, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE project_id = $1 ORDER BY created_at, id`, projectID)
	if err != nil {
		return nil, db.wrap("listing webhooks", err)
	}
	defer rows.Close()
	var ws []Webhook
	for rows.Next() {
		w, err := db.scanWebhook(rows)
		if err != nil {
			return nil, db.wrap("listing webhooks", err)
		}
		ws = append(ws, w)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing webhooks", err)
	}
	return ws, nil
}

// DeleteWebhook deletes a project's webhook and its deliveries, or returns ErrNotFound.
func (db *DB) DeleteWebhook(ctx context.Context, projectID, id string) error {
	return db.write(ctx, "deleting webhook", false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1 AND project_id = $2`, id, projectID)
		return mustAffect(res, err, func() error { return notFound("webhook %q not found", id) })
	})
}

// EnableWebhook enables a disabled webhook again, from a clean slate: its
// failure streak is forgotten. Deliveries that failed meanwhile stay
// failed (redeliver them).
func (db *DB) EnableWebhook(ctx context.Context, projectID, id string) error {
	return db.write(ctx, "enabling webhook", false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET disabled_at = 0, disabled_reason = '', failing_since = 0
			WHERE id = $1 AND project_id = $2`, id, projectID)
		return mustAffect(res, err, func() error { return notFound("webhook %q not found", id) })
	})
}

func (db *DB) scanWebhook(row interface{ Scan(...any) error }) (Webhook, error) {
	var (
		w                         Webhook
		evs                       string
		created, disabled, failed int64
	)
	if err := row.Scan(&w.ID, &w.ProjectID, &w.URL, &evs, &w.Secret, &created, &disabled, &w.DisabledReason, &failed); err != nil {
		return Webhook{}, err
	}
	secret, err := db.open(webhookSecretName(w.ID), []byte(w.Secret))
	if err != nil {
		return Webhook{}, err
	}
	w.Secret = string(secret)
	if err := json.Unmarshal([]byte(evs), &w.Events); err != nil {
		return Webhook{}, fmt.Errorf("webhook %q: events: %w", w.ID, err)
	}
	if len(w.Events) == 0 {
		w.Events = nil
	}
	w.CreatedAt, w.DisabledAt, w.FailingSince = fromNanos(created), fromNanos(disabled), fromNanos(failed)
	return w, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// webhookPayload is the body of a delivery (Standard Webhooks): the event
// as the API shows it, under data.
func webhookPayload(e Event) (json.RawMessage, error) {
	b, err := json.Marshal(map[string]any{
		"type":      e.Type,
		"timestamp": e.Time.UTC().Format(time.RFC3339Nano),
		"data": map[string]any{
			"id":      e.ID,
			"type":    e.Type,
			"time":    e.Time.UTC().Format(time.RFC3339Nano),
			"project": e.ProjectID,
			"subject": e.Subject,
			"data":    e.Data,
		},
	})
	return b, err
}

// queueDeliveries adds to the outbox, in the event's transaction, a
// delivery of e to each enabled webhook of its project that takes its type.
func (db *DB) queueDeliveries(ctx context.Context, tx *sql.Tx, e Event) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, events FROM webhooks WHERE project_id = $1 AND disabled_at = 0 ORDER BY id`, e.ProjectID)
	if err != nil {
		return err
	}
	var hooks []Webhook
	for rows.Next() {
		var (
			w   Webhook
			evs string
		)
		if err := rows.Scan(&w.ID, &evs); err != nil {
			rows.Close()
			return err
		}
		if err := json.Unmarshal([]byte(evs), &w.Events); err != nil {
			rows.Close()
			return fmt.Errorf("webhook %q: events: %w", w.ID, err)
		}
		if w.Takes(e.Type) {
			hooks = append(hooks, w)
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if len(hooks) == 0 {
		return nil
	}
	payload, err := webhookPayload(e)
	if err != nil {
		return err
	}
	for _, w := range hooks {
		d := Delivery{
			ID: newDeliveryID(), ProjectID: e.ProjectID, WebhookID: w.ID, MsgID: newMsgID(), EventID: e.ID, Type: e.Type,
			Payload: payload, Status: DeliveryPending, NextAttempt: e.Time, CreatedAt: e.Time, UpdatedAt: e.Time,
		}
		var pending int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1 AND status = $2`,
			w.ID, DeliveryPending).Scan(&pending); err != nil {
			return err
		}
		if pending >= db.maxPending() || len(payload) > MaxDeliveryPayload {
			d.Status, d.NextAttempt = DeliveryFailed, time.Time{}
			d.LastError = fmt.Sprintf("not sent: %d deliveries already wait for this webhook (the outbox's bound); redeliver it once the endpoint is back", pending)
			if len(payload) > MaxDeliveryPayload {
				d.LastError = fmt.Sprintf("not sent: the message is larger than %d bytes", MaxDeliveryPayload)
			}
		}
		if err := insertDelivery(ctx, tx, d); err != nil {
			return err
		}
	}
	return nil
}

const deliveryColumns = `id, project_id, webhook_id, msg_id, event_id, type, payload, status, attempts, next_attempt,
	lease_owner, lease_until, last_status, last_error, created_at, updated_at`

func insertDelivery(ctx context.Context, tx *sql.Tx, d Delivery) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries (`+deliveryColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '', 0, $11, $12, $13, $14)`,
		d.ID, d.ProjectID, d.WebhookID, d.MsgID, d.EventID, d.Type, string(d.Payload), d.Status, d.Attempts,
		toNanos(d.NextAttempt), d.LastStatus, d.LastError, toNanos(orNow(d.CreatedAt)), toNanos(orNow(d.UpdatedAt)))
	return err
}

// AddDelivery stores a delivery made outside the outbox (a test message
// sent at once). It returns ErrNotFound if the webhook is not the project's.
func (db *DB) AddDelivery(ctx context.Context, d Delivery) error {
	return db.writeNotes(ctx, "recording delivery", false, func(tx *sql.Tx, notes *txNotes) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM webhooks WHERE id = $1 AND project_id = $2`, d.WebhookID, d.ProjectID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("webhook %q not found", d.WebhookID)
		}
		if err != nil {
			return err
		}
		notes.events = d.Status == DeliveryPending
		return insertDelivery(ctx, tx, d)
	})
}

// GetDelivery returns a project's delivery, or ErrNotFound.
func (db *DB) GetDelivery(ctx context.Context, projectID, id string) (Delivery, error) {
	d, err := scanDelivery(db.r.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE id = $1 AND project_id = $2`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, notFound("delivery %q not found", id)
	}
	if err != nil {
		return Delivery{}, db.wrap("reading delivery", err)
	}
	return d, nil
}

// ListDeliveries returns up to limit deliveries of a project's webhook,
// newest first. It returns ErrNotFound if the webhook is not the project's.
func (db *DB) ListDeliveries(ctx context.Context, projectID, webhookID string, limit int) ([]Delivery, error) {
	if _, err := db.GetWebhook(ctx, projectID, webhookID); err != nil {
		return nil, err
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE webhook_id = $1 AND project_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3`, webhookID, projectID, limit)
	if err != nil {
		return nil, db.wrap("listing deliveries", err)
	}
	defer rows.Close()
	var ds []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, db.wrap("listing deliveries", err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing deliveries", err)
	}
	return ds, nil
}

// Redeliver queues a new delivery of the message of a project's delivery
// (same webhook-id and body), due at now. It returns ErrNotFound if the
// delivery is not the project's, and ErrConflict if its webhook is disabled.
func (db *DB) Redeliver(ctx context.Context, projectID, id string, now time.Time) (Delivery, error) {
	var nd Delivery
	err := db.writeNotes(ctx, "redelivering", false, func(tx *sql.Tx, notes *txNotes) error {
		d, err := scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
			WHERE id = $1 AND project_id = $2`, id, projectID))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("delivery %q not found", id)
		}
		if err != nil {
			return err
		}
		var disabled int64
		if err := tx.QueryRowContext(ctx, `SELECT disabled_at FROM webhooks WHERE id = $1`, d.WebhookID).Scan(&disabled); err != nil {
			return err
		}
		if disabled != 0 {
			return conflict("webhook %q is disabled; enable it first (spine webhook enable %s)", d.WebhookID, d.WebhookID)
		}
		var pending int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = $1 AND status = $2`,
			d.WebhookID, DeliveryPending).Scan(&pending); err != nil {
			return err
		}
		if pending >= db.maxPending() {
			return conflict("%d deliveries already wait for webhook %q (the outbox's bound); retry later", pending, d.WebhookID)
		}
		nd = Delivery{
			ID: newDeliveryID(), ProjectID: d.ProjectID, WebhookID: d.WebhookID, MsgID: d.MsgID, EventID: d.EventID, Type: d.Type,
			Payload: d.Payload, Status: DeliveryPending, NextAttempt: now, CreatedAt: now, UpdatedAt: now,
		}
		notes.events = true
		return insertDelivery(ctx, tx, nd)
	})
	return nd, err
}

// ClaimedDelivery is a delivery leased for one attempt, with what the
// sender needs: the endpoint and its signing secret.
type ClaimedDelivery struct {
	Delivery
	URL    string
	Secret string
}

// ClaimDeliveries leases up to limit pending deliveries due at now, of
// enabled webhooks, to owner for lease (by the database clock, which the
// nodes of a fleet share), the earliest due first. A leased delivery is
// claimed by no one else until its lease ends or FinishAttempt; an owner
// that dies mid-attempt leaves it to another once the lease ends.
func (db *DB) ClaimDeliveries(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]ClaimedDelivery, error) {
	if owner == "" || lease <= 0 || limit <= 0 {
		return nil, errors.New("store: ClaimDeliveries needs an owner, a positive lease and a positive limit")
	}
	var out []ClaimedDelivery
	err := db.write(ctx, "claiming deliveries", false, func(tx *sql.Tx) error {
		// The conditions are repeated outside the subquery: on PostgreSQL
		// an UPDATE that waited for another transaction's row lock checks
		// them again against the row that transaction left, and skips it:
		// another claimer's lease, or another node's attempt recorded
		// meanwhile (its lease given back, its next attempt later; without
		// the due time here two nodes attempted one delivery 5 ms apart:
		// TestPostgresClaimRechecksTheDueTime).
		rows, err := tx.QueryContext(ctx, `UPDATE webhook_deliveries SET lease_owner = $1, lease_until = `+db.d.now+` + $2
			WHERE id IN (SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
				WHERE d.status = 'pending' AND d.next_attempt <= $3 AND d.lease_until <= `+db.d.now+` AND w.disabled_at = 0
				ORDER BY d.next_attempt, d.id LIMIT $4)
			AND status = 'pending' AND next_attempt <= $3 AND lease_until <= `+db.d.now+`
			RETURNING id`, owner, int64(lease), toNanos(now), limit)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, id := range ids {
			var c ClaimedDelivery
			d, err := scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = $1`, id))
			if err != nil {
				return err
			}
			c.Delivery = d
			if err := tx.QueryRowContext(ctx, `SELECT url, secret FROM webhooks WHERE id = $1`, d.WebhookID).Scan(&c.URL, &c.Secret); err != nil {
				return err
			}
			secret, err := db.open(webhookSecretName(d.WebhookID), []byte(c.Secret))
			if err != nil {
				return err
			}
			c.Secret = string(secret)
			out = append(out, c)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b ClaimedDelivery) int { return a.NextAttempt.Compare(b.NextAttempt) })
	return out, err
}

// NextDeliveryDue returns when the earliest pending delivery of an enabled
// webhook is due, or the zero time if none is pending.
func (db *DB) NextDeliveryDue(ctx context.Context) (time.Time, error) {
	var next sql.NullInt64
	err := db.r.QueryRowContext(ctx, `SELECT MIN(d.next_attempt) FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE d.status = 'pending' AND w.disabled_at = 0`).Scan(&next)
	if err != nil {
		return time.Time{}, db.wrap("reading the outbox", err)
	}
	if !next.Valid {
		return time.Time{}, nil
	}
	return fromNanos(next.Int64), nil
}

// Attempt is the outcome of one attempt at a delivery.
type Attempt struct {
	At        time.Time
	Delivered bool   // the endpoint answered 2xx
	Status    int    // HTTP status; 0 if none
	Error     string // what went wrong, for the user; "" if delivered
	// Next is when to try again; zero: give up (the delivery fails).
	Next time.Time
	// Disable, if not "", disables the webhook with this reason (an
	// endpoint that answered 410 Gone).
	Disable string
	// DisableAfter disables the webhook when this attempt fails and its
	// attempts have failed without a success since at least this long
	// ago. 0: never.
	DisableAfter time.Duration
}

// ErrLeaseLost means the delivery is no longer leased to the caller: its
// lease ended and another sender took it (or it was removed).
var ErrLeaseLost = errors.New("delivery lease lost")

// FinishAttempt records the outcome of owner's attempt at a delivery and
// ends its lease. A webhook disabled by it (Attempt.Disable, or failing
// for DisableAfter) has its pending deliveries failed and a
// webhook.disabled event in its project's log, in the same transaction;
// disabled reports that. It returns an error wrapping ErrLeaseLost if the
// lease is no longer owner's.
func (db *DB) FinishAttempt(ctx context.Context, owner, id string, a Attempt) (disabled bool, err error) {
	err = db.writeNotes(ctx, "recording delivery attempt", false, func(tx *sql.Tx, notes *txNotes) error {
		var (
			webhookID, projectID string
			attempts             int
		)
		err := tx.QueryRowContext(ctx, `SELECT webhook_id, project_id, attempts FROM webhook_deliveries
			WHERE id = $1 AND lease_owner = $2 AND status = 'pending'`, id, owner).Scan(&webhookID, &projectID, &attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delivery %s: %w", id, ErrLeaseLost)
		}
		if err != nil {
			return err
		}
		status, next := DeliveryPending, toNanos(a.Next)
		switch {
		case a.Delivered:
			status, next = DeliveryDelivered, 0
		case a.Next.IsZero() || a.Disable != "":
			status, next = DeliveryFailed, 0
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = $2, attempts = $3, next_attempt = $4,
			lease_owner = '', lease_until = 0, last_status = $5, last_error = $6, updated_at = $7 WHERE id = $1`,
			id, status, attempts+1, next, a.Status, a.Error, toNanos(a.At)); err != nil {
			return err
		}
		if a.Delivered {
			_, err := tx.ExecContext(ctx, `UPDATE webhooks SET failing_since = 0 WHERE id = $1`, webhookID)
			return err
		}
		var (
			url                   string
			failingSince, offline int64
		)
		if err := tx.QueryRowContext(ctx, `SELECT url, failing_since, disabled_at FROM webhooks WHERE id = $1`, webhookID).
			Scan(&url, &failingSince, &offline); err != nil {
			return err
		}
		if failingSince == 0 {
			failingSince = toNanos(a.At)
			if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET failing_since = $2 WHERE id = $1`, webhookID, failingSince); err != nil {
				return err
			}
		}
		reason := a.Disable
		if reason == "" && a.DisableAfter > 0 && a.At.Sub(fromNanos(failingSince)) >= a.DisableAfter {
			reason = fmt.Sprintf("every attempt since %s failed (the last: %s)", fromNanos(failingSince).Format(time.RFC3339), a.Error)
		}
		if reason == "" || offline != 0 {
			return nil
		}
		disabled = true
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET disabled_at = $2, disabled_reason = $3 WHERE id = $1`,
			webhookID, toNanos(a.At), reason); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = 'failed', next_attempt = 0, lease_owner = '', lease_until = 0,
			last_error = CASE WHEN last_error = '' THEN 'not sent: the webhook was disabled' ELSE last_error END, updated_at = $2
			WHERE webhook_id = $1 AND status = 'pending'`, webhookID, toNanos(a.At)); err != nil {
			return err
		}
		_, _, err = db.appendEvent(ctx, tx, notes, Event{ProjectID: projectID, Type: EventWebhookDisabled, Subject: webhookID, Time: a.At,
			Data: eventData(map[string]string{"webhook": webhookID, "url": url, "reason": reason})})
		return err
	})
	return disabled, err
}

// ReleaseDelivery ends owner's lease on a delivery without recording an
// attempt (the sender is stopping), so that another sender may take it at once.
func (db *DB) ReleaseDelivery(ctx context.Context, owner, id string) error {
	return db.writeNotes(ctx, "releasing delivery", false, func(tx *sql.Tx, notes *txNotes) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET lease_owner = '', lease_until = 0
			WHERE id = $1 AND lease_owner = $2`, id, owner)
		notes.events = true
		return err
	})
}

// PruneDeliveries deletes finished (delivered or failed) deliveries last
// changed before before, and all but the newest keep finished ones of each
// webhook. Pending deliveries are bounded by MaxPendingDeliveries instead.
func (db *DB) PruneDeliveries(ctx context.Context, before time.Time, keep int) (int64, error) {
	var n int64
	err := db.write(ctx, "pruning deliveries", false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE status <> 'pending' AND (updated_at < $1 OR id IN (
			SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY webhook_id ORDER BY created_at DESC, id DESC) AS n
				FROM webhook_deliveries WHERE status <> 'pending') ranked WHERE n > $2))`, toNanos(before), keep)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func scanDelivery(row interface{ Scan(...any) error }) (Delivery, error) {
	var (
		d                         Delivery
		payload, owner            string
		next, lease, created, upd int64
	)
	if err := row.Scan(&d.ID, &d.ProjectID, &d.WebhookID, &d.MsgID, &d.EventID, &d.Type, &payload, &d.Status, &d.Attempts, &next,
		&owner, &lease, &d.LastStatus, &d.LastError, &created, &upd); err != nil {
		return Delivery{}, err
	}
	d.Payload = json.RawMessage(payload)
	d.NextAttempt, d.CreatedAt, d.UpdatedAt = fromNanos(next), fromNanos(created), fromNanos(upd)
	return d, nil
}

func newDeliveryID() string { return "dlv_" + randomHex(12) }
func newMsgID() string      { return "msg_" + randomHex(12) }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
