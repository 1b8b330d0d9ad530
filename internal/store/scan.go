package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spine-platform/spine/internal/sched"
)

// ScanServices calls fn with every service, its hostnames in order, one at
// a time and sorted by ID, from one snapshot of the store. The Service is
// fn's to read until it returns, not to keep: the next service reuses it
// (its Hostnames and Upstreams slices included). An error from fn stops
// the scan and is returned.
//
// It is for a pass over every service that keeps nothing of them (a
// node's periodic check that what it serves is what the store holds,
// serving.ScanSum): ListServices made every service at once, 214 MB of
// them and more than a GiB at its peak at a million.
func (db *DB) ScanServices(ctx context.Context, fn func(*Service) error) error {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return db.wrap("reading every service", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	rows, err := tx.QueryContext(ctx, `SELECT `+serviceColumns+`, h.hostname FROM services
		LEFT JOIN service_hostnames h ON h.service_id = services.id
		ORDER BY services.id, h.position`)
	if err != nil {
		return db.wrap("reading every service", err)
	}
	defer rows.Close()
	var (
		s, next          Service
		have             bool
		ups, lastUps     string
		interval         int64
		created, updated int64
		host             sql.NullString
		y                sched.Yielder
	)
	for n := 0; rows.Next(); n++ {
		yieldEvery(&y, n)
		if err := rows.Scan(&next.ID, &next.ProjectID, &next.Name, &next.Domain, &ups, &next.HSTSMaxAge, &next.HealthPath, &interval,
			&created, &updated, &next.ClientCA, &next.ClientAuth, &host); err != nil {
			return db.wrap("reading every service", err)
		}
		if have && next.ID == s.ID { // another hostname of the same service
			if host.Valid {
				s.Hostnames = append(s.Hostnames, host.String)
			}
			continue
		}
		if have {
			if err := fn(&s); err != nil {
				return err
			}
		}
		hosts, list := s.Hostnames[:0], s.Upstreams
		s, have = next, true
		s.Hostnames = hosts
		if host.Valid {
			s.Hostnames = append(s.Hostnames, host.String)
		}
		// Most services share their upstreams' JSON with the one before
		// (one upstream for many, or a few): decoded again only when it
		// differs.
		if ups != lastUps || list == nil {
			list = list[:0]
			if err := json.Unmarshal([]byte(ups), &list); err != nil {
				return fmt.Errorf("service %q: upstreams: %w", s.Name, err)
			}
			lastUps = ups
		}
		s.Upstreams = list
		s.HealthInterval = time.Duration(interval)
		s.CreatedAt, s.UpdatedAt = fromNanos(created), fromNanos(updated)
	}
	if err := rows.Err(); err != nil {
		return db.wrap("reading every service", err)
	}
	if have {
		return fn(&s)
	}
	return nil
}
