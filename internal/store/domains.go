package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spine-platform/spine/internal/hostname"
)

const domainColumns = `name, project_id, status, verify_token, created_at, verified_at, checked_at, check_error`

// CreateDomain stores d. CreatedAt defaults to now. It returns ErrConflict if any
// project has the name, or if another project holds a domain above or below it
// (the check runs in the write's transaction, so two projects adding a.com and
// x.a.com at once cannot both succeed), and ErrNotFound if the project does not
// exist.
func (db *DB) CreateDomain(ctx context.Context, d Domain) error {
	return db.write(ctx, "creating domain", true, func(tx *sql.Tx) error {
		other, err := overlappingDomain(ctx, tx, d.ProjectID, d.Name)
		if err != nil {
			return err
		}
		if other != "" && other != d.Name {
			return conflict("domain %q overlaps domain %q of another project", d.Name, other)
		}
		if err := db.checkQuota(ctx, tx, d.ProjectID, quotaDomains, 1); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO domains (`+domainColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			d.Name, d.ProjectID, d.Status, d.VerifyToken, toNanos(orNow(d.CreatedAt)),
			toNanos(d.VerifiedAt), toNanos(d.CheckedAt), d.CheckError)
		switch {
		case db.isUnique(err):
			return conflict("domain %q is already taken", d.Name)
		case db.isForeignKey(err):
			return notFound("project %q not found", d.ProjectID)
		}
		return err
	})
}

// GetDomain returns the domain with the given name, whichever project owns it, or ErrNotFound.
func (db *DB) GetDomain(ctx context.Context, name string) (Domain, error) {
	d, err := scanDomain(db.r.QueryRowContext(ctx, `SELECT `+domainColumns+` FROM domains WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Domain{}, notFound("domain %q not found", name)
	}
	if err != nil {
		return Domain{}, db.wrap("reading domain", err)
	}
	return d, nil
}

// ListDomains returns the domains of a project, or of all projects if projectID
// is "", sorted by name.
func (db *DB) ListDomains(ctx context.Context, projectID string) ([]Domain, error) {
	rows, err := db.r.QueryContext(ctx,
		`SELECT `+domainColumns+` FROM domains WHERE project_id = $1 OR $1 = '' ORDER BY name`, projectID)
	if err != nil {
		return nil, db.wrap("listing domains", err)
	}
	defer rows.Close()
	var ds []Domain
	for rows.Next() {
		d, err := scanDomain(rows)
		if err != nil {
			return nil, db.wrap("listing domains", err)
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing domains", err)
	}
	return ds, nil
}

// maxNamesPerRead bounds the names of one DomainsNamed query (SQLite
// allows 32,766 parameters; fewer keep each statement small).
const maxNamesPerRead = 500

// maxPreparedNames is the longest IN list of DomainsNamed kept prepared:
// the names at and above one hostname (the warm-up's look-up) are a few;
// a longer list, a service's hostnames' or a sync's, is parsed each time.
const maxPreparedNames = 8

// DomainsNamed returns the domains, of any project, whose names are among
// names, sorted by name; a name no domain has is left out. It reads what a
// project's hostnames need (the domains above them) instead of every
// domain of the platform.
func (db *DB) DomainsNamed(ctx context.Context, names []string) ([]Domain, error) {
	var ds []Domain
	for len(names) > 0 {
		chunk := names[:min(len(names), maxNamesPerRead)]
		names = names[len(chunk):]
		q, args := domainsNamedQuery(chunk)
		query := db.r.QueryContext
		if len(chunk) <= maxPreparedNames {
			query = db.queryRead // the names above one hostname: a handful
		}
		rows, err := query(ctx, q, args...)
		if err != nil {
			return nil, db.wrap("reading domains", err)
		}
		for rows.Next() {
			d, err := scanDomain(rows)
			if err != nil {
				rows.Close()
				return nil, db.wrap("reading domains", err)
			}
			ds = append(ds, d)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, db.wrap("reading domains", err)
		}
	}
	sortDomains(ds)
	return ds, nil
}

// sortDomains sorts ds by name.
func sortDomains(ds []Domain) {
	slices.SortFunc(ds, func(a, b Domain) int { return strings.Compare(a.Name, b.Name) })
}

// domainsNamedQuery returns the query of DomainsNamed for names (at most
// maxNamesPerRead) and its arguments.
func domainsNamedQuery(names []string) (string, []any) {
	args := make([]any, len(names))
	var in strings.Builder
	for i, n := range names {
		if i > 0 {
			in.WriteString(", ")
		}
		fmt.Fprintf(&in, "$%d", i+1)
		args[i] = n
	}
	return `SELECT ` + domainColumns + ` FROM domains WHERE name IN (` + in.String() + `)`, args
}

// UpdateDomain sets ProjectID, Status, VerifyToken, VerifiedAt, CheckedAt and
// CheckError of the domain named d.Name. It returns ErrNotFound if there is no
// such domain or no such project.
//
// It records, in the same transaction, what the change means: domain.moved
// in the logs of the project that lost the domain and of the one that took
// it; domain.verified when it becomes verified; domain.verification_failed
// when a check finds something other than the last one did (a domain
// waiting for its record is checked every minute: one event per new
// finding, not one a minute).
func (db *DB) UpdateDomain(ctx context.Context, d Domain) error {
	return db.writeNotes(ctx, "updating domain", true, func(tx *sql.Tx, notes *txNotes) error {
		var oldProject, oldStatus, oldError string
		err := tx.QueryRowContext(ctx, `SELECT project_id, status, check_error FROM domains WHERE name = $1`, d.Name).
			Scan(&oldProject, &oldStatus, &oldError)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("domain %q not found", d.Name)
		}
		if err != nil {
			return err
		}
		if oldProject != d.ProjectID {
			if err := db.checkQuota(ctx, tx, d.ProjectID, quotaDomains, 1); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE domains SET project_id = $2, status = $3, verify_token = $4,
			verified_at = $5, checked_at = $6, check_error = $7 WHERE name = $1`,
			d.Name, d.ProjectID, d.Status, d.VerifyToken, toNanos(d.VerifiedAt), toNanos(d.CheckedAt), d.CheckError)
		if db.isForeignKey(err) {
			return notFound("project %q not found", d.ProjectID)
		}
		if err := mustAffect(res, err, func() error { return notFound("domain %q not found", d.Name) }); err != nil {
			return err
		}
		var events []Event
		switch {
		case oldProject != d.ProjectID:
			// Neither project learns the other's ID.
			events = append(events,
				Event{ProjectID: oldProject, Type: EventDomainMoved, Subject: d.Name,
					Data: eventData(map[string]string{"domain": d.Name, "direction": "out"})},
				Event{ProjectID: d.ProjectID, Type: EventDomainMoved, Subject: d.Name,
					Data: eventData(map[string]string{"domain": d.Name, "direction": "in"})})
		case oldStatus != DomainVerified && d.Status == DomainVerified:
			events = append(events, Event{ProjectID: d.ProjectID, Type: EventDomainVerified, Subject: d.Name,
				Data: eventData(map[string]string{"domain": d.Name})})
		case d.CheckError != "" && d.CheckError != oldError:
			events = append(events, Event{ProjectID: d.ProjectID, Type: EventDomainVerificationFailed, Subject: d.Name,
				Data: eventData(map[string]string{"domain": d.Name, "status": d.Status, "detail": d.CheckError})})
		}
		if len(events) == 2 && events[1].ProjectID < events[0].ProjectID {
			// Take the projects' event_seq rows in one order, always.
			events[0], events[1] = events[1], events[0]
		}
		for _, e := range events {
			e.Time = d.CheckedAt
			if _, _, err := db.appendEvent(ctx, tx, notes, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteDomain deletes a project's domain. It returns ErrNotFound if the project
// has no such domain and ErrInUse if a service uses it.
func (db *DB) DeleteDomain(ctx context.Context, projectID, name string) error {
	return db.write(ctx, "deleting domain", true, func(tx *sql.Tx) error {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT project_id FROM domains WHERE name = $1`, name).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != projectID) {
			return notFound("domain %q not found", name)
		}
		if err != nil {
			return err
		}
		var service string
		err = tx.QueryRowContext(ctx,
			`SELECT name FROM services WHERE domain = $1 ORDER BY name LIMIT 1`, name).Scan(&service)
		if err == nil {
			return inUse("domain %q is used by service %q", name, service)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if host, service, err := uncoveredHostname(ctx, tx, projectID, name); err != nil {
			return err
		} else if host != "" {
			return inUse("domain %q is used by service %q (hostname %q)", name, service, host)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM domains WHERE name = $1 AND project_id = $2`, name, projectID)
		if db.isForeignKey(err) { // a service created since the check above
			return inUse("domain %q is used by a service", name)
		}
		return err
	})
}

// overlappingDomain returns a domain of a project other than projectID that is
// name itself, sits above it (a parent) or below it (a child), or "".
func overlappingDomain(ctx context.Context, tx *sql.Tx, projectID, name string) (string, error) {
	args := []any{projectID, "%." + likeEscape(name)}
	conds := []string{`name LIKE $2 ESCAPE '\'`}
	for n := name; n != ""; {
		args = append(args, n)
		conds = append(conds, fmt.Sprintf("name = $%d", len(args)))
		_, n, _ = strings.Cut(n, ".")
	}
	var other string
	err := tx.QueryRowContext(ctx, `SELECT name FROM domains WHERE project_id <> $1 AND (`+
		strings.Join(conds, " OR ")+`) ORDER BY name LIMIT 1`, args...).Scan(&other)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return other, err
}

// uncoveredHostname returns a hostname of one of the project's services that
// is the domain name or under it and that no other domain of the project
// covers, with its service's name; or "" if removing the domain strands none.
func uncoveredHostname(ctx context.Context, tx *sql.Tx, projectID, name string) (host, service string, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT h.hostname, s.name FROM service_hostnames h
		JOIN services s ON s.id = h.service_id
		WHERE s.project_id = $1 AND (h.hostname = $2 OR h.hostname LIKE $3 ESCAPE '\')
		ORDER BY h.hostname`, projectID, name, "%."+likeEscape(name))
	if err != nil {
		return "", "", err
	}
	type use struct{ host, service string }
	var uses []use
	for rows.Next() {
		var u use
		if err := rows.Scan(&u.host, &u.service); err != nil {
			rows.Close()
			return "", "", err
		}
		uses = append(uses, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(uses) == 0 {
		return "", "", err
	}
	var others []string
	rows, err = tx.QueryContext(ctx, `SELECT name FROM domains WHERE project_id = $1 AND name <> $2`, projectID, name)
	if err != nil {
		return "", "", err
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return "", "", err
		}
		others = append(others, d)
	}
	if err := rows.Err(); err != nil {
		return "", "", err
	}
next:
	for _, u := range uses {
		for _, d := range others {
			if hostname.InDomain(u.host, d) {
				continue next
			}
		}
		return u.host, u.service, nil
	}
	return "", "", nil
}

// likeEscape escapes s for a LIKE pattern with ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func scanDomain(row interface{ Scan(...any) error }) (Domain, error) {
	var (
		d                          Domain
		created, verified, checked int64
	)
	err := row.Scan(&d.Name, &d.ProjectID, &d.Status, &d.VerifyToken, &created, &verified, &checked, &d.CheckError)
	d.CreatedAt, d.VerifiedAt, d.CheckedAt = fromNanos(created), fromNanos(verified), fromNanos(checked)
	return d, err
}

// mustAffect returns err, or what missing returns if the statement changed no row.
func mustAffect(res sql.Result, err error, missing func() error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return missing()
	}
	return nil
}
