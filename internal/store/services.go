package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5"

	"github.com/spine-platform/spine/internal/sched"
)

const serviceColumns = `id, project_id, name, domain, upstreams, hsts_max_age, health_path, health_interval, created_at, updated_at, client_ca, client_auth`

// CreateService stores s and its hostnames in one transaction. CreatedAt and
// UpdatedAt default to now. It returns ErrNotFound if the project has no domain
// s.Domain, and ErrConflict naming the service or the hostname that is taken
// (hostnames are unique across all projects).
func (db *DB) CreateService(ctx context.Context, s Service) error {
	ups, err := encodeUpstreams(s.Upstreams)
	if err != nil {
		return err
	}
	if err := checkHostnames(s.Hostnames); err != nil {
		return err
	}
	created := orNow(s.CreatedAt)
	if s.UpdatedAt.IsZero() {
		s.UpdatedAt = created
	}
	return db.writeNotes(ctx, "creating service", true, func(tx *sql.Tx, notes *txNotes) error {
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT project_id FROM domains WHERE name = $1`, s.Domain).Scan(&owner)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && owner != s.ProjectID) {
			return notFound("domain %q not found", s.Domain)
		}
		if err != nil {
			return err
		}
		if err := db.checkQuota(ctx, tx, s.ProjectID, quotaServices, 1); err != nil {
			return err
		}
		if err := db.checkQuota(ctx, tx, s.ProjectID, quotaHostnames, len(s.Hostnames)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO services (`+serviceColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			s.ID, s.ProjectID, s.Name, s.Domain, ups, s.HSTSMaxAge, s.HealthPath, int64(s.HealthInterval), toNanos(created), toNanos(s.UpdatedAt), s.ClientCA, s.ClientAuth)
		switch {
		case db.isUnique(err):
			return conflict("service %q already exists", s.Name)
		case db.isForeignKey(err): // the domain was deleted since the check above
			return notFound("domain %q not found", s.Domain)
		case err != nil:
			return err
		}
		if err := db.insertHostnames(ctx, tx, s.ID, s.Hostnames); err != nil {
			return err
		}
		notes.services = append(notes.services, s.ID)
		_, _, err = db.appendEvent(ctx, tx, notes, Event{ProjectID: s.ProjectID, Type: EventServiceCreated, Subject: s.Name, Time: created,
			Data: eventData(map[string]any{"service": s.Name, "domain": s.Domain, "hostnames": s.Hostnames})})
		return err
	})
}

// GetService returns a project's service, or ErrNotFound.
func (db *DB) GetService(ctx context.Context, projectID, name string) (Service, error) {
	ss, err := db.queryFewServices(ctx, true, `project_id = $1 AND name = $2`, projectID, name)
	if err != nil {
		return Service{}, db.wrap("reading service", err)
	}
	if len(ss) == 0 {
		return Service{}, notFound("service %q not found", name)
	}
	return ss[0], nil
}

// ListServices returns the services of a project, or of all projects if
// projectID is "", sorted by project ID and name.
func (db *DB) ListServices(ctx context.Context, projectID string) ([]Service, error) {
	var (
		ss  []Service
		err error
	)
	if projectID == "" {
		ss, err = db.queryServicesAll(ctx, true, `1 = 1`)
	} else {
		ss, err = db.queryServices(ctx, `project_id = $1`, projectID)
	}
	if err != nil {
		return nil, db.wrap("listing services", err)
	}
	return ss, nil
}

