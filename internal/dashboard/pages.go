package dashboard

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/api"
	"github.com/spine-platform/spine/internal/inspect"
)

// perPage is the rows of one page of a list.
const perPage = 50

// expiringWithin is how close to its end a certificate counts as a problem.
const expiringWithin = 7 * 24 * time.Hour

// form is a form as sent, with the API's refusal next to the field it names.
type form struct {
	Values  map[string]string
	Errors  map[string]string
	Message string // a refusal no field explains
}

func newForm(r *http.Request, fields ...string) *form {
	f := &form{Values: map[string]string{}, Errors: map[string]string{}}
	for _, k := range fields {
		f.Values[k] = strings.TrimSpace(r.PostFormValue(k))
	}
	return f
}

// refuse puts err next to the field it is about, judged from the API's
// error code ("invalid_upstream" is the upstreams field's), or above the
// form; it returns the status to answer with.
func (f *form) refuse(err error, fields ...string) (int, error) {
	var ce *client.Error
	if !errors.As(err, &ce) {
		return 0, err
	}
	for _, k := range fields {
		if strings.Contains(ce.Code, strings.TrimSuffix(k, "s")) {
			f.Errors[k] = ce.Message
			return ce.Status, nil
		}
	}
	f.Message = ce.Message
	return ce.Status, nil
}

// split reads a list typed one item a line, or separated by commas or spaces.
func split(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// pager is one page of a list of n rows.
type pager struct {
	Page, Pages, Total, From, To int
	Prev, Next                   string
}

// pageAsked is the page number r asks for, 1 or more.
func pageAsked(r *http.Request) int {
	p, _ := strconv.Atoi(r.URL.Query().Get("page"))
	return max(p, 1)
}

// pageIn reads the page p of a list with read(offset, limit), which
// returns how many rows the list has; a page past the end shows the last.
func pageIn(r *http.Request, read func(offset, limit int) (int, error)) (pager, error) {
	p := pageAsked(r)
	n, err := read((p-1)*perPage, perPage)
	if err != nil {
		return pager{}, err
	}
	if last := max(1, (n+perPage-1)/perPage); p > last {
		if n, err = read((last-1)*perPage, perPage); err != nil {
			return pager{}, err
		}
	}
	return paginate(n, r), nil
}

func paginate(n int, r *http.Request) pager {
	p := pageAsked(r)
	pages := max(1, (n+perPage-1)/perPage)
	p = min(p, pages)
	pg := pager{Page: p, Pages: pages, Total: n, From: min((p-1)*perPage, n), To: min(p*perPage, n)}
	link := func(page int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page))
		return r.URL.Path + "?" + q.Encode()
	}
	if p > 1 {
		pg.Prev = link(p - 1)
	}
	if p < pages {
		pg.Next = link(p + 1)
	}
	return pg
}

// problem is one thing the overview puts first, with where it is fixed.
type problem struct {
	Kind, Subject, Detail, Link, Fix string
}

type overviewData struct {
	Services, Hostnames int
	ByStatus            map[string]int
	Expiring            int // certificates that end within 7 days
	Problems            []problem
	MoreProblems        int
}

// maxProblems is how many problems the overview lists.
const maxProblems = 50

