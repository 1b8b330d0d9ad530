package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// The change log (table service_changes, migration 0033) lets a node apply
// what changed since the revision it applied, reading the changed services
// only. Every change adds rows for its revision in its own transaction
// (writeNotes): one per service it created, updated or deleted, or one with
// service_id "" for any other change. So every revision since the log began
// has rows, and a gap (revisions pruned, or written by a release without
// the log) shows that the log no longer reaches back.
const (
	// changeLogKeep is how many revisions the log keeps: a node further
	// behind reads everything. At most changeLogKeep+changeLogPruneEvery
	// revisions are held.
	changeLogKeep = 100_000
	// changeLogPruneEvery: the change that reaches a multiple of it prunes.
	changeLogPruneEvery = 1024
	// maxChangedServices is the most rows ChangesSince reads: a node
	// further behind reads everything, which then costs about as much.
	maxChangedServices = 1000
)

// Changes is what changed in the store after a revision (ChangesSince).
type Changes struct {
	// Full means the changes cannot be told service by service: the log
	// does not reach back to the revision asked for (pruned, or older than
	// the log), more than a thousand services changed, or something other
	// than a service changed (a project, domain, token or uploaded
	// certificate). The reader must then read everything, as at start;
	// the other fields are unset.
	Full bool
	// Revision is the revision that applying Services and Deleted brings
	// the reader to; it equals the one asked for when nothing changed.
	Revision int64
	// Services are the services created or updated, as stored now (which
	// may be newer than Revision: applying a service twice is harmless).
	Services []Service
	// Deleted are the IDs of the services deleted (or no longer stored).
	Deleted []string
}

// logChange adds the change log's rows for the change of revision rev,
// in tx, and prunes the log every changeLogPruneEvery revisions.
func logChange(ctx context.Context, tx *sql.Tx, rev int64, services []string) error {
	if len(services) == 0 {
		services = []string{""}
	}
	for _, id := range services {
		if _, err := tx.ExecContext(ctx, `INSERT INTO service_changes (revision, service_id) VALUES ($1, $2)
			ON CONFLICT DO NOTHING`, rev, id); err != nil {
			return err
		}
	}
	if rev%changeLogPruneEvery == 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM service_changes WHERE revision <= $1`, rev-changeLogKeep); err != nil {
			return err
		}
	}
	return nil
}

// ChangesSince returns what changed after revision rev, from the change
// log: the services created, updated or deleted, or Full when the reader
// must read everything (see Changes).
func (db *DB) ChangesSince(ctx context.Context, rev int64) (Changes, error) {
	// The revision first: every change up to it has committed its rows,
	// so none of them may be missing below (a change committing after
	// the read may or may not show; the next call has it).
	cur, err := db.Revision(ctx)
	switch {
	case err != nil:
		return Changes{}, err
	case cur == rev:
		return Changes{Revision: rev}, nil
	case cur < rev: // rev is from another database, or one restored
		return Changes{Full: true}, nil
	}
	rows, err := db.r.QueryContext(ctx, `SELECT revision, service_id FROM service_changes WHERE revision > $1
		ORDER BY revision, service_id LIMIT $2`, rev, maxChangedServices+1)
	if err != nil {
		return Changes{}, db.wrap("reading changes", err)
	}
	var (
		ids  []string
		seen = map[string]bool{}
		last = rev
		n    int
		full bool
	)
	for rows.Next() {
		var r int64
		var id string
		if err := rows.Scan(&r, &id); err != nil {
			rows.Close()
			return Changes{}, db.wrap("reading changes", err)
		}
		n++
		if (r != last && r != last+1) || id == "" {
			full = true // a gap, or a change of something other than a service
		}
		last = r
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if err := rows.Close(); err != nil {
		return Changes{}, db.wrap("reading changes", err)
	}
	// No row after rev although the store is past it: the log does not
	// reach back (older than the log, or pruned).
	if full || n == 0 || n > maxChangedServices {
		return Changes{Full: true}, nil
	}
	var in strings.Builder
	args := make([]any, len(ids))
	for i, id := range ids {
		if i > 0 {
			in.WriteString(", ")
		}
		in.WriteString("$" + strconv.Itoa(i+1))
		args[i] = id
	}
	svcs, err := db.queryFewServices(ctx, false, `services.id IN (`+in.String()+`)`, args...)
	if err != nil {
		return Changes{}, db.wrap("reading changed services", err)
	}
	out := Changes{Revision: last, Services: svcs}
	found := make(map[string]bool, len(svcs))
	for _, s := range svcs {
		found[s.ID] = true
	}
	for _, id := range ids {
		if !found[id] {
			out.Deleted = append(out.Deleted, id)
		}
	}
	return out, nil
}
