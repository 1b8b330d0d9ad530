package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"
)

// What a node that serves before its first full read (syncer's warm-up)
// reads of one hostname: each an indexed look-up on both back ends
// (service_hostnames' and uploaded_certs' primary keys on hostname, the
// services' on id, service_hostnames_listing for the service's other
// names), never a scan.

// ServiceByHostname returns the service that holds hostname (in normal
// form), with all its hostnames, or ErrNotFound.
func (db *DB) ServiceByHostname(ctx context.Context, hostname string) (Service, error) {
	ss, err := db.queryFewServices(ctx, true, serviceByHostnameWhere, hostname)
	if err != nil {
		return Service{}, db.wrap("reading service by hostname", err)
	}
	if len(ss) == 0 {
		return Service{}, notFound("no service holds %q", hostname)
	}
	return ss[0], nil
}

// serviceByHostnameWhere selects the service holding hostname $1.
const serviceByHostnameWhere = `services.id = (SELECT service_id FROM service_hostnames WHERE hostname = $1)`

// uploadedForQuery reads the uploaded certificate of hostname $1 with its key.
const uploadedForQuery = `SELECT ` + uploadedColumns + `, key_pem FROM uploaded_certs WHERE hostname = $1`

// UploadedCertFor returns the uploaded certificate of hostname, with its
// private key, or ErrNotFound.
func (db *DB) UploadedCertFor(ctx context.Context, hostname string) (UploadedCert, error) {
	return db.scanUploadedFor(hostname, db.queryRowRead(ctx, uploadedForQuery, hostname))
}

// scanUploadedFor reads the row of uploadedForQuery for hostname (a
// database/sql row or pgx's).
func (db *DB) scanUploadedFor(hostname string, row interface{ Scan(...any) error }) (UploadedCert, error) {
	var (
		c          UploadedCert
		nb, na, up int64
	)
	err := row.Scan(&c.Hostname, &c.ProjectID, &c.Chain, &c.Issuer, &nb, &na, &c.SHA256, &up, &c.Key)
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		return UploadedCert{}, notFound("no uploaded certificate for %q", hostname)
	}
	if err != nil {
		return UploadedCert{}, db.wrap("reading uploaded certificate", err)
	}
	c.NotBefore, c.NotAfter, c.UploadedAt = fromNanos(nb), fromNanos(na), fromNanos(up)
	if c.Key, err = db.open(uploadedKeyName(c.Hostname, c.SHA256), c.Key); err != nil {
		return UploadedCert{}, err
	}
	return c, nil
}

// HostnamesAtLeast reports whether the store holds at least n hostnames,
// counting no further than n (a read of at most n index entries, whatever
// the store holds).
func (db *DB) HostnamesAtLeast(ctx context.Context, n int) (bool, error) {
	if n <= 0 {
		return true, nil
	}
	var got int
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM service_hostnames LIMIT $1) AS h`, n).Scan(&got)
	if err != nil {
		return false, db.wrap("counting hostnames", err)
	}
	return got >= n, nil
}
