package certs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/spine-platform/spine/internal/ca"
)

// Config configures a Manager. It is not changed once handed to New.
type Config struct {
	// Storage holds certificates, keys and ACME accounts; nodes that share
	// it share certificates. Required.
	Storage certmagic.Storage

	// Issuers are tried in order until one issues. An *certmagic.ACMEIssuer
	// is a template: New binds a copy of it to the manager's certmagic
	// config (certmagic.NewACMEIssuer), so a literal such as
	// &certmagic.ACMEIssuer{CA: url, Email: e, Agreed: true} is enough.
	// Default: the internal CA kept in Storage (ca.Load, default options).
	Issuers []certmagic.Issuer

	// Status receives every change of a hostname's status, written in the
	// background in order of changes, the latest status per hostname. If
	// nil, status is kept in memory only (see Manager.Status).
	Status StatusStore

	// Logger receives the manager's and certmagic's logs. If nil, nothing
	// is logged.
	Logger *zap.Logger

	// RenewalWindowRatio is the part of a certificate's lifetime, at its
	// end, in which it is renewed. The lifetime counts from NotBefore, so
	// it includes any backdating for clock skew. Default:
	// certmagic.DefaultRenewalWindowRatio (1/3).
	RenewalWindowRatio float64

	// RenewCheckInterval is how often managed certificates are checked for
	// renewal; keep it well below lifetime × RenewalWindowRatio. Default:
	// certmagic.DefaultRenewCheckInterval (10 minutes).
	RenewCheckInterval time.Duration
}

// Manager obtains, renews and serves the certificates of a set of
// hostnames. It is safe for concurrent use.
type Manager struct {
	magic   atomic.Pointer[certmagic.Config] // set once in New
	cache   *certmagic.Cache
	storage certmagic.Storage
	log     *zap.Logger

	// challengers answer ACME HTTP-01 challenges (the ACME issuers).
	challengers []httpChallenger

	// managed is the hostname set handshakes read without a lock; Sync
	// replaces it whole.
	managed atomic.Pointer[nameSet]

	syncMu  sync.Mutex                    // serialises Sync and Stop
	cancels map[string]context.CancelFunc // per managed name: stops its retries

	ctx      context.Context // lives until Stop
	cancel   context.CancelFunc
	stopOnce sync.Once

	status *statusBook
}

// New builds a Manager. It does not manage any name until Sync. Call Stop
// when done with it.
func New(cfg Config) (*Manager, error) {
	if cfg.Storage == nil {
		return nil, errors.New("certs: Config.Storage is required")
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("certs")

	issuers := slices.Clone(cfg.Issuers)
	if len(issuers) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		internal, err := ca.Load(ctx, cfg.Storage, ca.Options{})
		if err != nil {
			return nil, fmt.Errorf("certs: loading the internal CA: %w", err)
		}
		issuers = []certmagic.Issuer{internal}
	}

	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		storage: cfg.Storage,
		log:     log,
		cancels: make(map[string]context.CancelFunc),
		ctx:     ctx,
		cancel:  cancel,
	}
	m.managed.Store(&nameSet{})
	m.status = newStatusBook(cfg.Status, log)

	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		// One config manages every certificate of this cache.
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			if c := m.magic.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("certs: manager not ready")
		},
		RenewCheckInterval: cfg.RenewCheckInterval,
		Logger:             log.Named("cache"),
	})
	magic := certmagic.New(m.cache, certmagic.Config{
		Storage:            cfg.Storage,
		Issuers:            issuers,
		KeySource:          certmagic.StandardKeyGenerator{KeyType: certmagic.P256},
		OnEvent:            m.onEvent,
		ShouldEmitFunc:     shouldEmit,
		Logger:             log,
		RenewalWindowRatio: cfg.RenewalWindowRatio,
	})
	// certmagic.New fills unset fields from the package-level
	// certmagic.Default; whatever it holds, a Manager never issues during
	// handshakes and never answers an unknown name with another's
	// certificate.
	magic.OnDemand = nil
	magic.DefaultServerName = ""
	magic.FallbackServerName = ""
	for i, iss := range issuers {
		if tmpl, ok := iss.(*certmagic.ACMEIssuer); ok {
			iss = certmagic.NewACMEIssuer(magic, *tmpl)
			issuers[i] = iss
		}
		if hc, ok := iss.(httpChallenger); ok {
			m.challengers = append(m.challengers, hc)
		}
	}
	magic.Issuers = issuers
	m.magic.Store(magic)

	go m.status.run(ctx)
	return m, nil
}

// Sync makes hostnames the set of managed names. Names not managed yet are
// managed at once, in the background: their certificate is loaded from
// storage or obtained, and their status starts as pending. Names no longer
// present stop being served and renewed. Sync is idempotent. ctx bounds
// the call only; management runs until the name is removed or Stop.
func (m *Manager) Sync(ctx context.Context, hostnames []string) {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	if m.ctx.Err() != nil {
		return // stopped
	}

	want := make(nameSet, len(hostnames))
	for _, h := range hostnames {
		if n := normalize(h); n != "" {
			want[n] = struct{}{}
		}
	}
	old := *m.managed.Load()
	var added, removed []string
	for n := range want {
		if _, ok := old[n]; !ok {
			added = append(added, n)
		}
	}
	for n := range old {
		if _, ok := want[n]; !ok {
			removed = append(removed, n)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return
	}
	slices.Sort(added)
	slices.Sort(removed)

	// Swap the set first: handshakes for removed names fail from now on,
	// and events for them are ignored.
	m.managed.Store(&want)

	for _, n := range removed {
		m.cancels[n]()
		delete(m.cancels, n)
		m.cache.RemoveManaged([]certmagic.SubjectIssuer{{Subject: n}}) // any issuer
		m.status.forget(n)
		m.log.Info("stopped managing certificate", zap.String("hostname", n))
	}
	for _, n := range added {
		m.status.pending(n)
		nctx, cancel := context.WithCancel(m.ctx)
		m.cancels[n] = cancel
		if err := m.magic.Load().ManageAsync(nctx, []string{n}); err != nil {
			m.status.failed(n, err)
			m.log.Error("managing certificate", zap.String("hostname", n), zap.Error(err))
			continue
		}
		m.log.Info("managing certificate", zap.String("hostname", n))
	}
}

// Stop stops renewals, retries and the cache's maintenance, and writes the
// last status changes. The Manager serves no new name afterwards.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		m.syncMu.Lock()
		m.cancel()
		m.syncMu.Unlock()
		m.cache.Stop()
		m.status.wait()
	})
}

// nameSet is a set of normalised hostnames; "*.example.com" covers one
// label under example.com.
type nameSet map[string]struct{}

func (s nameSet) has(name string) bool {
	_, ok := s[name]
	return ok
}

// allows reports whether a handshake for name may be served.
func (s nameSet) allows(name string) bool {
	if name == "" {
		return false
	}
	if s.has(name) {
		return true
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		return s.has("*" + name[i:])
	}
	return false
}

// normalize lowercases name and drops a trailing dot. It does not allocate
// for a name that is already normal.
func normalize(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
}
