package store

import (
	"context"
	"database/sql"
	"time"
)

// AuditEntry is one change attempted through the API: who (the token's
// name, never its value, and the client's address), what (Action on
// Subject), when, and how it ended (Result: "ok" or the error code, and the
// HTTP status).
type AuditEntry struct {
	ID        int64 // assigned by AppendAudit, increasing
	At        time.Time
	ProjectID string // "" when no token could be matched to the request
	Token     string
	Action    string
	Subject   string
	Result    string
	Status    int
	Client    string
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	ProjectID string // "" = every project
	Before    int64  // only entries with a smaller ID; 0 = from the newest
	Limit     int    // at most this many; default and cap 1000
}

const auditColumns = `id, at, project_id, token, action, subject, result, status, client`

// maxAuditPage bounds one ListAudit answer.
const maxAuditPage = 1000

// AppendAudit stores e (At defaults to now). It is not a change: no
// revision, no notice.
func (db *DB) AppendAudit(ctx context.Context, e AuditEntry) error {
	return db.write(ctx, "recording audit entry", false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit (at, project_id, token, action, subject, result, status, client)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			toNanos(orNow(e.At)), e.ProjectID, e.Token, e.Action, e.Subject, e.Result, e.Status, e.Client)
		return err
	})
}

// ListAudit returns the entries q selects, newest first.
func (db *DB) ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 || q.Limit > maxAuditPage {
		q.Limit = maxAuditPage
	}
	before := q.Before
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit
		WHERE (project_id = $1 OR $1 = '') AND id < $2 ORDER BY id DESC LIMIT $3`, q.ProjectID, before, q.Limit)
	if err != nil {
		return nil, db.wrap("listing audit entries", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var (
			e  AuditEntry
			at int64
		)
		if err := rows.Scan(&e.ID, &at, &e.ProjectID, &e.Token, &e.Action, &e.Subject, &e.Result, &e.Status, &e.Client); err != nil {
			return nil, db.wrap("listing audit entries", err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing audit entries", err)
	}
	return out, nil
}

// PruneAudit deletes the entries older than before, and of each project
// (and of the entries without one) all but the newest keep. It returns how
// many it deleted.
func (db *DB) PruneAudit(ctx context.Context, before time.Time, keep int) (int64, error) {
	var n int64
	err := db.write(ctx, "pruning audit entries", false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM audit WHERE at < $1`, toNanos(before))
		if err != nil {
			return err
		}
		aged, _ := res.RowsAffected()
		res, err = tx.ExecContext(ctx, `DELETE FROM audit WHERE id IN (SELECT id FROM
			(SELECT id, ROW_NUMBER() OVER (PARTITION BY project_id ORDER BY id DESC) AS n FROM audit) ranked
			WHERE n > $1)`, keep)
		if err != nil {
			return err
		}
		over, _ := res.RowsAffected()
		n = aged + over
		return nil
	})
	return n, err
}