func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := d.live(r, rq); err != nil {
		return err
	}
	ctx, now := r.Context(), d.cfg.Now()
	counts, err := d.cfg.API.HostnameCounts(ctx, rq.token, now.Add(expiringWithin))
	if err != nil {
		return err
	}
	// The problems first: the first maxProblems hostnames that have one,
	// counted and read in the store.
	bad, err := d.cfg.API.Hostnames(ctx, rq.token, api.HostnameQuery{ProblemsAt: now, ProblemsWithin: expiringWithin, Limit: maxProblems})
	if err != nil {
		return err
	}
	svcs, err := d.cfg.API.ServiceSummaries(ctx, rq.token, api.ServiceQuery{})
	if err != nil {
		return err
	}
	domains, err := rq.api.Domains(ctx)
	if err != nil {
		return err
	}
	out := overviewData{Services: svcs.Total, Hostnames: counts.Total, ByStatus: counts.ByStatus, Expiring: counts.Expiring}
	var probs []problem
	for _, c := range bad.Certificates {
		link := Prefix + "hostnames/" + url.PathEscape(c.Hostname)
		switch {
		case c.Status == "failed":
			probs = append(probs, problem{"Certificate failed", c.Hostname, c.Error, link, "See why"})
		case c.Status == "pending" && c.Error != "":
			probs = append(probs, problem{"Certificate pending", c.Hostname, c.Error, link, "See why"})
		case renewalLate(c, now):
			probs = append(probs, problem{"Certificate expiring", c.Hostname, "ends " + fmtTime(*c.NotAfter) + " (" + daysLeft(now, *c.NotAfter) + ") and is not renewed yet, though renewal was due from " + fmtTime(*c.RenewAfter), link, "See renewal"})
		}
	}
	more := bad.Total - len(bad.Certificates)
	for _, dm := range domains {
		if dm.Status != "verified" {
			probs = append(probs, problem{"Domain awaiting verification", dm.Name, "create the record " + dm.VerifyRecord, Prefix + "domains#domain-" + dm.Name, "Verify"})
		}
	}
	if health := d.health(); health != nil {
		for _, s := range svcs.Services {
			for _, u := range s.Upstreams {
				if ok, known := health[u]; known && !ok {
					probs = append(probs, problem{"Upstream down", u, "service " + s.Name + ": its health check fails", Prefix + "services/" + url.PathEscape(s.Name), "Change upstreams"})
				}
			}
		}
	}
	if len(probs) > maxProblems {
		more += len(probs) - maxProblems
		probs = probs[:maxProblems]
	}
	out.Problems, out.MoreProblems = probs, more
	return d.render(w, r, rq, http.StatusOK, "overview", "Overview", out)
}

// renewalLate reports whether c ends within expiringWithin and is more
// than half-way through its renewal window without a renewal: a
// certificate that lives 24 h (the internal CA's) always ends within 7
// days, and is a problem only when its renewal is late.
func renewalLate(c client.Certificate, now time.Time) bool {
	if c.NotAfter == nil || c.RenewAfter == nil || c.NotAfter.Sub(now) >= expiringWithin {
		return false
	}
	half := c.RenewAfter.Add(c.NotAfter.Sub(*c.RenewAfter) / 2)
	return now.After(half)
}

func (d *Dashboard) health() map[string]bool {
	if d.cfg.UpstreamHealth == nil {
		return nil
	}
	return d.cfg.UpstreamHealth()
}

// upstream is an upstream URL with its health: "up", "down" or "unknown".
type upstream struct{ URL, Health string }

func (d *Dashboard) upstreams(urls []string, health map[string]bool) []upstream {
	out := make([]upstream, 0, len(urls))
	for _, u := range urls {
		h := "unknown"
		if ok, known := health[u]; known {
			h = map[bool]string{true: "up", false: "down"}[ok]
		}
		out = append(out, upstream{u, h})
	}
	return out
}

type serviceRow struct {
	client.Service
	Ups         []upstream
	Shown       []string // the hostnames shown (those matching the search first)
	More        int
	Active, All int
}

type servicesData struct {
	Q       string
	Rows    []serviceRow
	Pager   pager
	Domains []client.Domain
	Form    *form
}

func (d *Dashboard) servicesPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	return d.renderServices(w, r, rq, http.StatusOK, nil)
}

