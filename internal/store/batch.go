package store

// Batched writes: many services, or many keys and certificate statuses, in
// one transaction of multi-row INSERTs. They exist for bulk loads (bench/seed
// fills a store with a million hostnames): one transaction per row would
// spend its time in commits, one revision bump and change notice per
// service would wake every node a million times.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// maxBatchParams bounds the parameters of one multi-row statement, well
// under SQLite's 32,766 and PostgreSQL's 65,535.
const maxBatchParams = 6000

// CreateServices stores ss and their hostnames in one transaction, all or
// nothing, with the checks of CreateService: each service's domain must
// belong to its project (ErrNotFound otherwise), the projects' quotas hold
// for the whole batch (*QuotaError), and no service name or hostname may be
// taken already or listed twice (ErrConflict). The revision is bumped once
// and watchers are told once, at the commit; a service.created event is
// recorded for each service, as CreateService does. CreatedAt and UpdatedAt
// default to now.
func (db *DB) CreateServices(ctx context.Context, ss []Service) error {
	if len(ss) == 0 {
		return nil
	}
	ss = append([]Service(nil), ss...)
	var all []string
	names := make(map[[2]string]bool, len(ss))
	ups := make([]string, len(ss))
	for i := range ss {
		s := &ss[i]
		var err error
		if ups[i], err = encodeUpstreams(s.Upstreams); err != nil {
			return err
		}
		k := [2]string{s.ProjectID, s.Name}
		if names[k] {
			return conflict("service %q is listed twice", s.Name)
		}
		names[k] = true
		all = append(all, s.Hostnames...)
		s.CreatedAt = orNow(s.CreatedAt)
		if s.UpdatedAt.IsZero() {
			s.UpdatedAt = s.CreatedAt
		}
	}
	if err := checkHostnames(all); err != nil {
		return err
	}
	return db.writeNotes(ctx, "creating services", true, func(tx *sql.Tx, notes *txNotes) error {
		owners := map[string]string{}
		grow := map[string][2]int{} // by project: services, hostnames
		for _, s := range ss {
			owner, ok := owners[s.Domain]
			if !ok {
				err := tx.QueryRowContext(ctx, `SELECT project_id FROM domains WHERE name = $1`, s.Domain).Scan(&owner)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
				owners[s.Domain] = owner
			}
			if owner != s.ProjectID {
				return notFound("domain %q not found", s.Domain)
			}
			g := grow[s.ProjectID]
			grow[s.ProjectID] = [2]int{g[0] + 1, g[1] + len(s.Hostnames)}
		}
		for pid, g := range grow {
			if err := db.checkQuota(ctx, tx, pid, quotaServices, g[0]); err != nil {
				return err
			}
			if err := db.checkQuota(ctx, tx, pid, quotaHostnames, g[1]); err != nil {
				return err
			}
		}
		err := db.insertRows(ctx, tx, `INSERT INTO services (`+serviceColumns+`)`, "", 12, len(ss), func(i int, args []any) []any {
			s := ss[i]
			return append(args, s.ID, s.ProjectID, s.Name, s.Domain, ups[i], s.HSTSMaxAge, s.HealthPath, int64(s.HealthInterval),
				toNanos(s.CreatedAt), toNanos(s.UpdatedAt), s.ClientCA, s.ClientAuth)
		})
		switch {
		case db.isUnique(err):
			return conflict("a service of the batch (%q to %q) already exists", ss[0].Name, ss[len(ss)-1].Name)
		case db.isForeignKey(err):
			return notFound("a domain of the batch was deleted")
		case err != nil:
			return err
		}
		type hostRow struct {
			host, service string
			pos           int
		}
		rows := make([]hostRow, 0, len(all))
		for _, s := range ss {
			for p, h := range s.Hostnames {
				rows = append(rows, hostRow{h, s.ID, p})
			}
		}
		err = db.insertRows(ctx, tx, `INSERT INTO service_hostnames (hostname, service_id, position)`, "", 3, len(rows), func(i int, args []any) []any {
			return append(args, rows[i].host, rows[i].service, rows[i].pos)
		})
		if db.isUnique(err) {
			return conflict("a hostname of the batch (%q to %q) is already taken", ss[0].Hostnames[0], ss[len(ss)-1].Hostnames[0])
		}
		if err != nil {
			return err
		}
		es := make([]Event, len(ss))
		for i, s := range ss {
			es[i] = Event{ProjectID: s.ProjectID, Type: EventServiceCreated, Subject: s.Name, Time: s.CreatedAt,
				Data: eventData(map[string]any{"service": s.Name, "domain": s.Domain, "hostnames": s.Hostnames})}
		}
		return db.appendEvents(ctx, tx, notes, es)
	})
}

