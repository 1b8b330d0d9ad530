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
		var relaxed, restored atomic.Int32
		l.cfg.Warm = &WarmConfig{Store: w, Edge: w, Certs: w, Hold: func(context.Context) error {
			if failing.Load() {
				return errors.New("store slow")
			}
			return nil
		}, Relax: func() func() {
			relaxed.Add(1)
			return func() { restored.Add(1) }
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
		if relaxed.Load() != 1 || restored.Load() != 0 {
			t.Errorf("during the first sync: relaxed %d times, restored %d; want 1 and 0", relaxed.Load(), restored.Load())
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
		if relaxed.Load() != 1 || restored.Load() != 1 {
			t.Errorf("the first sync applied: relaxed %d times, restored %d; want 1 and 1", relaxed.Load(), restored.Load())
		}
		if !slices.Equal(p.hosts[0], []string{"ech.example.com"}) {
			t.Errorf("managed hosts %v", p.hosts)
		}
		cancel()
		<-done
	})
}

// certParts is a warm-up store with one verified domain, example.com,
// whose services are the hostnames of services, and certificates stored
// for the hostnames of stored.
type certParts struct {
	warmParts
	services map[string]bool
	stored   map[string]bool
	wildcard bool // example.com's names share a wildcard certificate
}

func (w *certParts) ServiceByHostname(_ context.Context, h string) (store.Service, error) {
	if !w.services[h] {
		return store.Service{}, store.ErrNotFound
	}
	return store.Service{ID: "id-" + h, ProjectID: "p", Name: h, Hostnames: []string{h}, Upstreams: []string{"http://127.0.0.1:9"}}, nil
}

func (w *certParts) DomainsNamed(context.Context, []string) ([]store.Domain, error) {
	return []store.Domain{{Name: "example.com", ProjectID: "p", Status: store.DomainVerified}}, nil
}

func (w *certParts) Certificate(_ context.Context, h string, _ *store.UploadedCert) *tls.Certificate {
	if w.stored[h] {
		return &tls.Certificate{Certificate: [][]byte{[]byte(h)}}
	}
	return nil
}

// A name the warm-up serves without a stored certificate (a service created
// since the start) is handed to the certificate manager at its first
// look-up, before the first sync ends, once; a name with a stored
// certificate, or under a domain whose names share a wildcard certificate,
// is left to the sync, and nothing is handed over after it.
func TestWarmUpManagesANameWithoutACertificate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		st, p := &fakeStore{rev: 3}, &parts{}
		w := &certParts{warmParts: warmParts{large: true},
			services: map[string]bool{"new.example.com": true, "old.example.com": true, "late.example.com": true},
			stored:   map[string]bool{"old.example.com": true}}
		release := make(chan struct{})
		l := newLoop(st, p, func(context.Context) error { return nil })
		l.cfg.Interval = time.Hour
		wildcard := false
		l.cfg.Wildcard = func(store.Domain) bool { return wildcard }
		l.cfg.Warm = &WarmConfig{Store: w, Edge: w, Certs: w, Hold: func(ctx context.Context) error {
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
		if !l.WarmUp(ctx) {
			t.Fatal("no warm-up")
		}
		done := make(chan struct{})
		go func() { l.Run(ctx, make(chan struct{})); close(done) }()
		synctest.Wait() // the first sync held

		for _, h := range []string{"new.example.com", "new.example.com", "old.example.com"} {
			r, cert, err := l.lookup(ctx, h)
			if err != nil || r == nil {
				t.Fatalf("lookup of %s = %v, %v, %v", h, r, cert, err)
			}
			if (cert != nil) != w.stored[h] {
				t.Errorf("lookup of %s gave certificate %v", h, cert)
			}
		}
		if !slices.Equal(p.added, []string{"new.example.com"}) || len(p.hosts) != 0 {
			t.Fatalf("before the first sync: handed to the manager %v (SyncShared %v), want new.example.com once", p.added, p.hosts)
		}
		wildcard = true
		l.lookup(ctx, "late.example.com")
		wildcard = false
		if len(p.added) != 1 {
			t.Errorf("a name sharing a wildcard certificate was handed to the manager: %v", p.added)
		}

		close(release)
		synctest.Wait()
		if !l.Synced() {
			t.Fatal("the first sync was not applied")
		}
		l.lookup(ctx, "late.example.com")
		if len(p.added) != 1 {
			t.Errorf("after the first sync: handed to the manager %v", p.added)
		}
		cancel()
		<-done
	})
}

// togetherParts is certParts counting the reads under way at once, and
// holding uploaded certificates: up.example.com's of project p, the one
// that serves it, other.example.com's of another project.
type togetherParts struct {
	certParts
	inFlight, most, projectReads atomic.Int32
}

func (w *togetherParts) read() {
	n := w.inFlight.Add(1)
	for m := w.most.Load(); n > m && !w.most.CompareAndSwap(m, n); m = w.most.Load() {
	}
	time.Sleep(time.Millisecond) // a round trip, on synctest's clock
	w.inFlight.Add(-1)
}

func (w *togetherParts) ServiceByHostname(ctx context.Context, h string) (store.Service, error) {
	w.read()
	return w.certParts.ServiceByHostname(ctx, h)
}

func (w *togetherParts) DomainsNamed(ctx context.Context, names []string) ([]store.Domain, error) {
	w.read()
	return w.certParts.DomainsNamed(ctx, names)
}

func (w *togetherParts) GetProject(context.Context, string) (store.Project, error) {
	w.projectReads.Add(1)
	w.read()
	return store.Project{ID: "p"}, nil
}