// UpdateService changes the service projectID/name in one transaction: it
// reads the service as stored, with its hostnames, hands it to change, and
// writes back the Hostnames, Upstreams, HSTSMaxAge, HealthPath,
// HealthInterval, ClientCA, ClientAuth and UpdatedAt (now if change leaves it as it was) that
// change leaves; its ID, project, name, domain and creation time stay. As
// every change takes the revision row first, two updates of one service run
// one after the other, each on what the other wrote.
//
// If change returns an error, nothing is written and that error is returned
// as it is. UpdateService returns ErrNotFound if the project has no such
// service and ErrConflict naming a hostname that another service has.
func (db *DB) UpdateService(ctx context.Context, projectID, name string, change func(*Service) error) (Service, error) {
	var out Service
	var changeErr error
	err := db.writeNotes(ctx, "updating service", true, func(tx *sql.Tx, notes *txNotes) error {
		cur, err := db.serviceInTx(ctx, tx, projectID, name)
		if err != nil {
			return err
		}
		next := cur
		next.Hostnames = append([]string(nil), cur.Hostnames...)
		next.Upstreams = append([]string(nil), cur.Upstreams...)
		if err := change(&next); err != nil {
			changeErr = err
			return err
		}
		next.ID, next.ProjectID, next.Name, next.Domain, next.CreatedAt = cur.ID, cur.ProjectID, cur.Name, cur.Domain, cur.CreatedAt
		if next.UpdatedAt.Equal(cur.UpdatedAt) {
			next.UpdatedAt = time.Now()
		}
		ups, err := encodeUpstreams(next.Upstreams)
		if err != nil {
			return err
		}
		if err := checkHostnames(next.Hostnames); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE services SET upstreams = $2, hsts_max_age = $3, health_path = $4,
			health_interval = $5, updated_at = $6, client_ca = $7, client_auth = $8 WHERE id = $1`,
			cur.ID, ups, next.HSTSMaxAge, next.HealthPath, int64(next.HealthInterval), toNanos(next.UpdatedAt), next.ClientCA, next.ClientAuth); err != nil {
			return err
		}
		if !slices.Equal(cur.Hostnames, next.Hostnames) {
			if err := db.checkQuota(ctx, tx, cur.ProjectID, quotaHostnames, len(next.Hostnames)-len(cur.Hostnames)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM service_hostnames WHERE service_id = $1`, cur.ID); err != nil {
				return err
			}
			if err := db.insertHostnames(ctx, tx, cur.ID, next.Hostnames); err != nil {
				return err
			}
		}
		next.UpdatedAt = fromNanos(toNanos(next.UpdatedAt))
		out = next
		notes.services = append(notes.services, cur.ID)
		_, _, err = db.appendEvent(ctx, tx, notes, Event{ProjectID: cur.ProjectID, Type: EventServiceUpdated, Subject: cur.Name, Time: next.UpdatedAt,
			Data: eventData(map[string]any{"service": cur.Name, "hostnames": next.Hostnames, "upstreams": next.Upstreams, "hsts_max_age": next.HSTSMaxAge,
				"health_path": next.HealthPath, "health_interval": next.HealthInterval.String(), "client_auth": next.ClientAuth})})
		return err
	})
	if changeErr != nil {
		return Service{}, changeErr
	}
	if err != nil {
		return Service{}, err
	}
	return out, nil
}

// serviceInTx reads one service and its hostnames inside tx.
func (db *DB) serviceInTx(ctx context.Context, tx *sql.Tx, projectID, name string) (Service, error) {
	var (
		s                Service
		ups              string
		interval         int64
		created, updated int64
	)
	err := tx.QueryRowContext(ctx, `SELECT `+serviceColumns+` FROM services WHERE project_id = $1 AND name = $2`, projectID, name).
		Scan(&s.ID, &s.ProjectID, &s.Name, &s.Domain, &ups, &s.HSTSMaxAge, &s.HealthPath, &interval, &created, &updated, &s.ClientCA, &s.ClientAuth)
	if errors.Is(err, sql.ErrNoRows) {
		return Service{}, notFound("service %q not found", name)
	}
	if err != nil {
		return Service{}, err
	}
	if err := json.Unmarshal([]byte(ups), &s.Upstreams); err != nil {
		return Service{}, fmt.Errorf("service %q: upstreams: %w", s.Name, err)
	}
	s.HealthInterval = time.Duration(interval)
	s.CreatedAt, s.UpdatedAt = fromNanos(created), fromNanos(updated)
	rows, err := tx.QueryContext(ctx, `SELECT hostname FROM service_hostnames WHERE service_id = $1 ORDER BY position`, s.ID)
	if err != nil {
		return Service{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return Service{}, err
		}
		s.Hostnames = append(s.Hostnames, h)
	}
	return s, rows.Err()
}

