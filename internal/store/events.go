package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/sched"
)

// Event types. Every change the store makes to domains and services records
// its event in the same transaction; certificate, token and webhook events
// are appended by the parts that see them.
const (
	EventDomainVerified           = "domain.verified"
	EventDomainVerificationFailed = "domain.verification_failed"
	EventDomainMoved              = "domain.moved"
	EventCertificateIssued        = "certificate.issued"
	EventCertificateRenewed       = "certificate.renewed"
	EventCertificateFailed        = "certificate.failed"
	EventCertificateExpiring      = "certificate.expiring"
	EventServiceCreated           = "service.created"
	EventServiceUpdated           = "service.updated"
	EventServiceDeleted           = "service.deleted"
	EventTokenCreated             = "token.created"
	EventTokenRevoked             = "token.revoked"
	EventWebhookDisabled          = "webhook.disabled"
)

// EventTypes returns every event type, sorted.
func EventTypes() []string {
	return []string{
		EventCertificateExpiring, EventCertificateFailed, EventCertificateIssued, EventCertificateRenewed,
		EventDomainMoved, EventDomainVerificationFailed, EventDomainVerified,
		EventServiceCreated, EventServiceDeleted, EventServiceUpdated,
		EventTokenCreated, EventTokenRevoked,
		EventWebhookDisabled,
	}
}

// Event is an entry of a project's event log.
type Event struct {
	ProjectID string
	// ID counts up per project, in the order the events were committed: a
	// reader that has seen ID n has seen every event of the project below n
	// that is still kept. IDs are never reused.
	ID      int64
	Type    string
	Subject string          // what the event is about: a domain, a hostname, a service or token name
	Data    json.RawMessage // a JSON object; "{}" when there is nothing more to say
	Time    time.Time
	// Key, if set, makes the event once-only: an append whose key the
	// project's log already holds records nothing. Nodes that may see the
	// same fact (a certificate a fleet issued once) use it so that the
	// event is recorded once. It is not returned by reads.
	Key string
}

// MaxEventData bounds an event's data, in bytes of JSON.
const MaxEventData = 16 << 10

// AppendEvent records e in its project's log, with the next ID and, if
// e.Time is zero, the current time. It returns the event as stored and
// whether it was recorded (false when e.Key was seen before). It queues a
// delivery of the event to each of the project's enabled webhooks that
// takes its type. It returns ErrNotFound if the project does not exist.
func (db *DB) AppendEvent(ctx context.Context, e Event) (Event, bool, error) {
	var ok bool
	err := db.writeNotes(ctx, "appending event", false, func(tx *sql.Tx, notes *txNotes) error {
		var err error
		e, ok, err = db.appendEvent(ctx, tx, notes, e)
		return err
	})
	return e, ok, err
}

// AppendHostnameEvent is AppendEvent for an event about hostname (a
// certificate's name, "*.example.com" for a wildcard one) whose project
// the caller does not know: the event goes to the project that holds the
// domain the name is under. It returns ErrNotFound if no project does.
func (db *DB) AppendHostnameEvent(ctx context.Context, hostname string, e Event) (Event, bool, error) {
	var ok bool
	err := db.writeNotes(ctx, "appending event", false, func(tx *sql.Tx, notes *txNotes) error {
		pid, err := projectOfName(ctx, tx, hostname)
		if err != nil {
			return err
		}
		e.ProjectID = pid
		e, ok, err = db.appendEvent(ctx, tx, notes, e)
		return err
	})
	return e, ok, err
}

// projectOfName returns the project holding the domain that name is, or is
// under, or ErrNotFound.
func projectOfName(ctx context.Context, tx *sql.Tx, name string) (string, error) {
	name = strings.TrimPrefix(name, "*.")
	var args []any
	var conds []string
	for n := name; n != ""; {
		args = append(args, n)
		conds = append(conds, fmt.Sprintf("$%d", len(args)))
		_, n, _ = strings.Cut(n, ".")
	}
	if len(args) == 0 {
		return "", notFound("no project holds a domain for %q", name)
	}
	// The longest name is the nearest domain; projects never overlap, so
	// any match would do, but the nearest is the one that decides.
	var pid string
	err := tx.QueryRowContext(ctx, `SELECT project_id FROM domains WHERE name IN (`+strings.Join(conds, ", ")+`)
		ORDER BY LENGTH(name) DESC LIMIT 1`, args...).Scan(&pid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("no project holds a domain for %q", name)
	}
	return pid, err
}

