package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// UploadedCert is a certificate a project brought itself for one of its
// hostnames (spine cert upload). Package platform checks it before it is
// stored; the node serves it instead of a managed certificate.
type UploadedCert struct {
	Hostname  string
	ProjectID string
	// Chain is the PEM chain as served: the leaf first, then intermediates.
	Chain []byte
	// Key is the leaf's private key (PEM). Secret: never shown, logged or
	// returned by the API.
	Key       []byte `json:"-"`
	Issuer    string // the leaf issuer's common name (or its whole name)
	NotBefore time.Time
	NotAfter  time.Time
	// SHA256 is the hex SHA-256 of the leaf (DER).
	SHA256     string
	UploadedAt time.Time
}

// uploadedColumns are UploadedCert's columns, without the key.
const uploadedColumns = `hostname, project_id, chain_pem, issuer, not_before, not_after, sha256, uploaded_at`

// PutUploadedCert stores c, replacing an uploaded certificate of the same
// hostname (of any project: the caller's project now holds the verified
// domain). domain is the verified domain c.Hostname is under; the write
// checks in its transaction that c.ProjectID holds it, verified, and
// returns ErrNotFound otherwise. It is a change: every node learns it.
func (db *DB) PutUploadedCert(ctx context.Context, domain string, c UploadedCert) error {
	key, err := db.seal(uploadedKeyName(c.Hostname, c.SHA256), c.Key)
	if err != nil {
		return err
	}
	return db.write(ctx, "storing uploaded certificate", true, func(tx *sql.Tx) error {
		var owner, status string
		err := tx.QueryRowContext(ctx, `SELECT project_id, status FROM domains WHERE name = $1`, domain).Scan(&owner, &status)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (owner != c.ProjectID || status != DomainVerified)) {
			return notFound("verified domain %q not found", domain)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO uploaded_certs (`+uploadedColumns+`, key_pem) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (hostname) DO UPDATE SET project_id = excluded.project_id, chain_pem = excluded.chain_pem,
				issuer = excluded.issuer, not_before = excluded.not_before, not_after = excluded.not_after,
				sha256 = excluded.sha256, uploaded_at = excluded.uploaded_at, key_pem = excluded.key_pem`,
			c.Hostname, c.ProjectID, c.Chain, c.Issuer, toNanos(c.NotBefore), toNanos(c.NotAfter), c.SHA256,
			toNanos(orNow(c.UploadedAt)), key)
		return err
	})
}

// ListUploadedCerts returns the uploaded certificates of a project, or of
// every project if projectID is "", sorted by hostname. withKeys also reads
// their private keys (the node, to serve them); without it Key is nil.
func (db *DB) ListUploadedCerts(ctx context.Context, projectID string, withKeys bool) ([]UploadedCert, error) {
	cols := uploadedColumns
	if withKeys {
		cols += `, key_pem`
	}
	rows, err := db.r.QueryContext(ctx, `SELECT `+cols+` FROM uploaded_certs WHERE project_id = $1 OR $1 = '' ORDER BY hostname`, projectID)
	if err != nil {
		return nil, db.wrap("listing uploaded certificates", err)
	}
	defer rows.Close()
	var out []UploadedCert
	for rows.Next() {
		var (
			c          UploadedCert
			nb, na, up int64
		)
		dest := []any{&c.Hostname, &c.ProjectID, &c.Chain, &c.Issuer, &nb, &na, &c.SHA256, &up}
		if withKeys {
			dest = append(dest, &c.Key)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, db.wrap("listing uploaded certificates", err)
		}
		c.NotBefore, c.NotAfter, c.UploadedAt = fromNanos(nb), fromNanos(na), fromNanos(up)
		if withKeys {
			if c.Key, err = db.open(uploadedKeyName(c.Hostname, c.SHA256), c.Key); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing uploaded certificates", err)
	}
	return out, nil
}

// DeleteUploadedCert removes the project's uploaded certificate of
// hostname; ErrNotFound if it has none. It is a change: every node learns it.
func (db *DB) DeleteUploadedCert(ctx context.Context, projectID, hostname string) error {
	return db.write(ctx, "removing uploaded certificate", true, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM uploaded_certs WHERE project_id = $1 AND hostname = $2`, projectID, hostname)
		return mustAffect(res, err, func() error { return notFound("no uploaded certificate for %q", hostname) })
	})
}
