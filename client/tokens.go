package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Tokens lists the project's tokens (never their values).
func (c *Client) Tokens(ctx context.Context) ([]Token, error) {
	var out struct{ Tokens []Token }
	return out.Tokens, c.do(ctx, http.MethodGet, "/v1/tokens", nil, &out)
}

// CreateToken makes a token in the project; its value is in the answer,
// this once.
func (c *Client) CreateToken(ctx context.Context, in TokenCreate) (TokenCreated, error) {
	var t TokenCreated
	return t, c.do(ctx, http.MethodPost, "/v1/tokens", in, &t)
}

// RevokeToken deletes the project's token of that name.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(name), nil, nil)
}

// AuditQuery selects audit entries (GET /v1/audit).
type AuditQuery struct {
	Project string // an operator's filter: a project's ID or name
	Before  int64  // entries older than this ID
	Limit   int    // at most this many (1 to 1000)
}

// Audit lists audit entries, newest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	v := url.Values{}
	if q.Project != "" {
		v.Set("project", q.Project)
	}
	if q.Before != 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	path := "/v1/audit"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out struct{ Entries []AuditEntry }
	return out.Entries, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Projects lists every project (operator).
func (c *Client) Projects(ctx context.Context) ([]Project, error) {
	var out struct{ Projects []Project }
	return out.Projects, c.do(ctx, http.MethodGet, "/v1/projects", nil, &out)
}

// CreateProject makes a project (operator); the answer holds its first
// token, this once.
func (c *Client) CreateProject(ctx context.Context, name string) (ProjectCreated, error) {
	var p ProjectCreated
	return p, c.do(ctx, http.MethodPost, "/v1/projects", ProjectCreate{Name: name}, &p)
}

// GetProject returns a project by ID or name (operator).
func (c *Client) GetProject(ctx context.Context, name string) (Project, error) {
	var p Project
	return p, c.do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(name), nil, &p)
}

// SuspendProject suspends a project (operator): its services answer 503,
// its certificates are not renewed, its tokens change nothing.
func (c *Client) SuspendProject(ctx context.Context, name string) (Project, error) {
	var p Project
	return p, c.do(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(name)+"/suspend", nil, &p)
}

// ResumeProject lifts a suspension (operator).
func (c *Client) ResumeProject(ctx context.Context, name string) (Project, error) {
	var p Project
	return p, c.do(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(name)+"/resume", nil, &p)
}

// DeleteProject deletes a project and everything it holds (operator).
func (c *Client) DeleteProject(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/projects/"+url.PathEscape(name), nil, nil)
}