// appendEvents is appendEvent for many events without a Key: each
// project's IDs are taken in one step and its events inserted in
// multi-row statements; deliveries are queued one event at a time, only
// for a project with a webhook.
func (db *DB) appendEvents(ctx context.Context, tx *sql.Tx, notes *txNotes, es []Event) error {
	byProject := map[string][]int{}
	var order []string
	for i := range es {
		e := &es[i]
		if e.ProjectID == "" || e.Type == "" || e.Key != "" {
			return errors.New("store: a batched event needs a project and a type, and no key")
		}
		if len(e.Data) == 0 {
			e.Data = json.RawMessage("{}")
		}
		if len(e.Data) > MaxEventData || !json.Valid(e.Data) || e.Data[0] != '{' {
			return fmt.Errorf("store: event data must be a JSON object of at most %d bytes", MaxEventData)
		}
		e.Time = orNow(e.Time).UTC()
		if _, ok := byProject[e.ProjectID]; !ok {
			order = append(order, e.ProjectID)
		}
		byProject[e.ProjectID] = append(byProject[e.ProjectID], i)
	}
	for _, pid := range order {
		idx := byProject[pid]
		_, err := tx.ExecContext(ctx, `INSERT INTO event_seq (project_id, last) VALUES ($1, 0)
			ON CONFLICT (project_id) DO UPDATE SET last = event_seq.last`, pid)
		if db.isForeignKey(err) {
			return notFound("project %q not found", pid)
		}
		if err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRowContext(ctx, `UPDATE event_seq SET last = last + $2 WHERE project_id = $1 RETURNING last`,
			pid, len(idx)).Scan(&last); err != nil {
			return err
		}
		for k, i := range idx {
			es[i].ID = last - int64(len(idx)-1-k)
		}
		if err := db.insertRows(ctx, tx, `INSERT INTO events (project_id, id, type, subject, data, created_at, dedup_key)`, "", 7, len(idx),
			func(k int, args []any) []any {
				e := es[idx[k]]
				return append(args, e.ProjectID, e.ID, e.Type, e.Subject, string(e.Data), toNanos(e.Time), nil)
			}); err != nil {
			return err
		}
		notes.events = true
		var hooks int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM webhooks WHERE project_id = $1 AND disabled_at = 0`, pid).Scan(&hooks); err != nil {
			return err
		}
		for _, i := range idx {
			if hooks == 0 {
				break
			}
			if err := db.queueDeliveries(ctx, tx, es[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// PutKeysAndCertStatus stores every key of kvs (sealing the secret ones, as
// PutKey does) and every status of statuses (as PutCertStatus does), each
// replacing what was there, in one transaction: all or nothing. A key or a
// hostname listed twice keeps its last value.
func (db *DB) PutKeysAndCertStatus(ctx context.Context, kvs []KeyValue, statuses []CertStatus) error {
	kvs = lastOf(kvs, func(kv KeyValue) string { return kv.Key })
	statuses = lastOf(statuses, func(s CertStatus) string { return s.Hostname })
	values := make([][]byte, len(kvs))
	for i, kv := range kvs {
		if err := checkKey(kv.Key); err != nil {
			return err
		}
		v := kv.Value
		if v == nil {
			v = []byte{}
		}
		if SecretKey(kv.Key) {
			var err error
			if v, err = db.seal(kv.Key, v); err != nil {
				return err
			}
		}
		values[i] = v
	}
	return db.write(ctx, "storing keys", false, func(tx *sql.Tx) error {
		now := time.Now().UnixNano()
		err := db.insertRows(ctx, tx, `INSERT INTO kv (key, value, modified)`,
			` ON CONFLICT (key) DO UPDATE SET value = excluded.value, modified = excluded.modified`, 3, len(kvs),
			func(i int, args []any) []any { return append(args, kvs[i].Key, values[i], now) })
		if err != nil {
			return err
		}
		return db.insertRows(ctx, tx, `INSERT INTO cert_status (`+certStatusColumns+`)`,
			` ON CONFLICT (hostname) DO UPDATE SET status = excluded.status, issuer = excluded.issuer,
				not_before = excluded.not_before, not_after = excluded.not_after,
				error = excluded.error, updated_at = excluded.updated_at`, 7, len(statuses),
			func(i int, args []any) []any {
				s := statuses[i]
				return append(args, s.Hostname, s.Status, s.Issuer, toNanos(s.NotBefore), toNanos(s.NotAfter), s.Error,
					toNanos(orNow(s.UpdatedAt)))
			})
	})
}

// insertRows runs head VALUES (...), (...) tail for n rows of cols columns
// each, as few statements as maxBatchParams allows; row appends the
// arguments of row i to args and returns it. On SQLite the parameters are
// anonymous (?): it looks "$N" up by name in a list, which makes a
// statement of thousands of them cost the square of their number.
func (db *DB) insertRows(ctx context.Context, tx *sql.Tx, head, tail string, cols, n int, row func(i int, args []any) []any) error {
	per := max(1, maxBatchParams/cols)
	var q strings.Builder
	args := make([]any, 0, min(n, per)*cols)
	for lo := 0; lo < n; lo += per {
		hi := min(n, lo+per)
		q.Reset()
		args = args[:0]
		q.WriteString(head)
		q.WriteString(" VALUES ")
		for i := lo; i < hi; i++ {
			if i > lo {
				q.WriteString(", ")
			}
			q.WriteByte('(')
			for c := range cols {
				if c > 0 {
					q.WriteString(", ")
				}
				if db.d.name == "sqlite" {
					q.WriteByte('?')
				} else {
					fmt.Fprintf(&q, "$%d", len(args)+c+1)
				}
			}
			q.WriteByte(')')
			args = row(i, args)
		}
		q.WriteString(tail)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// lastOf returns xs without the items whose key a later item has, in the
// order of their last occurrence; a multi-row upsert on PostgreSQL cannot
// touch one row twice.
func lastOf[T any](xs []T, key func(T) string) []T {
	last := make(map[string]int, len(xs))
	for i, x := range xs {
		last[key(x)] = i
	}
	if len(last) == len(xs) {
		return xs
	}
	out := make([]T, 0, len(last))
	for i, x := range xs {
		if last[key(x)] == i {
			out = append(out, x)
		}
	}
	return out
}
