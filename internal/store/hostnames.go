package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The reads of this file answer what a page about a project's hostnames
// needs (the dashboard's, through package platform) without reading every
// hostname of the project into memory: counts grouped in the database, and
// one page of rows. A hostname's status here is its record's (CertStatus),
// or CertUploaded when its project uploaded a certificate for it, or
// CertPending when it has neither. Package platform decides which
// hostnames are not served (their domain is not verified) by their zone
// (HostnameZones), and passes those zones back (Unserved) so that their
// hostnames count as pending.
//
// A hostname's zone is the hostname itself when a domain of that name
// exists, else the hostname without its first label (its parent): whether
// a hostname is served depends on its zone only, the closest domain at or
// above it.

// CertUploaded is the status of a hostname served with a certificate its
// project uploaded (UploadedCert), as the hostname reads report it.
const CertUploaded = "uploaded"

// HostnameZones returns the zones of the project's hostnames, or more
// (the parent of a hostname that is a domain), sorted.
func (db *DB) HostnameZones(ctx context.Context, projectID string) ([]string, error) {
	// A service's hostnames have a few parents: each is found from the
	// one before it with one probe of service_hostnames_service_parent (a
	// skip scan, as neither database does one for DISTINCT), instead of
	// reading every hostname. The hostnames that are domains are found
	// from the domains, one probe each (a scalar subquery, so that
	// PostgreSQL does not turn it into a join from the project's
	// hostnames when its statistics are stale), not by looking every
	// hostname up among them.
	rows, err := db.r.QueryContext(ctx, `WITH RECURSIVE z(service_id, parent) AS (
			SELECT s.id, (SELECT MIN(h.parent) FROM service_hostnames h WHERE h.service_id = s.id)
			FROM services s WHERE s.project_id = $1
			UNION ALL
			SELECT z.service_id, (SELECT MIN(h.parent) FROM service_hostnames h WHERE h.service_id = z.service_id AND h.parent > z.parent)
			FROM z WHERE z.parent IS NOT NULL)
		SELECT parent FROM z WHERE parent IS NOT NULL
		UNION SELECT d.name FROM domains d WHERE (SELECT s.project_id FROM service_hostnames h JOIN services s ON s.id = h.service_id
			WHERE h.hostname = d.name) = $1
		ORDER BY 1`, projectID)
	if err != nil {
		return nil, db.wrap("listing hostname zones", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var z string
		if err := rows.Scan(&z); err != nil {
			return nil, db.wrap("listing hostname zones", err)
		}
		out = append(out, z)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("listing hostname zones", err)
	}
	return out, nil
}

// HostnameCount is how many of a project's hostnames have one status
// (CountHostnames).
type HostnameCount struct {
	Status string // CertPending, CertIssuing, CertActive, CertFailed or CertUploaded
	Count  int
	// Expiring is how many of them have a certificate (managed or
	// uploaded) that ends before the time CountHostnames was given.
	Expiring int
}

// HostnameQuery selects some of a project's hostnames (ListHostnames).
// Its zero filters select every hostname.
type HostnameQuery struct {
	ProjectID string // required
	Service   string // only the hostnames of this service (by name)
	Hostname  string // only this hostname
	Search    string // only the hostnames that contain this (compared as is; hostnames are lower case)
	Status    string // only those with this status (after Unserved)
	// EndsBefore, if not zero, selects the hostnames whose certificate
	// (managed or uploaded) ends before it.
	EndsBefore time.Time
	// Problems, if not nil, selects the hostnames that need someone: see
	// Problems.
	Problems *Problems
	// Unserved are zones whose hostnames are not served: each counts as
	// CertPending, with no certificate, whatever its records say.
	Unserved []string
	// Offset and Limit page the answer, sorted by hostname; Limit 0 is no
	// limit.
	Offset, Limit int
}

// Problems selects the hostnames whose certificate failed, that are
// pending with an error or not served, or whose renewal is late: the
// certificate (not an uploaded one) ends before EndsBefore and Now is past
// half of its renewal window, the last RenewalRatio of its lifetime.
type Problems struct {
	Now, EndsBefore time.Time
	RenewalRatio    float64
}

// HostnameRow is one of a project's hostnames (ListHostnames).
type HostnameRow struct {
	Service  string // "" for an uploaded certificate of a hostname no service has
	Unserved bool   // its zone is one of HostnameQuery.Unserved
	// Cert is the hostname's status as HostnameQuery.Status compares it:
	// its record's, or, for an uploaded certificate, CertUploaded with
	// that certificate's issuer and validity (UpdatedAt: when it was
	// uploaded), or CertPending with nothing else (no record, or not
	// served).
	Cert CertStatus
}

// CountHostnames counts the hostnames of the project's services, and the
// uploaded certificates of its hostnames that no service has, by status
// (those of the zones unserved as pending); Expiring counts those whose
// certificate ends before endsBefore.
func (db *DB) CountHostnames(ctx context.Context, projectID string, endsBefore time.Time, unserved []string) ([]HostnameCount, error) {
	uploads, err := db.hasUploads(ctx, projectID)
	if err != nil {
		return nil, db.wrap("counting hostnames", err)
	}
	a := &sqlArgs{}
	p := a.add(projectID)
	q := `SELECT status, COUNT(*), SUM(CASE WHEN not_after > 0 AND not_after < ` + a.add(toNanos(endsBefore)) + ` THEN 1 ELSE 0 END)
		FROM (` + hostnameRows(p, a.in(unserved), uploads, "", "") + `) r GROUP BY status ORDER BY status`
	rows, err := db.r.QueryContext(ctx, q, a.list...)
	if err != nil {
		return nil, db.wrap("counting hostnames", err)
	}
	defer rows.Close()
	var out []HostnameCount
	for rows.Next() {
		var c HostnameCount
		if err := rows.Scan(&c.Status, &c.Count, &c.Expiring); err != nil {
			return nil, db.wrap("counting hostnames", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, db.wrap("counting hostnames", err)
	}
	return out, nil
}

// ListHostnames returns the page of the project's hostnames that q
// selects, sorted by hostname, and how many q selects in all.
func (db *DB) ListHostnames(ctx context.Context, q HostnameQuery) ([]HostnameRow, int, error) {
	uploads, err := db.hasUploads(ctx, q.ProjectID)
	if err != nil {
		return nil, 0, db.wrap("listing hostnames", err)
	}
	a := &sqlArgs{}
	p := a.add(q.ProjectID)
	var where []string
	if q.Service != "" {
		where = append(where, `service_id = (SELECT id FROM services WHERE project_id = `+p+` AND name = `+a.add(q.Service)+`)`)
	}
	if q.Hostname != "" {
		where = append(where, `hostname = `+a.add(q.Hostname))
	}
	if q.Search != "" {
		where = append(where, `hostname LIKE `+a.add(likeContains(q.Search))+` ESCAPE '\'`)
	}
	// The status is filtered inside hostnameRows, on the columns it is
	// computed from (statusCond).
	var status string
	if q.Status != "" {
		status = statusCond(q.Status, a, q.Unserved, uploads)
	}
	if !q.EndsBefore.IsZero() {
		where = append(where, `not_after > 0 AND not_after < `+a.add(toNanos(q.EndsBefore)))
	}
	if pr := q.Problems; pr != nil {
		where = append(where, `(status = '`+CertFailed+`' OR (status = '`+CertPending+`' AND (unserved = 1 OR error <> ''))
			OR (status <> '`+CertUploaded+`' AND not_after > not_before AND not_after > 0 AND not_after < `+a.add(toNanos(pr.EndsBefore))+`
				AND not_after - (not_after - not_before) * CAST(`+a.add(pr.RenewalRatio/2)+` AS DOUBLE PRECISION) < `+a.add(toNanos(pr.Now))+`))`)
	}
	cond := "1 = 1"
	if len(where) > 0 {
		cond = strings.Join(where, " AND ")
	}
	limit := int64(q.Limit)
	if limit <= 0 {
		limit = 1 << 62
	}
	// The page is chosen from the narrow rows (an index each), then its
	// rows are read in full.
	base := `SELECT hostname, service_id, unserved, status FROM (` + hostnameRows(p, a.in(q.Unserved), uploads, status, q.Status) + `) r WHERE ` + cond
	// How many rows q selects: counted with the rows sorted for the page,
	// except that SQLite counts every hostname of the project apart (once,
	// an uncorrelated subquery): its window function over 10,000 sorted
	// rows cost half as much again as counting them apart. With a filter,
	// the window counts the few rows that pass it, and counting apart
	// would read every hostname twice.
	count := `COUNT(*) OVER ()`
	if db.d.name == "sqlite" && len(where) == 0 && status == "" {
		count = `(SELECT COUNT(*) FROM (` + base + `) n)`
	}
	page := `SELECT pg.hostname, COALESCE(s.name, ''), pg.unserved, pg.status,
			CASE WHEN pg.unserved = 1 THEN '' WHEN u.hostname IS NOT NULL THEN u.issuer ELSE COALESCE(c.issuer, '') END,
			CASE WHEN pg.unserved = 1 THEN 0 WHEN u.hostname IS NOT NULL THEN u.not_before ELSE COALESCE(c.not_before, 0) END,
			CASE WHEN pg.unserved = 1 THEN 0 WHEN u.hostname IS NOT NULL THEN u.not_after ELSE COALESCE(c.not_after, 0) END,
			CASE WHEN pg.unserved = 1 OR u.hostname IS NOT NULL THEN '' ELSE COALESCE(c.error, '') END,
			CASE WHEN pg.unserved = 1 THEN 0 WHEN u.hostname IS NOT NULL THEN u.uploaded_at ELSE COALESCE(c.updated_at, 0) END,
			pg.total
		FROM (SELECT b.*, ` + count + ` AS total FROM (` + base + `) b ORDER BY hostname LIMIT ` + a.add(limit) + ` OFFSET ` + a.add(max(q.Offset, 0)) + `) pg
		LEFT JOIN services s ON s.id = pg.service_id
		LEFT JOIN cert_status c ON c.hostname = pg.hostname
		LEFT JOIN uploaded_certs u ON u.hostname = pg.hostname AND u.project_id = ` + p + `
		ORDER BY pg.hostname`
	rows, err := db.r.QueryContext(ctx, page, a.list...)
	if err != nil {
		return nil, 0, db.wrap("listing hostnames", err)
	}
	defer rows.Close()
	var (
		out   []HostnameRow
		total int
	)
	for rows.Next() {
		var (
			h                            HostnameRow
			unserved                     int
			notBefore, notAfter, updated int64
		)
		if err := rows.Scan(&h.Cert.Hostname, &h.Service, &unserved, &h.Cert.Status, &h.Cert.Issuer, &notBefore, &notAfter, &h.Cert.Error, &updated, &total); err != nil {
			return nil, 0, db.wrap("listing hostnames", err)
		}
		h.Unserved = unserved == 1
		h.Cert.NotBefore, h.Cert.NotAfter, h.Cert.UpdatedAt = fromNanos(notBefore), fromNanos(notAfter), fromNanos(updated)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, db.wrap("listing hostnames", err)
	}
	if len(out) == 0 && q.Offset > 0 {
		// Past the end: the total still counts.
		if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+base+`) r`, a.list[:len(a.list)-2]...).Scan(&total); err != nil {
			return nil, 0, db.wrap("listing hostnames", err)
		}
	}
	return out, total, nil
}

// hasUploads reports whether the project has uploaded a certificate, so
// that the hostname reads of most projects (none) leave uploaded_certs
// out: a join of each hostname and a UNION ALL for the uploaded
// certificates of no service cost a third of the read at 10,000
// hostnames. A certificate uploaded between this and the read is seen at
// the next read, as one uploaded just after it.
func (db *DB) hasUploads(ctx context.Context, projectID string) (bool, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM uploaded_certs WHERE project_id = $1 LIMIT 1) x`, projectID).Scan(&n)
	return n > 0, err
}

// hostnameRows is the SQL of a project's hostnames (project is the
// placeholder of its ID), narrow: hostname, service_id, unserved (1 if its
// zone is one of the placeholders unserved), status, not_before, not_after
// and error, each read from an index (cert_status_covering). uploads is
// whether the project may have uploaded certificates (hasUploads): without
// it, the SQL reads no uploaded_certs. status, if not "", is statusCond's
// condition for the hostnames of services, and statusValue the status it
// selects.
func hostnameRows(project string, unserved []string, uploads bool, status, statusValue string) string {
	inUnserved := unservedExpr(unserved)
	where := `s.project_id = ` + project
	lone := ""
	if status != "" {
		where += ` AND ` + status
		if statusValue != CertUploaded {
			lone = ` AND 1 = 0`
		}
	}
	if !uploads {
		return `SELECT h.hostname, h.service_id,
			CASE WHEN ` + inUnserved + ` THEN 1 ELSE 0 END AS unserved,
			CASE WHEN ` + inUnserved + ` THEN '` + CertPending + `' ELSE COALESCE(c.status, '` + CertPending + `') END AS status,
			CASE WHEN ` + inUnserved + ` THEN 0 ELSE COALESCE(c.not_before, 0) END AS not_before,
			CASE WHEN ` + inUnserved + ` THEN 0 ELSE COALESCE(c.not_after, 0) END AS not_after,
			CASE WHEN ` + inUnserved + ` THEN '' ELSE COALESCE(c.error, '') END AS error
		FROM services s JOIN service_hostnames h ON h.service_id = s.id
		LEFT JOIN cert_status c ON c.hostname = h.hostname
		WHERE ` + where
	}
	return `SELECT h.hostname, h.service_id,
			CASE WHEN ` + inUnserved + ` THEN 1 ELSE 0 END AS unserved,
			CASE WHEN ` + inUnserved + ` THEN '` + CertPending + `'
				WHEN u.hostname IS NOT NULL THEN '` + CertUploaded + `'
				ELSE COALESCE(c.status, '` + CertPending + `') END AS status,
			CASE WHEN ` + inUnserved + ` THEN 0 WHEN u.hostname IS NOT NULL THEN u.not_before ELSE COALESCE(c.not_before, 0) END AS not_before,
			CASE WHEN ` + inUnserved + ` THEN 0 WHEN u.hostname IS NOT NULL THEN u.not_after ELSE COALESCE(c.not_after, 0) END AS not_after,
			CASE WHEN ` + inUnserved + ` OR u.hostname IS NOT NULL THEN '' ELSE COALESCE(c.error, '') END AS error
		FROM services s JOIN service_hostnames h ON h.service_id = s.id
		LEFT JOIN cert_status c ON c.hostname = h.hostname
		LEFT JOIN uploaded_certs u ON u.hostname = h.hostname AND u.project_id = ` + project + `
		WHERE ` + where + `
		UNION ALL
		SELECT u.hostname, '', 0, '` + CertUploaded + `', u.not_before, u.not_after, ''
		FROM uploaded_certs u WHERE u.project_id = ` + project + ` AND NOT EXISTS (SELECT 1 FROM service_hostnames h
			JOIN services s ON s.id = h.service_id WHERE h.hostname = u.hostname AND s.project_id = ` + project + `)` + lone
}

// statusCond is the SQL condition, on the columns of hostnameRows' first
// branch (h, c, and u if uploads), that a hostname's status is status:
// what the CASE of its status column says, written so that the databases
// can use cert_status' indexes and estimate how many rows match
// (PostgreSQL takes a CASE to match 0.5 % of the rows, and joins the
// 9,850 active hostnames of 10,000 one by one: a third of the page).
// unserved are the zones not served, as in HostnameQuery; a's
// placeholders are added only if used (PostgreSQL refuses one that is
// not).
func statusCond(status string, a *sqlArgs, unserved []string, uploads bool) string {
	if status == CertUploaded && !uploads {
		return `1 = 0`
	}
	inUnserved := unservedExpr(a.in(unserved)) // never NULL
	noUpload := ""
	if uploads {
		noUpload = ` AND u.hostname IS NULL`
	}
	switch status {
	case CertPending:
		return `(` + inUnserved + ` OR ((c.hostname IS NULL OR c.status = '` + CertPending + `')` + noUpload + `))`
	case CertUploaded:
		return `(NOT ` + inUnserved + ` AND u.hostname IS NOT NULL)`
	}
	return `(NOT ` + inUnserved + ` AND c.status = ` + a.add(status) + noUpload + `)`
}

// unservedExpr is the SQL condition that the hostname h (of
// service_hostnames) has its zone among the placeholders unserved.
func unservedExpr(unserved []string) string {
	if len(unserved) == 0 {
		return "1 = 0"
	}
	in := strings.Join(unserved, ", ")
	// The closest domain decides: a hostname that is a domain is its own
	// zone, any other is in its parent's.
	return `((h.hostname IN (` + in + `) AND EXISTS (SELECT 1 FROM domains dz WHERE dz.name = h.hostname))
			OR (h.parent IN (` + in + `) AND NOT EXISTS (SELECT 1 FROM domains dz WHERE dz.name = h.hostname)))`
}

// AllHostnames as ServiceQuery.Hostnames returns every hostname of each
// service (GET /v1/services' pages).
const AllHostnames = 1 << 30

// ServiceQuery selects some of a project's services (ListServiceSummaries).
type ServiceQuery struct {
	ProjectID string // required
	// Search, if not "", selects the services whose name or one of whose
	// hostnames contains it.
	Search string
	// Hostnames is how many of each service's hostnames to return, those
	// that contain Search first, then in the service's order;
	// AllHostnames: every one.
	Hostnames int
	// Counts asks for ServiceSummary's counts, which read the hostnames of
	// the page's services; without it they are 0.
	Counts bool
	// Unserved is as in HostnameQuery: their hostnames are not active.
	Unserved []string
	// After, if not "", selects the services whose name sorts after it: a
	// cursor, the last name of the page before, which a service created
	// or deleted meanwhile does not move. Offset counts from there.
	After string
	// Offset and Limit page the answer, sorted by name; Limit 0 is no limit.
	Offset, Limit int
}

// ServiceSummary is a service with counts of its hostnames.
type ServiceSummary struct {
	Service       // Hostnames: the first ServiceQuery.Hostnames of them
	HostnameCount int
	ActiveCount   int // hostnames whose certificate is active (CertActive, served, not uploaded)
}

// ListServiceSummaries returns the page of the project's services that q
// selects, sorted by name, and how many q selects in all.
func (db *DB) ListServiceSummaries(ctx context.Context, q ServiceQuery) ([]ServiceSummary, int, error) {
	a := &sqlArgs{}
	p := a.add(q.ProjectID)
	cond := `s.project_id = ` + p
	like := ""
	if q.Search != "" {
		like = a.add(likeContains(q.Search))
		cond += ` AND (s.name LIKE ` + like + ` ESCAPE '\' OR EXISTS (SELECT 1 FROM service_hostnames hq
			WHERE hq.service_id = s.id AND hq.hostname LIKE ` + like + ` ESCAPE '\'))`
	}
	condArgs := len(a.list)
	limit := int64(q.Limit)
	if limit <= 0 {
		limit = 1 << 62
	}
	// The count apart from the page: a window (COUNT(*) OVER ()) on the
	// page's query read every service of the project to count them, 1.5
	// to 2.1 s a page for a project of a million on SQLite, against 2 to
	// 72 ms for the page (by the project and name index) and 57 ms for
	// the count.
	var total int
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM services s WHERE `+cond, a.list[:condArgs]...).Scan(&total); err != nil {
		return nil, 0, db.wrap("counting services", err)
	}
	if q.After != "" {
		cond += ` AND s.name > ` + a.add(q.After)
	}
	cols := strings.ReplaceAll(serviceColumns, ", ", ", s.")
	query := `SELECT s.` + cols + ` FROM services s
		WHERE ` + cond + ` ORDER BY s.name LIMIT ` + a.add(limit) + ` OFFSET ` + a.add(max(q.Offset, 0))
	rows, err := db.r.QueryContext(ctx, query, a.list...)
	if err != nil {
		return nil, 0, db.wrap("listing services", err)
	}
	var (
		out  []ServiceSummary
		byID = map[string]int{}
	)
	for rows.Next() {
		var (
			s                ServiceSummary
			ups              string
			interval         int64
			created, updated int64
		)
		if err := rows.Scan(&s.ID, &s.ProjectID, &s.Name, &s.Domain, &ups, &s.HSTSMaxAge, &s.HealthPath, &interval, &created, &updated,
			&s.ClientCA, &s.ClientAuth); err != nil {
			rows.Close()
			return nil, 0, db.wrap("listing services", err)
		}
		if err := json.Unmarshal([]byte(ups), &s.Upstreams); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("store: service %q: upstreams: %w", s.Name, err)
		}
		s.HealthInterval = time.Duration(interval)
		s.CreatedAt, s.UpdatedAt = fromNanos(created), fromNanos(updated)
		byID[s.ID] = len(out)
		out = append(out, s)
	}
	if err := rows.Close(); err != nil {
		return nil, 0, db.wrap("listing services", err)
	}
	if len(out) == 0 {
		return out, total, nil
	}
	ids := make([]string, 0, len(out))
	for _, s := range out {
		ids = append(ids, s.ID)
	}
	if q.Counts {
		// The page's services' hostnames only, not the project's.
		c := &sqlArgs{}
		p := c.add(q.ProjectID)
		in := strings.Join(c.in(ids), ", ")
		unserved := unservedExpr(c.in(q.Unserved))
		rows, err := db.r.QueryContext(ctx, `SELECT h.service_id, COUNT(*),
				SUM(CASE WHEN `+unserved+` OR u.hostname IS NOT NULL THEN 0 WHEN c.status = '`+CertActive+`' THEN 1 ELSE 0 END)
			FROM service_hostnames h
			LEFT JOIN cert_status c ON c.hostname = h.hostname
			LEFT JOIN uploaded_certs u ON u.hostname = h.hostname AND u.project_id = `+p+`
			WHERE h.service_id IN (`+in+`) GROUP BY h.service_id`, c.list...)
		if err != nil {
			return nil, 0, db.wrap("counting services' hostnames", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id            string
				total, active int
			)
			if err := rows.Scan(&id, &total, &active); err != nil {
				return nil, 0, db.wrap("counting services' hostnames", err)
			}
			if i, ok := byID[id]; ok {
				out[i].HostnameCount, out[i].ActiveCount = total, active
			}
		}
		if err := rows.Close(); err != nil {
			return nil, 0, db.wrap("counting services' hostnames", err)
		}
	}
	if q.Hostnames <= 0 {
		return out, total, nil
	}

	h := &sqlArgs{}
	in := strings.Join(h.in(ids), ", ")
	order := `h.position`
	if q.Search != "" {
		order = `CASE WHEN h.hostname LIKE ` + h.add(likeContains(q.Search)) + ` ESCAPE '\' THEN 0 ELSE 1 END, h.position`
	}
	rows, err = db.r.QueryContext(ctx, `SELECT service_id, hostname FROM (
			SELECT h.service_id, h.hostname, ROW_NUMBER() OVER (PARTITION BY h.service_id ORDER BY `+order+`) AS n
			FROM service_hostnames h WHERE h.service_id IN (`+in+`)) x
		WHERE n <= `+h.add(q.Hostnames)+` ORDER BY service_id, n`, h.list...)
	if err != nil {
		return nil, 0, db.wrap("listing services", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, host string
		if err := rows.Scan(&id, &host); err != nil {
			return nil, 0, db.wrap("listing services", err)
		}
		if i, ok := byID[id]; ok {
			out[i].Hostnames = append(out[i].Hostnames, host)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, db.wrap("listing services", err)
	}
	return out, total, nil
}

// sqlArgs numbers a query's arguments as they are added.
type sqlArgs struct{ list []any }

// add appends v and returns its placeholder.
func (a *sqlArgs) add(v any) string {
	a.list = append(a.list, v)
	return "$" + strconv.Itoa(len(a.list))
}

// in appends each of vs and returns their placeholders.
func (a *sqlArgs) in(vs []string) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, a.add(v))
	}
	return out
}

// likeContains is the LIKE pattern (with ESCAPE '\') of the strings that
// contain s.
func likeContains(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}
