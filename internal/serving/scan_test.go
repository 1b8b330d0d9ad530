package serving

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// ScanSum, one service at a time, gives the fingerprint of a full read
// (Compute, WithSuspended, WithUploaded): hostnames a domain does not
// serve left out, a service the edge cannot route left out, wildcard
// domains, suspended projects and uploads folded in; a change of any
// service's field changes it; the scan's error is returned.
func TestScanSumMatchesCompute(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	domains, wild := testDomains()
	at := time.Unix(1, 0).UTC()
	svcs := []store.Service{
		{ID: "1", ProjectID: "p", Name: "web", Hostnames: []string{"www.a.test", "x.w.test"}, Upstreams: []string{"http://127.0.0.1:1"}, CreatedAt: at, UpdatedAt: at},
		{ID: "2", ProjectID: "p", Name: "mixed", Hostnames: []string{"hidden.pending.test", "m.a.test", "stolen.q.test"},
			Upstreams: []string{"http://127.0.0.1:2", "http://127.0.0.1:3"}, HealthPath: "/h", HealthInterval: time.Second, CreatedAt: at, UpdatedAt: at},
		{ID: "3", ProjectID: "p", Name: "bad", Hostnames: []string{"bad.a.test"}, Upstreams: []string{"http://127.0.0.1:99999"}, CreatedAt: at, UpdatedAt: at},
		{ID: "4", ProjectID: "p", Name: "none", Hostnames: []string{"n.pending.test"}, Upstreams: []string{"http://127.0.0.1:1"}, CreatedAt: at, UpdatedAt: at},
		{ID: "5", ProjectID: "q", Name: "q", Hostnames: []string{"q.q.test"}, Upstreams: []string{"http://127.0.0.1:1"}, HSTSMaxAge: 60, CreatedAt: at, UpdatedAt: at},
	}
	suspended := map[string]bool{"q": true}
	uploads := []store.UploadedCert{{Hostname: "q.q.test", ProjectID: "q", SHA256: "ab"}}
	full := func(svcs []store.Service) [32]byte {
		st := Compute(slices.Clone(svcs), domains, wild, log)
		return WithUploaded(WithSuspended(st.Sum, suspended), uploads)
	}
	scanOf := func(svcs []store.Service) func(context.Context, func(*store.Service) error) error {
		return func(_ context.Context, fn func(*store.Service) error) error {
			var s store.Service // reused, as the store's scan does
			for _, v := range svcs {
				s = v
				s.Hostnames = append(s.Hostnames[:0:0], v.Hostnames...)
				if err := fn(&s); err != nil {
					return err
				}
			}
			return nil
		}
	}
	ctx := context.Background()
	got, err := ScanSum(ctx, scanOf(svcs), domains, wild, suspended, uploads)
	if err != nil {
		t.Fatal(err)
	}
	if want := full(svcs); got != want {
		t.Fatal("ScanSum differs from a full read's fingerprint")
	}
	changed := slices.Clone(svcs)
	changed[1].UpdatedAt = at.Add(time.Nanosecond)
	if got, _ := ScanSum(ctx, scanOf(changed), domains, wild, suspended, uploads); got == full(svcs) || got != full(changed) {
		t.Error("a service's update time changed: ScanSum did not follow")
	}
	if got, _ := ScanSum(ctx, scanOf(svcs), domains, wild, nil, uploads); got == full(svcs) {
		t.Error("a project unsuspended: ScanSum did not change")
	}
	boom := errors.New("store away")
	if _, err := ScanSum(ctx, func(context.Context, func(*store.Service) error) error { return boom }, domains, wild, nil, nil); !errors.Is(err, boom) {
		t.Errorf("the scan's error: %v", err)
	}
}