func (d *Dashboard) renderServices(w http.ResponseWriter, r *http.Request, rq *request, status int, f *form) error {
	if err := d.live(r, rq); err != nil {
		return err
	}
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	var page api.ServicePage
	pg, err := pageIn(r, func(offset, limit int) (n int, err error) {
		page, err = d.cfg.API.ServiceSummaries(r.Context(), rq.token, api.ServiceQuery{Search: q, Hostnames: shownHostnames, Counts: true, Offset: offset, Limit: limit})
		return page.Total, err
	})
	if err != nil {
		return err
	}
	health := d.health()
	out := servicesData{Q: q, Pager: pg, Form: f}
	for _, s := range page.Services {
		out.Rows = append(out.Rows, serviceRow{Service: s.Service, Ups: d.upstreams(s.Upstreams, health), Shown: s.Hostnames,
			More: s.HostnameCount - len(s.Hostnames), Active: s.ActiveCount, All: s.HostnameCount})
	}
	if rq.id.Has("services:write") {
		if out.Domains, err = rq.api.Domains(r.Context()); err != nil {
			return err
		}
	}
	if out.Form == nil {
		out.Form = &form{Values: map[string]string{}, Errors: map[string]string{}}
	}
	return d.render(w, r, rq, status, "services", "Services", out)
}

// shownHostnames is how many hostnames of a service the services page
// shows (those that match the search first).
const shownHostnames = 3

var serviceFields = []string{"name", "domain", "hosts", "upstreams", "health_path", "health_interval"}

func (d *Dashboard) createService(w http.ResponseWriter, r *http.Request, rq *request) error {
	f := newForm(r, serviceFields...)
	in := client.ServiceCreate{Name: f.Values["name"], Domain: f.Values["domain"], Hosts: split(f.Values["hosts"]),
		Upstreams: split(f.Values["upstreams"]), HealthPath: f.Values["health_path"], HealthInterval: f.Values["health_interval"]}
	svc, err := rq.api.CreateService(r.Context(), in)
	if err != nil {
		status, err := f.refuse(err, serviceFields...)
		if err != nil {
			return err
		}
		return d.renderServices(w, r, rq, status, f)
	}
	return d.redirect(w, r, rq, Prefix+"services/"+url.PathEscape(svc.Name),
		fmt.Sprintf("Service %s created: its certificates are being issued, and this page shows them turn active.", svc.Name))
}

type serviceData struct {
	Service client.Service
	Ups     []upstream
	Certs   []client.Certificate
	Form    *form
	Now     time.Time
}

func (d *Dashboard) servicePage(w http.ResponseWriter, r *http.Request, rq *request) error {
	return d.renderService(w, r, rq, http.StatusOK, nil)
}

func (d *Dashboard) renderService(w http.ResponseWriter, r *http.Request, rq *request, status int, f *form) error {
	if err := d.live(r, rq); err != nil {
		return err
	}
	svc, err := rq.api.Service(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	certs, err := d.cfg.API.Hostnames(r.Context(), rq.token, api.HostnameQuery{Service: svc.Name})
	if err != nil {
		return err
	}
	out := serviceData{Service: svc, Ups: d.upstreams(svc.Upstreams, d.health()), Now: d.cfg.Now(), Form: f, Certs: certs.Certificates}
	if out.Form == nil {
		out.Form = &form{Values: map[string]string{
			"upstreams": strings.Join(svc.Upstreams, "\n"), "hsts_max_age": strconv.Itoa(svc.HSTSMaxAge),
			"health_path": svc.HealthPath, "health_interval": svc.HealthInterval,
		}, Errors: map[string]string{}}
	}
	return d.render(w, r, rq, status, "service", "Service "+svc.Name, out)
}

var updateFields = []string{"upstreams", "add_hosts", "remove_hosts", "hsts_max_age", "health_path", "health_interval"}

func (d *Dashboard) updateService(w http.ResponseWriter, r *http.Request, rq *request) error {
	f := newForm(r, updateFields...)
	in := client.ServiceUpdate{Upstreams: split(f.Values["upstreams"]), AddHosts: split(f.Values["add_hosts"]), RemoveHosts: split(f.Values["remove_hosts"])}
	if v := f.Values["hsts_max_age"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.Errors["hsts_max_age"] = fmt.Sprintf("%q is not a number of seconds; 0 turns HSTS off", v)
			return d.renderService(w, r, rq, http.StatusBadRequest, f)
		}
		in.HSTSMaxAge = &n
	}
	if v := f.Values["health_path"]; v != "" {
		in.HealthPath = &v
	}
	if v := f.Values["health_interval"]; v != "" {
		in.HealthInterval = &v
	}
	name := r.PathValue("name")
	if _, err := rq.api.UpdateService(r.Context(), name, in); err != nil {
		status, err := f.refuse(err, updateFields...)
		if err != nil {
			return err
		}
		return d.renderService(w, r, rq, status, f)
	}
	return d.redirect(w, r, rq, Prefix+"services/"+url.PathEscape(name), "Service "+name+" updated.")
}

