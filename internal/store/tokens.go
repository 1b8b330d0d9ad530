package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/sched"
)

const tokenColumns = `t.id, t.project_id, t.name, t.hash, t.scopes, t.created_at, t.expires_at, t.last_used_at`

// CreateToken stores t (only its hash) and records the event
// token.created (its name, scopes and expiry) in the same transaction.
// CreatedAt defaults to now. It returns ErrNotFound if the project does not
// exist and ErrConflict if the project has a token of that name, or the ID
// or the hash is taken. A new token is a change: every node of a fleet
// learns it (for reads while the store is away).
func (db *DB) CreateToken(ctx context.Context, t Token) error {
	return db.writeNotes(ctx, "creating token", true, func(tx *sql.Tx, notes *txNotes) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM tokens WHERE project_id = $1 AND name = $2`, t.ProjectID, t.Name).Scan(&one)
		if err == nil {
			return conflict("token %q already exists", t.Name)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		created := orNow(t.CreatedAt)
		_, err = tx.ExecContext(ctx,
			`INSERT INTO tokens (id, project_id, name, hash, scopes, created_at, expires_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			t.ID, t.ProjectID, t.Name, t.Hash, strings.Join(t.Scopes, " "), toNanos(created), toNanos(t.ExpiresAt), toNanos(t.LastUsedAt))
		switch {
		case db.isUnique(err):
			return conflict("token already exists") // never name the hash
		case db.isForeignKey(err):
			return notFound("project %q not found", t.ProjectID)
		case err != nil:
			return err
		}
		// The event names the token, never its hash or value.
		data := map[string]any{"token": t.Name}
		if len(t.Scopes) > 0 {
			data["scopes"] = t.Scopes // none: every project scope
		}
		if !t.ExpiresAt.IsZero() {
			data["expires_at"] = t.ExpiresAt.UTC()
		}
		_, _, err = db.appendEvent(ctx, tx, notes, Event{ProjectID: t.ProjectID, Type: EventTokenCreated, Subject: t.Name, Time: created, Data: eventData(data)})
		return err
	})
}

// TokenByHash returns the token with the given hash and its project, or
// ErrNotFound. It does not check expiry: that is a rule of the caller's.
func (db *DB) TokenByHash(ctx context.Context, hash string) (Credential, error) {
	var (
		c                  Credential
		created, suspended int64
	)
	row := db.r.QueryRowContext(ctx, `SELECT `+tokenColumns+`, p.name, p.created_at, p.suspended_at
		FROM tokens t JOIN projects p ON p.id = t.project_id WHERE t.hash = $1`, hash)
	tok, err := scanToken(row, &c.Project.Name, &created, &suspended)
	if errors.Is(err, sql.ErrNoRows) {
		return Credential{}, notFound("token not found")
	}
	if err != nil {
		return Credential{}, db.wrap("looking up token", err)
	}
	c.Token = tok
	c.Project.ID = tok.ProjectID
	c.Project.CreatedAt, c.Project.SuspendedAt = fromNanos(created), fromNanos(suspended)
	return c, nil
}

// ListTokens returns the tokens of a project, or of every project if
// projectID is "", sorted by project ID and name.
func (db *DB) ListTokens(ctx context.Context, projectID string) ([]Token, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens t
		WHERE t.project_id = $1 OR $1 = '' ORDER BY t.project_id, t.name`, projectID)
	if err != nil {
		return nil, db.wrap("listing tokens", err)
	}
	defer rows.Close()
	var ts []Token
	var y sched.Yielder
	for rows.Next() {
		yieldEvery(&y, len(ts))
		tok, err := scanToken(rows)
		if err != nil {
			return nil, db.wrap("listing tokens", err)
		}
		ts = append(ts, tok)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing tokens", err)
	}
	return ts, nil
}

// DeleteToken deletes the project's token of that name and records the
// event token.revoked in the same transaction, or returns ErrNotFound.
// Every node of a fleet learns it at once (a change).
func (db *DB) DeleteToken(ctx context.Context, projectID, name string) error {
	return db.writeNotes(ctx, "deleting token", true, func(tx *sql.Tx, notes *txNotes) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE project_id = $1 AND name = $2`, projectID, name)
		if err := mustAffect(res, err, func() error { return notFound("token %q not found", name) }); err != nil {
			return err
		}
		_, _, err = db.appendEvent(ctx, tx, notes, Event{ProjectID: projectID, Type: EventTokenRevoked, Subject: name,
			Data: eventData(map[string]any{"token": name})})
		return err
	})
}

// TokenUse says that the token with ID was used at At.
type TokenUse struct {
	ID string
	At time.Time
}

// TouchTokens records when tokens were last used, in one transaction. A
// token's LastUsedAt moves only forward and by at least minStep, so that
// the nodes of a fleet that all saw a token used do not all write it. It is
// not a change: no revision, no notice. Tokens deleted meanwhile are
// skipped.
func (db *DB) TouchTokens(ctx context.Context, uses []TokenUse, minStep time.Duration) error {
	if len(uses) == 0 {
		return nil
	}
	return db.write(ctx, "recording token use", false, func(tx *sql.Tx) error {
		for _, u := range uses {
			at := toNanos(u.At)
			if _, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used_at = $2 WHERE id = $1 AND last_used_at <= $3`,
				u.ID, at, at-minStep.Nanoseconds()); err != nil {
				return err
			}
		}
		return nil
	})
}

// scanToken scans the token columns and then into extra.
func scanToken(row interface{ Scan(...any) error }, extra ...any) (Token, error) {
	var (
		t                        Token
		scopes                   string
		created, expires, usedAt int64
	)
	err := row.Scan(append([]any{&t.ID, &t.ProjectID, &t.Name, &t.Hash, &scopes, &created, &expires, &usedAt}, extra...)...)
	if scopes != "" {
		t.Scopes = strings.Fields(scopes)
	}
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = fromNanos(created), fromNanos(expires), fromNanos(usedAt)
	return t, err
}
