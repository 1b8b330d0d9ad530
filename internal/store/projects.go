package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

const projectColumns = `id, name, created_at, suspended_at`

// CreateProject stores p. CreatedAt defaults to now. It returns ErrConflict if the
// ID or the name is taken.
func (db *DB) CreateProject(ctx context.Context, p Project) error {
	return db.write(ctx, "creating project", true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO projects (`+projectColumns+`) VALUES ($1, $2, $3, $4)`,
			p.ID, p.Name, toNanos(orNow(p.CreatedAt)), toNanos(p.SuspendedAt))
		if db.isUnique(err) {
			return conflict("project %q already exists", p.Name)
		}
		return err
	})
}

// GetProject returns the project with the given ID, or ErrNotFound.
func (db *DB) GetProject(ctx context.Context, id string) (Project, error) {
	p, err := scanProject(db.r.QueryRowContext(ctx,
		`SELECT `+projectColumns+` FROM projects WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Project{}, notFound("project %q not found", id)
	}
	if err != nil {
		return Project{}, db.wrap("reading project", err)
	}
	return p, nil
}

// ListProjects returns every project, sorted by ID.
func (db *DB) ListProjects(ctx context.Context) ([]Project, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY id`)
	if err != nil {
		return nil, db.wrap("listing projects", err)
	}
	defer rows.Close()
	var ps []Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, db.wrap("listing projects", err)
		}
		ps = append(ps, p)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing projects", err)
	}
	return ps, nil
}

// SuspendProject sets the project's SuspendedAt to at; a zero at resumes
// it. It returns ErrNotFound if there is no such project.
func (db *DB) SuspendProject(ctx context.Context, id string, at time.Time) error {
	return db.write(ctx, "suspending project", true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE projects SET suspended_at = $2 WHERE id = $1`, id, toNanos(at))
		return mustAffect(res, err, func() error { return notFound("project %q not found", id) })
	})
}

// DeleteProject deletes a project and everything it holds, in one
// transaction: its services and their hostnames, the certificate status of
// those hostnames, its domains (free for any project to add from then on)
// and its tokens. Its audit entries stay until retention removes them. It
// returns ErrNotFound if there is no such project.
func (db *DB) DeleteProject(ctx context.Context, id string) error {
	return db.write(ctx, "deleting project", true, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM cert_status WHERE hostname IN (SELECT h.hostname FROM service_hostnames h
				JOIN services s ON s.id = h.service_id WHERE s.project_id = $1)`,
			`DELETE FROM services WHERE project_id = $1`, // hostnames cascade
			`DELETE FROM domains WHERE project_id = $1`,
			`DELETE FROM tokens WHERE project_id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM projects WHERE id = $1`, id)
		return mustAffect(res, err, func() error { return notFound("project %q not found", id) })
	})
}

func scanProject(row interface{ Scan(...any) error }) (Project, error) {
	var (
		p                  Project
		created, suspended int64
	)
	err := row.Scan(&p.ID, &p.Name, &created, &suspended)
	p.CreatedAt, p.SuspendedAt = fromNanos(created), fromNanos(suspended)
	return p, err
}
