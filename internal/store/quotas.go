package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrQuota means a write would take a project past one of its limits. The
// error is a *QuotaError, which names the limit and the current use.
var ErrQuota = errors.New("quota exceeded")

// MaxQuota bounds each limit an operator may set (a Quota's or a
// QuotaOverride's field); 0 is no limit.
const MaxQuota = 1_000_000

// CheckQuota returns nil for a limit an operator may set (0, no limit, to
// MaxQuota), else an error saying what to give.
func CheckQuota(v int) error {
	if v < 0 || v > MaxQuota {
		return errors.New("give a limit from 1 to 1000000, or 0 for no limit")
	}
	return nil
}

// Fields returns q's limits with their field names, for the checks that
// name the one refused.
func (q Quota) Fields() []QuotaField {
	return []QuotaField{{"Domains", q.Domains}, {"Services", q.Services}, {"Hostnames", q.Hostnames}, {"OrdersPerHour", q.OrdersPerHour}}
}

// QuotaField is one limit of a Quota and its field's name.
type QuotaField struct {
	Name  string
	Limit int
}

// Quota is what one project may hold. 0 means no limit.
type Quota struct {
	Domains       int
	Services      int
	Hostnames     int // over all the project's services
	OrdersPerHour int // new certificate orders placed with ACME CAs in the last hour
}

// QuotaOverride is a project's own limits; a nil field follows the
// operator's default (SetDefaultQuota). 0 is no limit.
type QuotaOverride struct {
	Domains, Services, Hostnames, OrdersPerHour *int
}

// QuotaUsage is what a project holds now.
type QuotaUsage struct {
	Domains, Services, Hostnames, OrdersLastHour int
}

// Names of the limits, as QuotaError.Limit gives them.
const (
	quotaDomains       = "domains"
	quotaServices      = "services"
	quotaHostnames     = "hostnames"
	quotaOrdersPerHour = "certificate orders per hour"
)

// QuotaError is the error of a write refused by a limit.
type QuotaError struct {
	Limit string // "domains", "services", "hostnames" or "certificate orders per hour"
	Max   int    // the limit
	Used  int    // what the project holds (or, for orders, placed in the last hour)
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("quota exceeded: the project's limit of %s is %d and it has %d", e.Limit, e.Max, e.Used)
}

func (e *QuotaError) Unwrap() error { return ErrQuota }

// SetDefaultQuota sets the limits of every project without its own
// (the operator's flags of spine serve). It is safe to call at any time;
// writes that start afterwards use it. The default is no limit at all.
func (db *DB) SetDefaultQuota(q Quota) { db.quota.Store(&q) }

// DefaultQuota returns the limits SetDefaultQuota set.
func (db *DB) DefaultQuota() Quota {
	if q := db.quota.Load(); q != nil {
		return *q
	}
	return Quota{}
}