func (w *togetherParts) UploadedCertFor(_ context.Context, h string) (store.UploadedCert, error) {
	w.read()
	switch h {
	case "up.example.com":
		return store.UploadedCert{Hostname: h, ProjectID: "p"}, nil
	case "other.example.com":
		return store.UploadedCert{Hostname: h, ProjectID: "q"}, nil
	}
	return store.UploadedCert{}, store.ErrNotFound
}

func (w *togetherParts) Certificate(_ context.Context, h string, up *store.UploadedCert) *tls.Certificate {
	if up != nil {
		return &tls.Certificate{Certificate: [][]byte{[]byte("uploaded " + h)}}
	}
	w.read()
	if w.stored[h] {
		return &tls.Certificate{Certificate: [][]byte{[]byte("stored " + h)}}
	}
	return nil
}

// oneReadParts is togetherParts that also reads a name's service,
// domains, upload and certificate keys in one read (ReadWarm, as
// *store.DB on PostgreSQL) and makes the certificate from those keys
// (FromKeys, as *certs.Stored).
type oneReadParts struct {
	*togetherParts
	readWarm, fromKeys atomic.Int32
}

func (w *oneReadParts) ReadWarm(ctx context.Context, host string, domains, keyPrefixes []string, keyLimit int) (store.WarmRead, error) {
	w.readWarm.Add(1)
	w.read()
	var r store.WarmRead
	r.Service, r.ServiceErr = w.certParts.ServiceByHostname(ctx, host)
	ds, err := w.certParts.DomainsNamed(ctx, domains)
	if err != nil {
		return store.WarmRead{}, err
	}
	r.Domains = ds
	switch host {
	case "up.example.com":
		r.Uploaded = store.UploadedCert{Hostname: host, ProjectID: "p"}
	case "other.example.com":
		r.Uploaded = store.UploadedCert{Hostname: host, ProjectID: "q"}
	default:
		r.UploadedErr = store.ErrNotFound
	}
	if slices.Equal(keyPrefixes, []string{"keys/" + host + "/"}) && keyLimit == 9 && w.stored[host] {
		r.Keys = []store.KeyValue{{Key: "keys/" + host + "/cert", Value: []byte("stored " + host)}}
	}
	return r, nil
}

func (w *oneReadParts) KeyPrefixes(host string) ([]string, int) {
	return []string{"keys/" + host + "/"}, 9
}

func (w *oneReadParts) FromKeys(_ context.Context, host string, up *store.UploadedCert, kvs []store.KeyValue) *tls.Certificate {
	w.fromKeys.Add(1)
	if up != nil {
		return &tls.Certificate{Certificate: [][]byte{[]byte("uploaded " + host)}}
	}
	if len(kvs) == 1 {
		return &tls.Certificate{Certificate: [][]byte{kvs[0].Value}}
	}
	return nil
}

// With Parallel, a name's service, domains, uploaded and stored
// certificates are read at once, or in one read when the store and the
// certificates can (ReadWarm, FromKeys); without, one after the other.
// Either way the answer is the same (the upload of the project the name
// is routed to, else the stored certificate), and the project is read
// once for the warm-up, again after a change notice (forget).
func TestWarmLookupReadsTogether(t *testing.T) {
	for _, mode := range []string{"one after the other", "at once", "in one read"} {
		synctest.Test(t, func(t *testing.T) {
			hosts := map[string]bool{"up.example.com": true, "other.example.com": true, "plain.example.com": true}
			tw := &togetherParts{certParts: certParts{warmParts: warmParts{large: true}, services: hosts, stored: hosts}}
			l := newLoop(&fakeStore{rev: 3}, &parts{}, func(context.Context) error { return nil })
			parallel := mode != "one after the other"
			l.cfg.Warm = &WarmConfig{Store: tw, Edge: tw, Certs: tw, Parallel: parallel}
			one := &oneReadParts{togetherParts: tw}
			if mode == "in one read" {
				l.cfg.Warm.Store, l.cfg.Warm.Certs = one, one
			}
			w := tw
			for h, want := range map[string]string{
				"up.example.com":    "uploaded up.example.com",
				"other.example.com": "stored other.example.com", // another project's upload is not served
				"plain.example.com": "stored plain.example.com",
			} {
				r, cert, err := l.lookup(t.Context(), h)
				if err != nil || r == nil || cert == nil {
					t.Fatalf("%s: lookup of %s = %v, %v, %v", mode, h, r, cert, err)
				}
				if got := string(cert.Certificate[0]); got != want {
					t.Errorf("%s: lookup of %s served %q, want %q", mode, h, got, want)
				}
			}
			if want := map[string]int32{"one after the other": 1, "at once": 4, "in one read": 1}[mode]; w.most.Load() != want {
				t.Errorf("%s: %d reads under way at once, want %d", mode, w.most.Load(), want)
			}
			if mode == "in one read" && (one.readWarm.Load() != 3 || one.fromKeys.Load() != 3) {
				t.Errorf("in one read: ReadWarm %d times, FromKeys %d times for three names; want 3 each", one.readWarm.Load(), one.fromKeys.Load())
			}
			if n := w.projectReads.Load(); n != 1 {
				t.Errorf("%s: the project read %d times for three names, want once", mode, n)
			}
			gen := l.projects.generation()
			l.projects.forget() // a change notice
			l.projects.put(store.Project{ID: "late"}, gen)
			if _, ok := l.projects.get("late"); ok {
				t.Error("a project read before a change notice was kept after it")
			}
			if _, _, err := l.lookup(t.Context(), "plain.example.com"); err != nil || w.projectReads.Load() != 2 {
				t.Errorf("after a change notice: %v, the project read %d times in all, want 2", err, w.projectReads.Load())
			}
		})
	}
}
