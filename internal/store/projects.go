package store

import (
	"context"
	"database/sql"
	"errors"
)

// CreateProject stores p. CreatedAt defaults to now. It returns ErrConflict if the
// ID or the name is taken.
func (db *DB) CreateProject(ctx context.Context, p Project) error {
	return db.write(ctx, "creating project", true, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3)`,
			p.ID, p.Name, toNanos(orNow(p.CreatedAt)))
		if db.isUnique(err) {
			return conflict("project %q already exists", p.Name)
		}
		return err
	})
}

// GetProject returns the project with the given ID, or ErrNotFound.
func (db *DB) GetProject(ctx context.Context, id string) (Project, error) {
	p, err := scanProject(db.r.QueryRowContext(ctx,
		`SELECT id, name, created_at FROM projects WHERE id = $1`, id))
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
	rows, err := db.r.QueryContext(ctx, `SELECT id, name, created_at FROM projects ORDER BY id`)
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

func scanProject(row interface{ Scan(...any) error }) (Project, error) {
	var (
		p       Project
		created int64
	)
	err := row.Scan(&p.ID, &p.Name, &created)
	p.CreatedAt = fromNanos(created)
	return p, err
}

// CreateToken stores t (only its hash). CreatedAt defaults to now. It returns
// ErrNotFound if the project does not exist and ErrConflict if the ID or the hash is taken.
func (db *DB) CreateToken(ctx context.Context, t Token) error {
	return db.write(ctx, "creating token", false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO tokens (id, project_id, name, hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
			t.ID, t.ProjectID, t.Name, t.Hash, toNanos(orNow(t.CreatedAt)))
		switch {
		case db.isUnique(err):
			return conflict("token already exists") // never name the hash
		case db.isForeignKey(err):
			return notFound("project %q not found", t.ProjectID)
		}
		return err
	})
}

// ProjectByTokenHash returns the project of the token with the given hash, or ErrNotFound.
func (db *DB) ProjectByTokenHash(ctx context.Context, hash string) (Project, error) {
	p, err := scanProject(db.r.QueryRowContext(ctx,
		`SELECT p.id, p.name, p.created_at FROM tokens t JOIN projects p ON p.id = t.project_id WHERE t.hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return Project{}, notFound("token not found")
	}
	if err != nil {
		return Project{}, db.wrap("looking up token", err)
	}
	return p, nil
}