func (d *Dashboard) deleteService(w http.ResponseWriter, r *http.Request, rq *request) error {
	name := r.PathValue("name")
	if err := rq.api.DeleteService(r.Context(), name); err != nil {
		return err
	}
	return d.redirect(w, r, rq, Prefix+"services", "Service "+name+" deleted; its hostnames are no longer served.")
}

type hostnamesData struct {
	Q, Status string
	Expiring  bool
	Rows      []client.Certificate
	Pager     pager
	Now       time.Time
}

func (d *Dashboard) hostnamesPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := d.live(r, rq); err != nil {
		return err
	}
	q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
	st := r.URL.Query().Get("status")
	now := d.cfg.Now()
	expiring := r.URL.Query().Get("expiring") != ""
	query := api.HostnameQuery{Search: q, Status: st}
	if expiring {
		query.EndsBefore = now.Add(expiringWithin)
	}
	var page api.HostnamePage
	pg, err := pageIn(r, func(offset, limit int) (n int, err error) {
		query.Offset, query.Limit = offset, limit
		page, err = d.cfg.API.Hostnames(r.Context(), rq.token, query)
		return page.Total, err
	})
	if err != nil {
		return err
	}
	return d.render(w, r, rq, http.StatusOK, "hostnames", "Hostnames",
		hostnamesData{Q: q, Status: st, Expiring: expiring, Rows: page.Certificates, Pager: pg, Now: now})
}

// certificate is the certificate state of one of the project's hostnames.
func (d *Dashboard) certificate(r *http.Request, rq *request, host string) (client.Certificate, error) {
	page, err := d.cfg.API.Hostnames(r.Context(), rq.token, api.HostnameQuery{Hostname: host, Limit: 1})
	if err != nil {
		return client.Certificate{}, err
	}
	if len(page.Certificates) == 0 {
		return client.Certificate{}, &client.Error{Status: http.StatusNotFound, Code: "hostname_not_found", Message: fmt.Sprintf("no service of this project serves %q", host)}
	}
	return page.Certificates[0], nil
}

type hostnameData struct {
	Cert      client.Certificate
	URL       string
	Now       time.Time
	CanVerify bool
	Inspect   *inspection
}

// inspection is what the hostname page's "Inspect now" found.
type inspection struct {
	Expected, Found []string
	DNSNote         string
	Report          string
	OK              bool
	Summary         string
}

func (d *Dashboard) hostnamePage(w http.ResponseWriter, r *http.Request, rq *request) error {
	return d.renderHostname(w, r, rq, nil)
}

func (d *Dashboard) renderHostname(w http.ResponseWriter, r *http.Request, rq *request, in *inspection) error {
	host := strings.ToLower(r.PathValue("host"))
	if err := d.live(r, rq); err != nil {
		return err
	}
	cert, err := d.certificate(r, rq, host)
	if err != nil {
		return err
	}
	out := hostnameData{Cert: cert, Now: d.cfg.Now(), CanVerify: d.cfg.EdgeAddr != "", Inspect: in}
	if _, port, err := net.SplitHostPort(d.cfg.EdgeAddr); err == nil && port != "443" {
		out.URL = "https://" + host + ":" + port + "/"
	} else {
		out.URL = "https://" + host + "/"
	}
	return d.render(w, r, rq, http.StatusOK, "hostname", host, out)
}

