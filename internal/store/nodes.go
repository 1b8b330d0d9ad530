package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Node is one Spine process of a fleet, as it last reported itself.
type Node struct {
	ID        string // stable across restarts (kept in the node's data folder)
	Version   string
	HTTPSAddr string
	HTTPAddr  string
	APIAddr   string
	StartedAt time.Time
	Heartbeat time.Time // the database's clock at the last report
	// Age is how long ago the last report was, by the database's clock
	// (filled by ListNodes).
	Age time.Duration
}

// nodeForget is how long a node that stopped reporting stays listed.
const nodeForget = 24 * time.Hour

// Heartbeat records that n is alive now (by the database's clock), creating
// or updating its row, and forgets nodes silent for a day.
func (db *DB) Heartbeat(ctx context.Context, n Node) error {
	if n.ID == "" {
		return errors.New("store: Heartbeat needs a node ID")
	}
	return db.write(ctx, "recording heartbeat", false, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO nodes (id, version, https_addr, http_addr, api_addr, started_at, heartbeat)
			VALUES ($1, $2, $3, $4, $5, $6, `+db.d.now+`)
			ON CONFLICT (id) DO UPDATE SET version = excluded.version, https_addr = excluded.https_addr,
				http_addr = excluded.http_addr, api_addr = excluded.api_addr,
				started_at = excluded.started_at, heartbeat = excluded.heartbeat`,
			n.ID, n.Version, n.HTTPSAddr, n.HTTPAddr, n.APIAddr, toNanos(n.StartedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE heartbeat < `+db.d.now+` - $1`, int64(nodeForget))
		return err
	})
}

// ListNodes returns every node that reported in the last day, sorted by ID.
func (db *DB) ListNodes(ctx context.Context) ([]Node, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, version, https_addr, http_addr, api_addr, started_at, heartbeat,
		`+db.d.now+` - heartbeat FROM nodes ORDER BY id`)
	if err != nil {
		return nil, db.wrap("listing nodes", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var (
			n             Node
			started, beat int64
			age           int64
		)
		if err := rows.Scan(&n.ID, &n.Version, &n.HTTPSAddr, &n.HTTPAddr, &n.APIAddr, &started, &beat, &age); err != nil {
			return nil, db.wrap("listing nodes", err)
		}
		n.StartedAt, n.Heartbeat, n.Age = fromNanos(started), fromNanos(beat), time.Duration(max(age, 0))
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing nodes", err)
	}
	return out, nil
}
