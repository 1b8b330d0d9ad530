package syncer

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/store"
)

// warmParts is the warm-up's store (its count only) and edge.
type warmParts struct {
	large          bool // HostnamesAtLeast's answer
	warmed, forgot int
}

func (w *warmParts) HostnamesAtLeast(context.Context, int) (bool, error) { return w.large, nil }
func (w *warmParts) ServiceByHostname(_ context.Context, h string) (store.Service, error) {
	return store.Service{}, store.ErrNotFound
}
func (w *warmParts) DomainsNamed(context.Context, []string) ([]store.Domain, error) { return nil, nil }
func (w *warmParts) GetProject(context.Context, string) (store.Project, error) {
	return store.Project{}, nil
}
func (w *warmParts) UploadedCertFor(context.Context, string) (store.UploadedCert, error) {
	return store.UploadedCert{}, store.ErrNotFound
}
func (w *warmParts) Warm(edge.WarmLookup) { w.warmed++ }
func (w *warmParts) ForgetWarm()          { w.forgot++ }
func (w *warmParts) Certificate(context.Context, string, *store.UploadedCert) *tls.Certificate {
	return nil
}

// WarmUp starts a warm-up only for a large store; Run then applies the
// first sync, retrying it after a failure, the edge forgetting what it
// read at each change notice meanwhile, and applies the changes that came
// during it as a delta once it is in.
func TestWarmUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		st, p, w := &fakeStore{rev: 3}, &parts{}, &warmParts{}
		var failing atomic.Bool // the first sync fails while set
		failing.Store(true)
		l := newLoop(st, p, func(context.Context) error { return nil })
		l.cfg.Interval = time.Hour
		l.cfg.Warm = &WarmConfig{Store: w, Edge: w, Certs: w, Hold: func(context.Context) error {
			if failing.Load() {
				return errors.New("store slow")
			}
			return nil
		}}
		if l.WarmUp(ctx) || w.warmed != 0 {
			t.Fatal("a warm-up for a small store")
		}
		w.large = true
		if !l.WarmUp(ctx) || w.warmed != 1 {
			t.Fatal("no warm-up for a large store")
		}
		if r, c, err := l.lookup(ctx, "unknown.example.com"); r != nil || c != nil || err != nil {
			t.Errorf("lookup of an unknown name = %v, %v, %v", r, c, err)
		}

		changes := make(chan struct{}, 1)
		done := make(chan struct{})
		go func() { l.Run(ctx, changes); close(done) }()
		synctest.Wait() // the first sync failed: waiting to try again
		if l.Synced() || p.setRoutes != 0 {
			t.Fatal("applied a failed first sync")
		}
		changes <- struct{}{}
		synctest.Wait()
		if w.forgot != 1 {
			t.Errorf("a change notice during the warm-up: ForgetWarm called %d times, want 1", w.forgot)
		}
		failing.Store(false)
		time.Sleep(warmRetry)
		synctest.Wait()
		if !l.Synced() || p.setRoutes != 1 || l.FirstSync() != warmRetry {
			t.Fatalf("after the retry: synced %v, SetRoutes %d, first sync %v (want %v)", l.Synced(), p.setRoutes, l.FirstSync(), warmRetry)
		}
		if st.changesAsked != 1 {
			t.Errorf("the changes during the warm-up: ChangesSince asked %d times after the first sync, want 1", st.changesAsked)
		}
		if !slices.Equal(p.hosts[0], []string{"ech.example.com"}) {
			t.Errorf("managed hosts %v", p.hosts)
		}
		cancel()
		<-done
	})
}