// inspectHostname runs `spine inspect` against this node's edge for the
// hostname, and looks its name up in DNS: on demand (a button), at most
// two at once on the node, each bounded by Config.InspectTimeout.
func (d *Dashboard) inspectHostname(w http.ResponseWriter, r *http.Request, rq *request) error {
	host := strings.ToLower(r.PathValue("host"))
	if _, err := d.certificate(r, rq, host); err != nil {
		return err
	}
	if d.cfg.EdgeAddr == "" {
		return &client.Error{Status: http.StatusServiceUnavailable, Code: "no_edge", Message: "this node has no edge to inspect"}
	}
	select {
	case d.inspects <- struct{}{}:
		defer func() { <-d.inspects }()
	default:
		return &client.Error{Status: http.StatusServiceUnavailable, Code: "busy", Message: "two inspections are under way on this node; try again in a few seconds"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.InspectTimeout)
	defer cancel()
	in := &inspection{Expected: d.expectedAddrs()}
	if strings.HasSuffix(host, ".localhost") || host == "localhost" {
		in.Found = []string{"127.0.0.1", "::1"}
		in.DNSNote = "names under localhost resolve to this machine's loopback addresses without DNS (RFC 6761), as browsers do"
	} else if addrs, err := net.DefaultResolver.LookupHost(ctx, host); err != nil {
		in.DNSNote = "the lookup failed: " + err.Error()
	} else {
		in.Found = addrs
		if !slices.ContainsFunc(addrs, func(a string) bool { return slices.Contains(in.Expected, a) }) && len(in.Expected) > 0 {
			in.DNSNote = "none of the addresses found is this node's: point the name at it (an A/AAAA record, or a CNAME to a name that has them)"
		}
	}
	target, err := inspect.ParseTarget(dialAddr(d.cfg.EdgeAddr), host)
	if err != nil {
		return err
	}
	cfg := inspect.Config{Timeout: d.cfg.InspectTimeout, NoAIA: true, Now: d.cfg.Now, UserAgent: "spine-dashboard"}
	if d.cfg.CARoot != nil {
		if root := parseRoot(d.cfg.CARoot()); root != nil {
			cfg.Roots = []inspect.RootSource{{Name: "Spine's internal CA", Certs: []*x509.Certificate{root}}}
		}
	}
	rep := inspect.Run(ctx, target, cfg)
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		return err
	}
	in.Report, in.OK, in.Summary = buf.String(), rep.Result.OK, rep.Result.Message
	return d.renderHostname(w, r, rq, in)
}

// dialAddr is addr with an unspecified host ("[::]:8443", a listener on
// every address) made loopback: where this node reaches its own edge.
func dialAddr(addr string) string {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

func parseRoot(p []byte) *x509.Certificate {
	b, _ := pem.Decode(p)
	if b == nil {
		return nil
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	return c
}

// expectedAddrs are the addresses a hostname should resolve to: the
// edge's listening address, or, for one that listens on every address,
// this machine's (not link-local).
func (d *Dashboard) expectedAddrs() []string {
	h, _, err := net.SplitHostPort(d.cfg.EdgeAddr)
	if err != nil {
		return nil
	}
	if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
		return []string{ip.String()}
	}
	addrs, _ := net.InterfaceAddrs()
	var out []string
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
			out = append(out, n.IP.String())
		}
	}
	return out
}

type domainsData struct {
	Domains []client.Domain
	Form    *form
	Checked *client.Domain // what "verify now" found
}

func (d *Dashboard) domainsPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	return d.renderDomains(w, r, rq, http.StatusOK, nil, nil)
}

