package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"
)

// CABudget is what an ACME CA allows one account, which every tenant of
// Spine shares. A zero count is no limit.
type CABudget struct {
	Orders       int           // new orders per account ...
	OrdersWindow time.Duration // ... in this window (Let's Encrypt: 300 per 3 hours)
	// DomainCerts bounds certificates per registered domain (public suffix
	// + 1) in DomainCertsWindow (Let's Encrypt: 50 per week).
	DomainCerts       int
	DomainCertsWindow time.Duration
	// FailedValidations bounds failed validations per hostname in
	// FailedValidationsWindow (Let's Encrypt: 5 per hour).
	FailedValidations       int
	FailedValidationsWindow time.Duration
}

// OrderRequest asks ReserveOrder for room for one order.
type OrderRequest struct {
	CA               string // names the CA and account (the issuer's key)
	Hostname         string // the name ordered ("*.example.com" for a wildcard)
	RegisteredDomain string // public suffix + 1 of Hostname
	Budget           CABudget
	Now              time.Time
}

// Outcomes of an order (FinishOrder).
const (
	OrderPlaced  = "placed"  // reserved, no answer yet: counts as a certificate
	OrderIssued  = "issued"  // counts as a certificate of its registered domain
	OrderFailed  = "failed"  // counts as an order only
	OrderInvalid = "invalid" // a failed validation: counts as an order and a failure of its hostname
)

// BudgetWait is ReserveOrder's refusal: the order must wait until Until
// for the reason given. It is an error; test with errors.As.
type BudgetWait struct {
	Until  time.Time
	Reason string // says which limit, for a user
}

func (w *BudgetWait) Error() string {
	return fmt.Sprintf("%s; it will be tried at %s", w.Reason, w.Until.UTC().Format(time.RFC3339))
}

