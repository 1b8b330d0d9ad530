package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spine-platform/spine/internal/sched"
)

const certStatusColumns = `hostname, status, issuer, not_before, not_after, error, updated_at`

// PutCertStatus stores s, replacing the status of the same hostname. UpdatedAt defaults to now.
func (db *DB) PutCertStatus(ctx context.Context, s CertStatus) error {
	return db.write(ctx, "storing certificate status", false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO cert_status (`+certStatusColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (hostname) DO UPDATE SET status = excluded.status, issuer = excluded.issuer,
				not_before = excluded.not_before, not_after = excluded.not_after,
				error = excluded.error, updated_at = excluded.updated_at`,
			s.Hostname, s.Status, s.Issuer, toNanos(s.NotBefore), toNanos(s.NotAfter), s.Error, toNanos(orNow(s.UpdatedAt)))
		return err
	})
}

// GetCertStatus returns the certificate status of hostname, or ErrNotFound.
func (db *DB) GetCertStatus(ctx context.Context, hostname string) (CertStatus, error) {
	s, err := scanCertStatus(db.r.QueryRowContext(ctx,
		`SELECT `+certStatusColumns+` FROM cert_status WHERE hostname = $1`, hostname))
	if errors.Is(err, sql.ErrNoRows) {
		return CertStatus{}, notFound("no certificate status for %q", hostname)
	}
	if err != nil {
		return CertStatus{}, db.wrap("reading certificate status", err)
	}
	return s, nil
}

// ListCertStatus returns the status of every hostname, sorted by hostname.
func (db *DB) ListCertStatus(ctx context.Context) ([]CertStatus, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+certStatusColumns+` FROM cert_status ORDER BY hostname`)
	if err != nil {
		return nil, db.wrap("listing certificate status", err)
	}
	defer rows.Close()
	var ss []CertStatus
	for rows.Next() {
		s, err := scanCertStatus(rows)
		if err != nil {
			return nil, db.wrap("listing certificate status", err)
		}
		ss = append(ss, s)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing certificate status", err)
	}
	return ss, nil
}

// ListCertStatusDue returns at most limit statuses of certificates, active
// or failed with a validity recorded, whose renewal window (the last ratio
// of their lifetime) has begun at now, those that end first first. It reads
// the whole table, which is cheap next to what it saves: renewals of
// certificates that are not in any node's memory.
func (db *DB) ListCertStatusDue(ctx context.Context, ratio float64, now time.Time, limit int) ([]CertStatus, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+certStatusColumns+` FROM cert_status
		WHERE status IN ($1, $2) AND not_after > 0 AND not_after - (not_after - not_before) * CAST($3 AS DOUBLE PRECISION) <= $4
		ORDER BY not_after LIMIT $5`, CertActive, CertFailed, ratio, toNanos(now), limit)
	if err != nil {
		return nil, db.wrap("listing certificates due for renewal", err)
	}
	defer rows.Close()
	var ss []CertStatus
	for rows.Next() {
		s, err := scanCertStatus(rows)
		if err != nil {
			return nil, db.wrap("listing certificates due for renewal", err)
		}
		ss = append(ss, s)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing certificates due for renewal", err)
	}
	return ss, nil
}

// ListCertValid returns the hostnames whose recorded certificate is active,
// has begun (not before now) and has not reached its renewal window (the
// last ratio of its lifetime) at now: what a certificate manager serves
// without issuing, at its first sync. It reads the hostnames only (from
// the index cert_status_covering), not whole statuses. The hostnames come
// in chunks of at most 65,536, in the order read (nil for none): one list
// of a million made at the end was a 16 MB allocation and copy that held
// a node's one processor for 48 ms during its warm-up (BENCHMARKS.md,
// "What a runtime trace of a 1M node found on PostgreSQL").
func (db *DB) ListCertValid(ctx context.Context, ratio float64, now time.Time) ([][]string, error) {
	const valid = `SELECT hostname FROM cert_status
		WHERE status = $1 AND not_before < $2 AND not_after - (not_after - not_before) * CAST($3 AS DOUBLE PRECISION) > $2`
	var (
		out chunkedStrings
		y   sched.Yielder
	)
	if db.pgcfg != nil {
		// The hostnames as pgx received them, packed: a million of them
		// were a string and an interface each through database/sql.
		err := db.withPgx(ctx, func(c *pgx.Conn) error {
			rows, err := c.Query(ctx, valid, textResults, CertActive, toNanos(now), ratio)
			if err != nil {
				return err
			}
			defer rows.Close()
			var kept packed
			for n := 0; rows.Next(); n++ {
				yieldEvery(&y, n)
				out.add(kept.of(rows.RawValues()[0]))
			}
			return rows.Err()
		})
		if err != nil {
			return nil, db.wrap("listing valid certificates", err)
		}
		return out.chunks(), nil
	}
	rows, err := db.r.QueryContext(ctx, valid, CertActive, toNanos(now), ratio)
	if err != nil {
		return nil, db.wrap("listing valid certificates", err)
	}
	defer rows.Close()
	for n := 0; rows.Next(); n++ {
		yieldEvery(&y, n)
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, db.wrap("listing valid certificates", err)
		}
		out.add(h)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing valid certificates", err)
	}
	return out.chunks(), nil
}

// chunkedStrings collects a read's strings in lists of at most 64K, so that
// no append reallocates a list of a million: each growth of one is a new
// allocation of up to 16 MB, zeroed and faulted in at once, which held a
// node's one processor for tens of milliseconds while its warm-up's
// handshakes waited (one such append took 48 ms; BENCHMARKS.md, "What held
// the processor over PostgreSQL's warm-up"). chunks gives them as they
// are: one list of all, made at the end, took as long.
type chunkedStrings struct {
	full [][]string
	cur  []string
	n    int
}

func (c *chunkedStrings) add(s string) {
	if len(c.cur) == cap(c.cur) {
		if c.cur != nil {
			c.full = append(c.full, c.cur)
		}
		c.cur = make([]string, 0, min(max(2*cap(c.cur), 256), 1<<16))
	}
	c.cur = append(c.cur, s)
	c.n++
}

// chunks returns the strings added, in order, in their chunks (nil for
// none).
func (c *chunkedStrings) chunks() [][]string {
	if c.n == 0 {
		return nil
	}
	return append(c.full, c.cur)
}

// DeleteCertStatus deletes the status of hostname, or returns ErrNotFound.
func (db *DB) DeleteCertStatus(ctx context.Context, hostname string) error {
	return db.write(ctx, "deleting certificate status", false, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM cert_status WHERE hostname = $1`, hostname)
		return mustAffect(res, err, func() error { return notFound("no certificate status for %q", hostname) })
	})
}

func scanCertStatus(row interface{ Scan(...any) error }) (CertStatus, error) {
	var (
		s                            CertStatus
		notBefore, notAfter, updated int64
	)
	err := row.Scan(&s.Hostname, &s.Status, &s.Issuer, &notBefore, &notAfter, &s.Error, &updated)
	s.NotBefore, s.NotAfter, s.UpdatedAt = fromNanos(notBefore), fromNanos(notAfter), fromNanos(updated)
	return s, err
}