func (d *Dashboard) renderDomains(w http.ResponseWriter, r *http.Request, rq *request, status int, f *form, checked *client.Domain) error {
	ds, err := rq.api.Domains(r.Context())
	if err != nil {
		return err
	}
	if f == nil {
		f = &form{Values: map[string]string{}, Errors: map[string]string{}}
	}
	return d.render(w, r, rq, status, "domains", "Domains", domainsData{Domains: ds, Form: f, Checked: checked})
}

func (d *Dashboard) addDomain(w http.ResponseWriter, r *http.Request, rq *request) error {
	f := newForm(r, "name")
	dm, err := rq.api.AddDomain(r.Context(), f.Values["name"])
	if err != nil {
		status, err := f.refuse(err, "name", "domain")
		if err != nil {
			return err
		}
		if msg, ok := f.Errors["domain"]; ok {
			f.Errors["name"] = msg
		}
		return d.renderDomains(w, r, rq, status, f, nil)
	}
	msg := "Domain " + dm.Name + " added."
	if dm.Status != "verified" {
		msg += " Create the record below in its DNS zone, then press Verify now."
	}
	return d.redirect(w, r, rq, Prefix+"domains#domain-"+dm.Name, msg)
}

func (d *Dashboard) verifyDomain(w http.ResponseWriter, r *http.Request, rq *request) error {
	dm, err := rq.api.VerifyDomain(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return d.renderDomains(w, r, rq, http.StatusOK, nil, &dm)
}

func (d *Dashboard) removeDomain(w http.ResponseWriter, r *http.Request, rq *request) error {
	name := r.PathValue("name")
	if err := rq.api.RemoveDomain(r.Context(), name); err != nil {
		return err
	}
	return d.redirect(w, r, rq, Prefix+"domains", "Domain "+name+" removed.")
}

type eventsData struct {
	Events []client.Event
	Next   int64
	More   bool
	After  int64
}

func (d *Dashboard) eventsPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	page, err := d.cfg.API.Events(r.Context(), rq.token, max(after, 0), 100)
	if err != nil {
		return err
	}
	slices.Reverse(page.Events) // newest first
	return d.render(w, r, rq, http.StatusOK, "events", "Events", eventsData{Events: page.Events, Next: page.Next, More: page.More, After: after})
}

// eventStream is GET /v1/events/stream for the session's token: the
// browser's EventSource cannot send a Bearer token, so the dashboard
// hands the request to the API with it.
func (d *Dashboard) eventStream(w http.ResponseWriter, r *http.Request, rq *request) error {
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath, r2.RequestURI = "/v1/events/stream", "", "/v1/events/stream"
	r2.Header.Del("Cookie")
	r2.Header.Set("Authorization", "Bearer "+rq.token)
	d.cfg.API.Handler().ServeHTTP(w, r2)
	return nil
}

type tokensData struct {
	Tokens  []client.Token
	Created *client.TokenCreated
	Scopes  []string
	Form    *form
}

var allScopes = []string{"read", "services:write", "domains:write", "tokens:write", "webhooks:write", "operator"}

func (d *Dashboard) tokensPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	return d.renderTokens(w, r, rq, http.StatusOK, nil, nil)
}

func (d *Dashboard) renderTokens(w http.ResponseWriter, r *http.Request, rq *request, status int, f *form, created *client.TokenCreated) error {
	ts, err := rq.api.Tokens(r.Context())
	if err != nil {
		return err
	}
	if f == nil {
		f = &form{Values: map[string]string{}, Errors: map[string]string{}}
	}
	var scopes []string
	for _, s := range allScopes {
		if rq.id.Has(s) {
			scopes = append(scopes, s)
		}
	}
	return d.render(w, r, rq, status, "tokens", "Tokens", tokensData{Tokens: ts, Created: created, Scopes: scopes, Form: f})
}

