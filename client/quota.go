package client

import (
	"context"
	"net/http"
	"net/url"
)

// Quota returns the project's limits and use.
func (c *Client) Quota(ctx context.Context) (Quota, error) {
	var q Quota
	return q, c.do(ctx, http.MethodGet, "/v1/quota", nil, &q)
}

// ProjectQuota returns a project's limits, own limits and use (operator).
func (c *Client) ProjectQuota(ctx context.Context, projectID string) (Quota, error) {
	var q Quota
	return q, c.do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(projectID)+"/quota", nil, &q)
}

// SetProjectQuota replaces a project's own limits (operator): a nil field
// follows the default, 0 is no limit.
func (c *Client) SetProjectQuota(ctx context.Context, projectID string, o QuotaLimits) (Quota, error) {
	var q Quota
	return q, c.do(ctx, http.MethodPut, "/v1/projects/"+url.PathEscape(projectID)+"/quota", o, &q)
}