// ReserveOrder records an order about to be placed with req.CA, or refuses
// with a *BudgetWait when it would take the account, the registered
// domain, the hostname or its project past a limit:
//
//   - the CA's new orders of the account in its window;
//   - certificates of the registered domain in its window, and the
//     project's share of them: the limit divided by the number of
//     projects holding domains under the registered domain, at least 1,
//     so that one tenant cannot spend another's budget;
//   - failed validations of the hostname in its window;
//   - the project's certificate orders per hour (its quota).
//
// The checks and the record are one transaction under the CA's row lock,
// so the nodes of a fleet share the counts and two of them cannot both
// take the last slot. It returns the order's ID for FinishOrder.
func (db *DB) ReserveOrder(ctx context.Context, req OrderRequest) (string, error) {
	id := newOrderID()
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	b := req.Budget
	err := db.write(ctx, "reserving a certificate order", false, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO ca_budget (ca, orders) VALUES ($1, 1)
			ON CONFLICT (ca) DO UPDATE SET orders = ca_budget.orders + 1`, req.CA); err != nil {
			return err
		}
		keep := max(b.OrdersWindow, b.DomainCertsWindow, b.FailedValidationsWindow, time.Hour)
		if _, err := tx.ExecContext(ctx, `DELETE FROM ca_orders WHERE ca = $1 AND placed_at < $2`,
			req.CA, toNanos(now.Add(-keep))); err != nil {
			return err
		}
		project, err := projectOfName(ctx, tx, req.Hostname)
		if err != nil && !isNotFound(err) {
			return err
		}
		checks := []struct {
			limit  int
			window time.Duration
			where  string
			args   []any
			reason string
		}{
			{b.Orders, b.OrdersWindow, `ca = $1`, []any{req.CA},
				fmt.Sprintf("the certificate authority's limit of %d new orders per %s for Spine's account is reached", b.Orders, b.OrdersWindow)},
			{b.DomainCerts, b.DomainCertsWindow, `ca = $1 AND registered_domain = $2 AND outcome IN ('placed', 'issued')`,
				[]any{req.CA, req.RegisteredDomain},
				fmt.Sprintf("the certificate authority's limit of %d certificates per %s for %s is reached", b.DomainCerts, b.DomainCertsWindow, req.RegisteredDomain)},
			{b.FailedValidations, b.FailedValidationsWindow, `ca = $1 AND hostname = $2 AND outcome = 'invalid'`,
				[]any{req.CA, req.Hostname},
				fmt.Sprintf("%s failed validation %d times in %s, the certificate authority's limit", req.Hostname, b.FailedValidations, b.FailedValidationsWindow)},
		}
		if project != "" && b.DomainCerts > 0 {
			var holders int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(DISTINCT project_id) FROM domains WHERE name = $1 OR name LIKE $2 ESCAPE '\'`,
				req.RegisteredDomain, "%."+likeEscape(req.RegisteredDomain)).Scan(&holders); err != nil {
				return err
			}
			if holders > 1 {
				share := max(1, b.DomainCerts/holders)
				checks = append(checks, struct {
					limit  int
					window time.Duration
					where  string
					args   []any
					reason string
				}{share, b.DomainCertsWindow, `ca = $1 AND registered_domain = $2 AND project_id = $3 AND outcome IN ('placed', 'issued')`,
					[]any{req.CA, req.RegisteredDomain, project},
					fmt.Sprintf("this project's share (%d of %d, shared by %d projects) of the certificate authority's weekly certificates for %s is used", share, b.DomainCerts, holders, req.RegisteredDomain)})
			}
		}
		if project != "" {
			q, err := db.effectiveQuota(ctx, tx, project)
			if err != nil {
				return err
			}
			if q.OrdersPerHour > 0 {
				checks = append(checks, struct {
					limit  int
					window time.Duration
					where  string
					args   []any
					reason string
				}{q.OrdersPerHour, time.Hour, `project_id = $1`, []any{project},
					fmt.Sprintf("the project's quota of %d certificate orders per hour is used", q.OrdersPerHour)})
			}
		}
		for _, c := range checks {
			if c.limit <= 0 || c.window <= 0 {
				continue
			}
			until, err := windowFull(ctx, tx, c.where, c.args, c.limit, c.window, now)
			if err != nil {
				return err
			}
			if !until.IsZero() {
				return &BudgetWait{Until: until, Reason: c.reason}
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO ca_orders (id, ca, project_id, hostname, registered_domain, placed_at, outcome)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, req.CA, project, req.Hostname, req.RegisteredDomain, toNanos(now), OrderPlaced)
		return err
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// windowFull returns when the rows matching where, placed in the window
// before now, fall below limit again, or the zero time if they are below
// it now. where's placeholders are $1..$len(args).
func windowFull(ctx context.Context, tx *sql.Tx, where string, args []any, limit int, window time.Duration, now time.Time) (time.Time, error) {
	since := len(args) + 1
	cond := fmt.Sprintf(`%s AND placed_at > $%d`, where, since)
	args = append(args, toNanos(now.Add(-window)))
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM ca_orders WHERE `+cond, args...).Scan(&n); err != nil {
		return time.Time{}, err
	}
	if n < limit {
		return time.Time{}, nil
	}
	// The (n-limit+1)-th oldest leaving the window makes room for one.
	var placed int64
	args = append(args, n-limit)
	if err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT placed_at FROM ca_orders WHERE %s ORDER BY placed_at LIMIT 1 OFFSET $%d`, cond, since+1),
		args...).Scan(&placed); err != nil {
		return time.Time{}, err
	}
	return fromNanos(placed).Add(window), nil
}

// FinishOrder records the outcome of an order ReserveOrder allowed. An
// unknown ID (pruned meanwhile) is not an error.
func (db *DB) FinishOrder(ctx context.Context, id, outcome string) error {
	return db.write(ctx, "recording a certificate order", false, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE ca_orders SET outcome = $2 WHERE id = $1`, id, outcome)
		return err
	})
}

func newOrderID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "ord_" + hex.EncodeToString(b[:])
}

func isNotFound(err error) bool {
	ke, ok := err.(*kindError)
	return ok && ke.kind == ErrNotFound
}