// DeleteService deletes a project's service and its hostnames, or returns ErrNotFound.
func (db *DB) DeleteService(ctx context.Context, projectID, name string) error {
	return db.writeNotes(ctx, "deleting service", true, func(tx *sql.Tx, notes *txNotes) error {
		var id string
		err := tx.QueryRowContext(ctx, `DELETE FROM services WHERE project_id = $1 AND name = $2 RETURNING id`, projectID, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("service %q not found", name)
		}
		if err != nil {
			return err
		}
		notes.services = append(notes.services, id)
		_, _, err = db.appendEvent(ctx, tx, notes, Event{ProjectID: projectID, Type: EventServiceDeleted, Subject: name,
			Data: eventData(map[string]string{"service": name})})
		return err
	})
}

// insertHostnames inserts one row at a time so that a unique violation names the hostname.
func (db *DB) insertHostnames(ctx context.Context, tx *sql.Tx, serviceID string, hostnames []string) error {
	for i, h := range hostnames {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO service_hostnames (hostname, service_id, position) VALUES ($1, $2, $3)`, h, serviceID, i)
		if db.isUnique(err) {
			return conflict("hostname %q is already taken", h)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// queryServices returns the services matching where (over the services table),
// with their hostnames, sorted by project ID and name.
func (db *DB) queryServices(ctx context.Context, where string, args ...any) ([]Service, error) {
	return db.queryServicesAll(ctx, false, where, args...)
}

// queryFewServices is queryServices for a where that selects a few
// services (one by name or hostname, the changed ones): one statement
// joining their hostnames, so one round trip to PostgreSQL and one
// snapshot on both back ends, where queryServices takes four (begin, the
// services, their hostnames, rollback). A node that serves while its
// first sync runs reads each name asked for this way, and on one
// processor busy with the sync each round trip waits for the runtime to
// poll the network. Every column of where must be the services table's.
// With prepare, where is one of the program's constant texts, and the
// statement is kept prepared (queryRead).
func (db *DB) queryFewServices(ctx context.Context, prepare bool, where string, args ...any) ([]Service, error) {
	q := fewServicesQuery(where)
	query := db.r.QueryContext
	if prepare {
		query = db.queryRead
	}
	rows, err := query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return scanFewServices(rows)
}

// fewServicesQuery is queryFewServices' query for where.
func fewServicesQuery(where string) string {
	return `SELECT ` + serviceColumns + `, h.hostname FROM services
		LEFT JOIN service_hostnames h ON h.service_id = services.id
		WHERE ` + where + ` ORDER BY project_id, name, h.position`
}

// rowScanner is what database/sql's rows and pgx's have in common.
type rowScanner interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanFewServices reads the rows of fewServicesQuery.
func scanFewServices(rows rowScanner) ([]Service, error) {
	var ss []Service
	for rows.Next() {
		var (
			s                Service
			ups              string
			interval         int64
			created, updated int64
			host             sql.NullString
		)
		if err := rows.Scan(&s.ID, &s.ProjectID, &s.Name, &s.Domain, &ups, &s.HSTSMaxAge, &s.HealthPath, &interval, &created, &updated,
			&s.ClientCA, &s.ClientAuth, &host); err != nil {
			return nil, err
		}
		if n := len(ss); n > 0 && ss[n-1].ID == s.ID { // another hostname of the same service
			ss[n-1].Hostnames = append(ss[n-1].Hostnames, host.String)
			continue
		}
		if err := json.Unmarshal([]byte(ups), &s.Upstreams); err != nil {
			return nil, fmt.Errorf("service %q: upstreams: %w", s.Name, err)
		}
		s.HealthInterval = time.Duration(interval)
		s.CreatedAt, s.UpdatedAt = fromNanos(created), fromNanos(updated)
		if host.Valid {
			s.Hostnames = []string{host.String}
		}
		ss = append(ss, s)
	}
	return ss, rows.Err()
}

// queryServicesAll is queryServices; all says where selects every service,
// so that the hostnames are read without a join. On PostgreSQL, a read of
// every service (a node's full sync) goes through pgx itself
// (readAllPostgres).
func (db *DB) queryServicesAll(ctx context.Context, all bool, where string, args ...any) ([]Service, error) {
	if all && db.pgcfg != nil {
		return db.readAllPostgres(ctx)
	}
	// One read transaction, so that services and hostnames come from the same snapshot.
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	var count int
	if all {
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM services WHERE `+where, args...).Scan(&count); err != nil {
			return nil, err
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+serviceColumns+` FROM services WHERE `+where+` ORDER BY project_id, name`, args...)
	if err != nil {
		return nil, err
	}
	// What Scan is given escapes: the variables are made once, not per row.
	var (
		r                              = newServiceRead(count)
		id, project, name, domain, ups sql.RawBytes
		interval, created, updated     int64
	)
	for rows.Next() {
		s := r.next()
		if err := rows.Scan(&id, &project, &name, &domain, &ups, &s.HSTSMaxAge, &s.HealthPath, &interval, &created, &updated, &s.ClientCA, &s.ClientAuth); err != nil {
			rows.Close()
			return nil, err
		}
		if err := r.fill(s, id, project, name, domain, ups, interval, created, updated); err != nil {
			rows.Close()
			return nil, err
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if !r.index() {
		return nil, nil
	}

	// Every service's hostnames (a node's sync) are one pass over the
	// index (service_id, position, hostname); the join would look each
	// hostname's service up.
	if all {
		rows, err = tx.QueryContext(ctx, hostnamesInOrder)
	} else {
		rows, err = tx.QueryContext(ctx, `SELECT h.service_id, h.hostname FROM service_hostnames h
		JOIN services ON services.id = h.service_id WHERE `+where+` ORDER BY h.service_id, h.position`, args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var host sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&id, &host); err != nil {
			return nil, err
		}
		r.hostname(id, host)
	}
	return r.services(), rows.Err()
}

// hostnamesInOrder reads every hostname by service, in each service's order.
const hostnamesInOrder = `SELECT service_id, hostname FROM service_hostnames ORDER BY service_id, position`

// readAllPostgres is queryServicesAll of every service on PostgreSQL, with
// pgx's own rows rather than database/sql's: each column of a row is then
// the bytes pgx received, where the driver made a string and an interface
// of each (a number boxed, a string copied into the RawBytes asked for),
// about 350 B of garbage a service, 350 MB at a node's first sync of a
// million services, while its handshakes wait for the collector
// (BENCHMARKS.md, "The garbage of a certificate load and of PostgreSQL's
// first sync").
func (db *DB) readAllPostgres(ctx context.Context) ([]Service, error) {
	var ss []Service
	err := db.withPgx(ctx, func(c *pgx.Conn) (err error) {
		ss, err = readAllPgx(ctx, c)
		return err
	})
	return ss, err
}

// readAllPgx reads every service and its hostnames over c, in one
// read-only transaction (one snapshot), every column in text.
func readAllPgx(ctx context.Context, c *pgx.Conn) ([]Service, error) {
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	var count int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM services`).Scan(&count); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT `+serviceColumns+` FROM services ORDER BY project_id, name`, textResults)
	if err != nil {
		return nil, err
	}
	r := newServiceRead(count)
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 12 {
			rows.Close()
			return nil, fmt.Errorf("a service row of %d columns", len(v))
		}
		s := r.next()
		var ints [4]int64 // hsts_max_age, health_interval, created_at, updated_at
		for i, col := range [4]int{5, 7, 8, 9} {
			if ints[i], err = strconv.ParseInt(unsafe.String(unsafe.SliceData(v[col]), len(v[col])), 10, 64); err != nil {
				rows.Close()
				return nil, fmt.Errorf("service %q: column %d: %w", v[2], col, err)
			}
		}
		s.HSTSMaxAge = int(ints[0])
		s.HealthPath, s.ClientCA, s.ClientAuth = r.strs.of(v[6]), r.strs.of(v[10]), r.strs.of(v[11])
		if err := r.fill(s, v[0], v[1], v[2], v[3], v[4], ints[1], ints[2], ints[3]); err != nil {
			rows.Close()
			return nil, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !r.index() {
		return nil, nil
	}
	rows, err = tx.Query(ctx, hostnamesInOrder, textResults)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		v := rows.RawValues()
		if len(v) != 2 {
			return nil, fmt.Errorf("a hostname row of %d columns", len(v))
		}
		r.hostname(v[0], v[1])
	}
	return r.services(), rows.Err()
}

// serviceRead makes a read's services from the bytes of each row, the
// driver's until its next row.
//
// Every service's list is sized first: grown by append, a million
// services (224 B each) made about twice their size in garbage, beside
// the list at a node's full sync, its memory peak. A read of a few
// services (a handshake's look-up) makes no extra query. Each row is
// filled in its element of the list: a Service declared per row was a
// heap copy of every row (200 MB at a million services). The columns most
// rows repeat (project, domain, upstreams) are made strings once per
// distinct value: a string per row and column was 64 MB of garbage at a
// million. The hostnames are packed apart from the IDs and names: the
// certificate manager keeps a read's hostnames, and nothing else of it,
// until its next sync.
type serviceRead struct {
	ss          []Service
	upsSeen     map[string][]string
	strs        repeated
	kept, hosts packed
	y           sched.Yielder
	byID        *idIndex
	last        []byte // the ID of the hostnames' current service
	cur         int    // its index in ss, -1 if not read
	n           int    // hostname rows seen
}

func newServiceRead(count int) *serviceRead {
	return &serviceRead{ss: make([]Service, 0, count), upsSeen: map[string][]string{}, strs: repeated{}, cur: -1}
}

// next appends a service for the next row and returns it.
func (r *serviceRead) next() *Service {
	yieldEvery(&r.y, len(r.ss))
	r.ss = append(r.ss, Service{})
	return &r.ss[len(r.ss)-1]
}

// fill sets s's columns from a row's bytes.
func (r *serviceRead) fill(s *Service, id, project, name, domain, ups []byte, interval, created, updated int64) error {
	s.ID, s.Name = r.kept.of(id), r.kept.of(name)
	s.ProjectID, s.Domain = r.strs.of(project), r.strs.of(domain)
	// Services share few upstream lists: each distinct one is decoded
	// once per read, and copied for each service (its own slice).
	if u, ok := r.upsSeen[string(ups)]; ok {
		s.Upstreams = slices.Clone(u)
	} else {
		if err := json.Unmarshal(ups, &s.Upstreams); err != nil {
			return fmt.Errorf("service %q: upstreams: %w", s.Name, err)
		}
		if len(r.upsSeen) < 1024 {
			r.upsSeen[string(ups)] = slices.Clone(s.Upstreams)
		}
	}
	s.HealthInterval = time.Duration(interval)
	s.CreatedAt, s.UpdatedAt = fromNanos(created), fromNanos(updated)
	return nil
}

// index makes the ID index of the services read, before their hostnames;
// it reports false if there are none.
func (r *serviceRead) index() bool {
	if len(r.ss) == 0 {
		return false
	}
	r.byID = indexByID(r.ss, &r.y)
	r.last = make([]byte, 0, 64)
	return true
}

// hostname adds host to its service's: the rows come by service, which is
// looked up when the ID changes, from the driver's bytes (no string made
// for it).
func (r *serviceRead) hostname(id, host []byte) {
	yieldEvery(&r.y, r.n)
	if r.n == 0 || !bytes.Equal(id, r.last) {
		r.last = append(r.last[:0], id...)
		r.cur = r.byID.find(id)
	}
	r.n++
	if r.cur >= 0 {
		r.ss[r.cur].Hostnames = append(r.ss[r.cur].Hostnames, r.hosts.of(host))
	}
}

// services returns the services read, the name of each whose first
// hostname begins with it and a dot (<name>.<domain>, as platform makes
// a service's first hostname) a substring of that hostname: what a node's
// sync keeps of the read's block of IDs and names is then nothing
// (serving.Applied keeps an ID as its bytes, the edge the name as that
// substring), about 35 bytes a service at a million.
func (r *serviceRead) services() []Service {
	for i := range r.ss {
		yieldEvery(&r.y, i)
		s := &r.ss[i]
		if len(s.Hostnames) > 0 {
			if h := s.Hostnames[0]; len(h) > len(s.Name) && h[len(s.Name)] == '.' && h[:len(s.Name)] == s.Name {
				s.Name = h[:len(s.Name)]
			}
		}
	}
	return r.ss
}

// packed makes the strings of a read that its caller keeps for every
// service (IDs, names, hostnames) as parts of blocks rather than one
// allocation each: the first of packFirst bytes, each next twice the last
// up to packBlock, so that a read of a few services (a project's, which
// the API may remember) takes about what its strings need. At a million services a node's sync
// keeps three strings a service: one object each made 3 million objects
// for the collector to mark at every cycle, and each was rounded up to
// its size class (a 28-byte ID took 32 bytes, an 18-byte hostname 24),
// about 13 bytes a service in all. A block lives as long as one of its
// strings does: at most what the read made, as with a string each (a
// service deleted later keeps its block's neighbours company, never
// more than the block).
type packed struct {
	buf  []byte
	next int // the size of the next block
}

const (
	packFirst = 256
	packBlock = 16 << 10
)

func (p *packed) of(b []byte) string {
	switch {
	case len(b) == 0:
		return ""
	case len(b) > packBlock/16:
		return string(b) // a rare long one: its own allocation
	}
	if cap(p.buf)-len(p.buf) < len(b) {
		p.next = min(max(2*p.next, packFirst), packBlock)
		p.buf = make([]byte, 0, max(p.next, len(b)))
	}
	n := len(p.buf)
	p.buf = append(p.buf, b...)
	// The bytes appended are never written again: later strings go past them.
	return unsafe.String(&p.buf[n], len(b))
}

// idIndex finds a service of a read by its ID: a table of the services'
// indexes by a hash of the ID, open addressing with linear probing, at
// most half full, an ID found compared with its service's own. It is
// written here rather than a map because a map keeps its own copy of
// every key: 64 maps of ID to index (made at their size, one between two
// yields: one map of a million made in one go held the processor for
// about 150 ms) were 50 MB at a million services, made and dropped at
// every full read, where this is 8 MB (4 bytes a slot, 2^21 slots), made
// in one allocation and filled between yields.
type idIndex struct {
	slots []int32 // 1 + the service's index in ss; 0: empty
	ss    []Service
}

var idSeed = maphash.MakeSeed()

func indexByID(ss []Service, y *sched.Yielder) *idIndex {
	n := 1 << bits.Len(uint(2*len(ss)-1)) // a power of two, at least twice len(ss)
	x := &idIndex{slots: make([]int32, n), ss: ss}
	mask := uint64(n - 1)
	for i := range ss {
		yieldEvery(y, i)
		j := maphash.String(idSeed, ss[i].ID) & mask
		for x.slots[j] != 0 {
			j = (j + 1) & mask
		}
		x.slots[j] = int32(i + 1)
	}
	return x
}

// find returns the index of the service with ID id, or -1.
func (x *idIndex) find(id []byte) int {
	mask := uint64(len(x.slots) - 1)
	for j := maphash.Bytes(idSeed, id) & mask; x.slots[j] != 0; j = (j + 1) & mask {
		if i := x.slots[j] - 1; x.ss[i].ID == string(id) {
			return int(i)
		}
	}
	return -1
}

// repeated makes one string of each distinct value of a column that many
// rows repeat; at most 4,096 values are kept, then each row gets its own.
type repeated map[string]string

func (r repeated) of(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := r[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(r) < 4096 {
		r[s] = s
	}
	return s
}

// yieldEvery lets other goroutines, those waiting for the network
// included, run at least every sched.Slice of a long read (checked every
// 64 rows). A node reads every service at its first sync; on one
// processor, its TLS handshakes would otherwise wait for the whole read
// (tens of milliseconds at 10k services) until the runtime preempts it
// after 10 ms, and with runtime.Gosched for the runtime's own network
// poll, every 10 ms too (sched.Yield).
func yieldEvery(y *sched.Yielder, n int) {
	if n%64 == 63 {
		y.Maybe()
	}
}

func encodeUpstreams(ups []string) (string, error) {
	if ups == nil {
		ups = []string{}
	}
	b, err := json.Marshal(ups)
	if err != nil {
		return "", fmt.Errorf("store: encoding upstreams: %w", err)
	}
	return string(b), nil
}

// checkHostnames rejects a list that names a hostname twice; the unique index
// would report it as taken, which would mislead.
func checkHostnames(hostnames []string) error {
	seen := make(map[string]bool, len(hostnames))
	for _, h := range hostnames {
		if seen[h] {
			return conflict("hostname %q is listed twice", h)
		}
		seen[h] = true
	}
	return nil
}
