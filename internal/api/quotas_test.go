package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/store"
)

func intp(v int) *int { return &v }

// A write past a limit is refused with 429 quota_exceeded naming the limit
// and the use; the operator sets a project's own limits; a tenant reads
// its own.
func TestQuotas(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	e.db.SetDefaultQuota(store.Quota{Services: 2})
	e.service(t, e.one, "a", "p0.example")
	e.service(t, e.one, "b", "p0.example")
	_, err := e.one.CreateService(ctx, client.ServiceCreate{Name: "c", Upstreams: []string{"http://127.0.0.1:9"}})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusTooManyRequests || ce.Code != "quota_exceeded" || ce.Quota == nil ||
		*ce.Quota != (client.QuotaExceeded{Limit: "services", Max: 2, Used: 2}) {
		t.Fatalf("third service: %#v", err)
	}
	q, err := e.one.Quota(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if q.Limits.Services == nil || *q.Limits.Services != 2 || q.Limits.Domains != nil || q.Usage.Services != 2 || q.Usage.Domains != 1 || q.Override != nil {
		t.Errorf("tenant's quota = %+v", q)
	}

	// Only the operator reads or sets another project's limits.
	for _, c := range []*client.Client{e.one, e.two} {
		if _, err := c.SetProjectQuota(ctx, e.ids[e.one], client.QuotaLimits{Services: intp(0)}); !client.IsCode(err, "missing_scope") {
			t.Errorf("a tenant set a quota: %v", err)
		}
		if _, err := c.ProjectQuota(ctx, e.ids[e.two]); !client.IsCode(err, "missing_scope") {
			t.Errorf("a tenant read another's quota: %v", err)
		}
	}
	q, err = e.admin.SetProjectQuota(ctx, e.ids[e.one], client.QuotaLimits{Services: intp(3), Domains: intp(0)})
	if err != nil {
		t.Fatal(err)
	}
	if *q.Limits.Services != 3 || q.Limits.Domains != nil || q.Override == nil || *q.Override.Services != 3 || *q.Override.Domains != 0 || q.Override.Hostnames != nil {
		t.Errorf("after the operator's override: %+v %+v", q, q.Override)
	}
	e.service(t, e.one, "c", "p0.example")
	if _, err := e.admin.SetProjectQuota(ctx, "nobody", client.QuotaLimits{}); !client.IsCode(err, "not_found") {
		t.Errorf("a missing project: %v", err)
	}
	if _, err := e.admin.SetProjectQuota(ctx, e.ids[e.one], client.QuotaLimits{Hostnames: intp(-1)}); !client.IsCode(err, "invalid_quota") {
		t.Errorf("a negative limit: %v", err)
	}
	q, err = e.admin.ProjectQuota(ctx, e.ids[e.one])
	if err != nil || *q.Override.Services != 3 {
		t.Errorf("the refused write changed the override: %+v %v", q, err)
	}
}