func (d *Dashboard) createToken(w http.ResponseWriter, r *http.Request, rq *request) error {
	f := newForm(r, "name", "expires_in")
	scopes := r.PostForm["scopes"]
	t, err := rq.api.CreateToken(r.Context(), client.TokenCreate{Name: f.Values["name"], Scopes: scopes, ExpiresIn: f.Values["expires_in"]})
	if err != nil {
		status, err := f.refuse(err, "name", "scopes", "expires_in")
		if err != nil {
			return err
		}
		return d.renderTokens(w, r, rq, status, f, nil)
	}
	// The value is shown once, on this answer; it is never stored.
	return d.renderTokens(w, r, rq, http.StatusCreated, nil, &t)
}

func (d *Dashboard) revokeToken(w http.ResponseWriter, r *http.Request, rq *request) error {
	name := r.PathValue("name")
	if err := rq.api.RevokeToken(r.Context(), name); err != nil {
		return err
	}
	if name == rq.id.Token && rq.sess != nil {
		d.sessions.close(rq.sid)
		http.Redirect(w, r, Prefix+"signin?msg="+url.QueryEscape("You revoked the token you were signed in with."), http.StatusSeeOther)
		return nil
	}
	return d.redirect(w, r, rq, Prefix+"tokens", "Token "+name+" revoked.")
}

type webhooksData struct {
	Webhooks []client.Webhook
	Created  *client.Webhook
	Form     *form
}

func (d *Dashboard) webhooksPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	return d.renderWebhooks(w, r, rq, http.StatusOK, nil, nil)
}

func (d *Dashboard) renderWebhooks(w http.ResponseWriter, r *http.Request, rq *request, status int, f *form, created *client.Webhook) error {
	ws, err := rq.api.Webhooks(r.Context())
	if err != nil {
		return err
	}
	if f == nil {
		f = &form{Values: map[string]string{}, Errors: map[string]string{}}
	}
	return d.render(w, r, rq, status, "webhooks", "Webhooks", webhooksData{Webhooks: ws, Created: created, Form: f})
}

func (d *Dashboard) addWebhook(w http.ResponseWriter, r *http.Request, rq *request) error {
	f := newForm(r, "url", "events")
	wh, err := rq.api.AddWebhook(r.Context(), client.WebhookCreate{URL: f.Values["url"], Events: split(f.Values["events"])})
	if err != nil {
		status, err := f.refuse(err, "url", "events")
		if err != nil {
			return err
		}
		return d.renderWebhooks(w, r, rq, status, f, nil)
	}
	// The signing secret is shown once, on this answer.
	return d.renderWebhooks(w, r, rq, http.StatusCreated, nil, &wh)
}

func (d *Dashboard) removeWebhook(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := rq.api.RemoveWebhook(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	return d.redirect(w, r, rq, Prefix+"webhooks", "Webhook removed.")
}

func (d *Dashboard) testWebhook(w http.ResponseWriter, r *http.Request, rq *request) error {
	del, err := rq.api.TestWebhook(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	msg := "Test message: " + del.Status
	if del.LastError != "" {
		msg += " (" + del.LastError + ")"
	}
	return d.redirect(w, r, rq, Prefix+"webhooks", msg)
}

type operatorData struct {
	Nodes       []client.Node
	Projects    []client.Project
	Version     client.VersionInfo
	StoreKind   string
	Connected   int
	Metrics     []metricRow
	MetricsNote string
}

func (d *Dashboard) operatorPage(w http.ResponseWriter, r *http.Request, rq *request) error {
	nodes, err := rq.api.Nodes(r.Context())
	if err != nil {
		return err
	}
	projects, err := rq.api.Projects(r.Context())
	if err != nil {
		return err
	}
	v, err := rq.api.Version(r.Context())
	if err != nil {
		return err
	}
	out := operatorData{Nodes: nodes, Projects: projects, Version: v, StoreKind: d.cfg.StoreKind}
	out.Metrics, out.MetricsNote = metrics(r.Context(), rq.api)
	for _, n := range nodes {
		if n.StoreConnected {
			out.Connected++
		}
	}
	return d.render(w, r, rq, http.StatusOK, "operator", "Operator", out)
}