// SetQuotaOverride sets a project's own limits, replacing the ones it had.
// It returns ErrNotFound if the project does not exist.
func (db *DB) SetQuotaOverride(ctx context.Context, projectID string, o QuotaOverride) error {
	v := func(p *int) int {
		if p == nil {
			return -1
		}
		return max(*p, 0)
	}
	return db.write(ctx, "setting quota", false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO project_quotas (project_id, domains, services, hostnames, orders_per_hour)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id) DO UPDATE SET domains = excluded.domains,
			services = excluded.services, hostnames = excluded.hostnames, orders_per_hour = excluded.orders_per_hour`,
			projectID, v(o.Domains), v(o.Services), v(o.Hostnames), v(o.OrdersPerHour))
		if db.isForeignKey(err) {
			return notFound("project %q not found", projectID)
		}
		return err
	})
}

// GetQuotaOverride returns a project's own limits (all nil when it has none).
func (db *DB) GetQuotaOverride(ctx context.Context, projectID string) (QuotaOverride, error) {
	o, err := readOverride(ctx, db.r, projectID)
	if err != nil {
		return QuotaOverride{}, db.wrap("reading quota", err)
	}
	return o, nil
}

// ProjectQuota returns a project's limits in force (its own, else the
// default) and what it holds now, measured at now for the hourly orders.
func (db *DB) ProjectQuota(ctx context.Context, projectID string, now time.Time) (Quota, QuotaUsage, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return Quota{}, QuotaUsage{}, db.wrap("reading quota", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	q, err := db.effectiveQuota(ctx, tx, projectID)
	if err != nil {
		return Quota{}, QuotaUsage{}, db.wrap("reading quota", err)
	}
	var u QuotaUsage
	for _, c := range []struct {
		limit string
		n     *int
	}{{quotaDomains, &u.Domains}, {quotaServices, &u.Services}, {quotaHostnames, &u.Hostnames}} {
		if *c.n, err = countUse(ctx, tx, projectID, c.limit); err != nil {
			return Quota{}, QuotaUsage{}, db.wrap("reading quota", err)
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM ca_orders WHERE project_id = $1 AND placed_at > $2`,
		projectID, toNanos(now.Add(-time.Hour))).Scan(&u.OrdersLastHour); err != nil {
		return Quota{}, QuotaUsage{}, db.wrap("reading quota", err)
	}
	return q, u, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readOverride(ctx context.Context, q querier, projectID string) (QuotaOverride, error) {
	var d, s, h, o int
	err := q.QueryRowContext(ctx, `SELECT domains, services, hostnames, orders_per_hour FROM project_quotas WHERE project_id = $1`,
		projectID).Scan(&d, &s, &h, &o)
	if errors.Is(err, sql.ErrNoRows) {
		return QuotaOverride{}, nil
	}
	if err != nil {
		return QuotaOverride{}, err
	}
	p := func(v int) *int {
		if v < 0 {
			return nil
		}
		return &v
	}
	return QuotaOverride{Domains: p(d), Services: p(s), Hostnames: p(h), OrdersPerHour: p(o)}, nil
}

// effectiveQuota is the project's override over the default.
func (db *DB) effectiveQuota(ctx context.Context, q querier, projectID string) (Quota, error) {
	eff := db.DefaultQuota()
	o, err := readOverride(ctx, q, projectID)
	if err != nil {
		return Quota{}, err
	}
	for _, f := range []struct {
		o *int
		e *int
	}{{o.Domains, &eff.Domains}, {o.Services, &eff.Services}, {o.Hostnames, &eff.Hostnames}, {o.OrdersPerHour, &eff.OrdersPerHour}} {
		if f.o != nil {
			*f.e = *f.o
		}
	}
	return eff, nil
}

// checkQuota refuses, with a *QuotaError, a write in tx that adds grow
// objects of the kind limit to the project when that would take it past
// its limit. Shrinking (grow <= 0) is always allowed, even above a limit
// lowered since. It runs in the write's transaction: on PostgreSQL every
// write that calls it is a change, whose revision row lock serialises it
// with the others, so two concurrent creates cannot both pass.
func (db *DB) checkQuota(ctx context.Context, tx *sql.Tx, projectID, limit string, grow int) error {
	if grow <= 0 {
		return nil
	}
	q, err := db.effectiveQuota(ctx, tx, projectID)
	if err != nil {
		return err
	}
	max := map[string]int{quotaDomains: q.Domains, quotaServices: q.Services, quotaHostnames: q.Hostnames}[limit]
	if max == 0 {
		return nil
	}
	used, err := countUse(ctx, tx, projectID, limit)
	if err != nil {
		return err
	}
	if used+grow > max {
		return &QuotaError{Limit: limit, Max: max, Used: used}
	}
	return nil
}

func countUse(ctx context.Context, q querier, projectID, limit string) (int, error) {
	query := map[string]string{
		quotaDomains:  `SELECT COUNT(*) FROM domains WHERE project_id = $1`,
		quotaServices: `SELECT COUNT(*) FROM services WHERE project_id = $1`,
		quotaHostnames: `SELECT COUNT(*) FROM service_hostnames h JOIN services s ON s.id = h.service_id
			WHERE s.project_id = $1`,
	}[limit]
	var n int
	err := q.QueryRowContext(ctx, query, projectID).Scan(&n)
	return n, err
}
