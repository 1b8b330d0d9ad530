package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// WarmRead is what a node serving before its first full read (syncer's
// warm-up) reads of one hostname, all at once: ReadWarm.
type WarmRead struct {
	// Service holds the hostname; ServiceErr is ErrNotFound when none
	// does (then the rest is read all the same).
	Service    Service
	ServiceErr error
	// Domains are those named (the domains at and above the hostname),
	// sorted by name, as DomainsNamed.
	Domains []Domain
	// Uploaded is the hostname's uploaded certificate with its key;
	// UploadedErr is ErrNotFound when there is none.
	Uploaded    UploadedCert
	UploadedErr error
	// Keys are the keys under the prefixes asked for, as
	// GetKeysWithPrefix with the limit asked for.
	Keys []KeyValue
}

// ReadWarm reads host's service, the domains named domains (the names
// above one hostname; at most maxNamesPerRead), host's uploaded
// certificate and the keys under keyPrefixes (GetKeysWithPrefix's
// arguments; none: no keys read). On PostgreSQL the four queries go
// together on one connection (pgx's pipeline: one round trip, one
// backend), where four reads at once made four round trips on four
// backends, and a warm-up handshake waited for the slowest of the four; on
// SQLite, whose reads are work in this process, one after the other. A
// service or uploaded certificate not found is in the answer; err is any
// other failure.
func (db *DB) ReadWarm(ctx context.Context, host string, domains, keyPrefixes []string, keyLimit int) (WarmRead, error) {
	if len(domains) > maxNamesPerRead {
		return WarmRead{}, fmt.Errorf("store: ReadWarm reads the domains above one hostname: at most %d names", maxNamesPerRead)
	}
	var keyArgs []any
	if len(keyPrefixes) > 0 {
		var err error
		if keyArgs, err = prefixArgs(keyLimit, keyPrefixes); err != nil {
			return WarmRead{}, err
		}
	}
	if db.pgcfg == nil {
		return db.readWarmEach(ctx, host, domains, keyPrefixes, keyLimit)
	}
	var r WarmRead
	err := db.withPgx(ctx, func(c *pgx.Conn) error {
		r = WarmRead{} // f may run again, on another connection
		b := &pgx.Batch{}
		b.Queue(fewServicesQuery(serviceByHostnameWhere), host)
		if len(domains) > 0 {
			q, args := domainsNamedQuery(domains)
			b.Queue(q, args...)
		}
		b.Queue(uploadedForQuery, host)
		if keyArgs != nil {
			b.Queue(prefixQueries[len(keyPrefixes)], keyArgs...)
		}
		br := c.SendBatch(ctx, b)
		if err := db.readWarmBatch(br, &r, host, len(domains) > 0, keyArgs != nil, keyLimit); err != nil {
			br.Close()
			return err
		}
		return br.Close()
	})
	if err != nil {
		return WarmRead{}, db.wrap("reading a hostname for the warm-up", err)
	}
	return r, nil
}

// readWarmBatch reads the answers of ReadWarm's pipeline into r, in the
// order queued.
func (db *DB) readWarmBatch(br pgx.BatchResults, r *WarmRead, host string, domains, keys bool, keyLimit int) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	ss, err := scanFewServices(rows)
	rows.Close()
	if err != nil {
		return err
	}
	if len(ss) == 0 {
		r.ServiceErr = notFound("no service holds %q", host)
	} else {
		r.Service = ss[0]
	}
	if domains {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			d, err := scanDomain(rows)
			if err != nil {
				rows.Close()
				return err
			}
			r.Domains = append(r.Domains, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		sortDomains(r.Domains)
	}
	r.Uploaded, r.UploadedErr = db.scanUploadedFor(host, br.QueryRow())
	if r.UploadedErr != nil && !errors.Is(r.UploadedErr, ErrNotFound) {
		return r.UploadedErr
	}
	if keys {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		r.Keys, err = db.scanPrefixed(rows, keyLimit)
		rows.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// readWarmEach is ReadWarm one read after the other.
func (db *DB) readWarmEach(ctx context.Context, host string, domains, keyPrefixes []string, keyLimit int) (WarmRead, error) {
	var (
		r   WarmRead
		err error
	)
	r.Service, r.ServiceErr = db.ServiceByHostname(ctx, host)
	if r.ServiceErr != nil && !errors.Is(r.ServiceErr, ErrNotFound) {
		return WarmRead{}, r.ServiceErr
	}
	if len(domains) > 0 {
		if r.Domains, err = db.DomainsNamed(ctx, domains); err != nil {
			return WarmRead{}, err
		}
	}
	r.Uploaded, r.UploadedErr = db.UploadedCertFor(ctx, host)
	if r.UploadedErr != nil && !errors.Is(r.UploadedErr, ErrNotFound) {
		return WarmRead{}, r.UploadedErr
	}
	if len(keyPrefixes) > 0 {
		if r.Keys, err = db.GetKeysWithPrefix(ctx, keyLimit, keyPrefixes...); err != nil {
			return WarmRead{}, err
		}
	}
	return r, nil
}
