package api

import (
	"cmp"
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// auditTimeout bounds the write of one audit entry.
const auditTimeout = 5 * time.Second

// attempt is what the audit trail learns of one change while it is served.
type attempt struct {
	subject string
	code    string // the error code answered, "" if none
}

type attemptKey struct{}

// setSubject names what a change acts on ("service api"), for the audit
// trail, when the path does not name it.
func setSubject(r *http.Request, subject string) {
	if a, ok := r.Context().Value(attemptKey{}).(*attempt); ok {
		a.subject = subject
	}
}

// noteResult records the error code a change was answered with.
func noteResult(r *http.Request, code string) {
	if a, ok := r.Context().Value(attemptKey{}).(*attempt); ok {
		a.code = code
	}
}

// change is auth for a route that changes something: every attempt,
// refused or not, is recorded in the audit trail as action on the subject
// (the path's {name}, or what the handler names with setSubject), with
// the token's name (never its value), the client's address and the
// result. Nothing of the request body is recorded beyond the subject.
func (s *server) change(scope, action string, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := &attempt{subject: cmp.Or(r.PathValue("name"), r.PathValue("id"))}
		r = r.WithContext(context.WithValue(r.Context(), attemptKey{}, a))
		sw := &statusWriter{ResponseWriter: w}
		c, err := s.authenticate(r, scope)
		if err != nil {
			s.writeError(sw, r, err)
		} else if err := h(sw, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), c.Project); err != nil {
			s.writeError(sw, r, err)
		}
		s.record(r, c, action, a, sw.status)
	}
}

// record writes the audit entry of one change; a failure is logged (the
// change itself is done or refused already).
func (s *server) record(r *http.Request, c platform.Caller, action string, a *attempt, status int) {
	if status == 0 {
		status = http.StatusOK
	}
	result := "ok"
	if status >= 400 {
		result = a.code
		if result == "" {
			result = "http_" + strconv.Itoa(status)
		}
	}
	if c.Project.ID == "" && !s.anons.Allow() {
		s.log.Debug("audit entry of a refused change without a valid token dropped (rate bound)", "action", action, "status", status)
		return
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	e := store.AuditEntry{
		ProjectID: c.Project.ID, Token: c.Token.Name, Action: action, Subject: a.subject,
		Result: result, Status: status, Client: client,
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	if err := s.cfg.Platform.Record(ctx, e); err != nil {
		s.log.Warn("audit entry not recorded", "action", action, "subject", a.subject, "project", c.Project.ID, "result", result, "err", err)
	}
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// listAudit answers GET /v1/audit[?project=P&before=ID&limit=N].
func (s *server) listAudit(w http.ResponseWriter, r *http.Request, _ store.Project) error {
	q := r.URL.Query()
	aq := platform.AuditQuery{Project: q.Get("project")}
	for _, p := range []struct {
		name string
		to   *int64
	}{{"before", &aq.Before}, {"limit", new(int64)}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return &apiError{status: http.StatusBadRequest, code: "invalid_" + p.name, msg: p.name + " must be a positive whole number, not " + strconv.Quote(v)}
		}
		*p.to = n
		if p.name == "limit" {
			if n > 1000 {
				return &apiError{status: http.StatusBadRequest, code: "invalid_limit", msg: "limit must be from 1 to 1000"}
			}
			aq.Limit = int(n)
		}
	}
	es, err := s.cfg.Platform.Audit(r.Context(), callerOf(r), aq)
	if err != nil {
		return err
	}
	out := make([]client.AuditEntry, 0, len(es))
	for _, e := range es {
		out = append(out, client.AuditEntry{ID: e.ID, Time: e.At, Project: e.ProjectID, Token: e.Token, Action: e.Action,
			Subject: e.Subject, Result: e.Result, Status: e.Status, Client: e.Client})
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out})
	return nil
}