// appendEvent records e in tx. The project's row of event_seq is taken
// first: on PostgreSQL its lock orders the project's appends, so IDs are
// given out in commit order and the once-only check below cannot race.
func (db *DB) appendEvent(ctx context.Context, tx *sql.Tx, notes *txNotes, e Event) (Event, bool, error) {
	if e.ProjectID == "" || e.Type == "" {
		return Event{}, false, errors.New("store: an event needs a project and a type")
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("{}")
	}
	if len(e.Data) > MaxEventData || !json.Valid(e.Data) || e.Data[0] != '{' {
		return Event{}, false, fmt.Errorf("store: event data must be a JSON object of at most %d bytes", MaxEventData)
	}
	e.Time = orNow(e.Time).UTC()
	_, err := tx.ExecContext(ctx, `INSERT INTO event_seq (project_id, last) VALUES ($1, 0)
		ON CONFLICT (project_id) DO UPDATE SET last = event_seq.last`, e.ProjectID)
	if db.isForeignKey(err) {
		return Event{}, false, notFound("project %q not found", e.ProjectID)
	}
	if err != nil {
		return Event{}, false, err
	}
	var key any // NULL: many events may have none
	if e.Key != "" {
		key = e.Key
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM events WHERE project_id = $1 AND dedup_key = $2`, e.ProjectID, e.Key).Scan(&one)
		if err == nil {
			return e, false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return Event{}, false, err
		}
	}
	if err := tx.QueryRowContext(ctx, `UPDATE event_seq SET last = last + 1 WHERE project_id = $1 RETURNING last`,
		e.ProjectID).Scan(&e.ID); err != nil {
		return Event{}, false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO events (project_id, id, type, subject, data, created_at, dedup_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.ProjectID, e.ID, e.Type, e.Subject, string(e.Data), toNanos(e.Time), key); err != nil {
		return Event{}, false, err
	}
	notes.events = true
	if err := db.queueDeliveries(ctx, tx, e); err != nil {
		return Event{}, false, err
	}
	return e, true, nil
}

// eventData encodes v, an event's data, as JSON.
func eventData(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // the store's own maps of strings
	}
	return b
}

const eventColumns = `project_id, id, type, subject, data, created_at`

// ListEvents returns up to limit events of the project with an ID above
// after, oldest first.
func (db *DB) ListEvents(ctx context.Context, projectID string, after int64, limit int) ([]Event, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+eventColumns+` FROM events
		WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3`, projectID, after, limit)
	if err != nil {
		return nil, db.wrap("listing events", err)
	}
	defer rows.Close()
	var es []Event
	for rows.Next() {
		var (
			e       Event
			data    string
			created int64
		)
		if err := rows.Scan(&e.ProjectID, &e.ID, &e.Type, &e.Subject, &data, &created); err != nil {
			return nil, db.wrap("listing events", err)
		}
		e.Data, e.Time = json.RawMessage(data), fromNanos(created)
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing events", err)
	}
	return es, nil
}

// LastEventID returns the ID of the project's latest event, or 0 if it has
// had none.
func (db *DB) LastEventID(ctx context.Context, projectID string) (int64, error) {
	var last int64
	err := db.r.QueryRowContext(ctx, `SELECT last FROM event_seq WHERE project_id = $1`, projectID).Scan(&last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, db.wrap("reading the last event", err)
	}
	return last, nil
}

// pruneBatch bounds the events one transaction of PruneEvents deletes. A
// first prune after a bulk import (a million events in one project) was
// one statement: on SQLite, seconds of the node's processor in one
// transaction, which the runtime preempts only every 10 ms, so every
// handshake of those seconds waited 10-20 ms (a runtime trace of a 1M
// node's start, BENCHMARKS.md); and every other write waited for it.
const pruneBatch = 256

// PruneEvents deletes the events recorded before before, and the oldest of
// every project that holds more than keep. It returns how many it deleted.
// It deletes in transactions of at most pruneBatch events (db.pruneBatch
// in tests), and lets other goroutines run between them (sched.Yield): a
// failure or ctx's end leaves what it deleted so far deleted.
func (db *DB) PruneEvents(ctx context.Context, before time.Time, keep int) (int64, error) {
	batch := cmp.Or(db.pruneBatch, pruneBatch)
	var total int64
	for {
		var n int64
		err := db.write(ctx, "pruning events", false, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE (project_id, id) IN (
				SELECT project_id, id FROM events WHERE created_at < $1
				OR id <= (SELECT s.last FROM event_seq s WHERE s.project_id = events.project_id) - $2
				LIMIT $3)`,
				toNanos(before), keep, batch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < int64(batch) {
			return total, err
		}
		sched.Yield()
	}
}
