package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spine-platform/spine/internal/hostname"
)

// Server is the edge: an HTTPS listener that proxies to upstreams, and a
// plain-HTTP listener for challenges and redirects. Its methods are safe for
// concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger

	table atomic.Pointer[table] // never nil

	// warm answers the names the table lacks until the first SetRoutes,
	// if Warm was called; nil otherwise (warm.go). warmCounts counts its
	// look-ups.
	warm       atomic.Pointer[warmState]
	warmCounts warmCounts

	ticketCfg atomic.Pointer[tls.Config] // TLS config with shared ticket keys; nil until SetSessionTicketKeys
	ech       atomic.Pointer[echState]   // nil until SetECHKeys (ech.go)

	// certs maps a served name to its *cachedCert, certsSwept is the
	// clock of its last sweep (contract: certCacheTTL, tls.go).
	certs      sync.Map
	certsSwept atomic.Int64

	mem releaser // returns memory to the OS after bursts of connections (release.go)

	// recMu orders the making of a service's metrics recorder (a
	// service's first request) with its retirement (recorder, retire).
	recMu sync.Mutex

	// setMu serialises SetRoutes and UpdateRoutes. mu guards what follows
	// and the table's writes; never taken by requests. SetRoutes lets go
	// of mu while it yields (the warm-up's puts take it then).
	setMu sync.Mutex
	mu    sync.Mutex
	// released counts the upstreams stopped and the services retired by
	// UpdateRoutes: SetRoutes builds again if it moved during its build.
	released uint64
	// upstreams are the upstreams of the route table, by URL and health
	// check (healthCheck.key); upRefs counts the routes naming each (a
	// route naming one twice counts twice): the last route to go stops it.
	upstreams map[string]*upstream
	upRefs    map[string]int
	// auths are the client-certificate settings of the route table, by
	// clientAuthKey, and settings its routes' settings, by settingsKey:
	// each counts the routes using it. services are its services, by
	// project and name (svcSlot.routes counts theirs).
	auths    map[string]*counted[*clientAuth]
	settings map[string]*counted[*routeSettings]
	services *serviceIndex
	svcs     *svcArena // the slots of services (services.go)
	servers  []*http.Server
	quic     []quicServer // ServeQUIC's
	closed   bool
	// building is true while SetRoutes builds its table (letting go of mu
	// at each yield): a warm-up at its bound then goes on to
	// warmBuildRoutes instead of being forgotten (warm.go).
	building bool

	altSvc atomic.Pointer[[]string] // Alt-Svc of answers over TCP; nil unless ServeQUIC runs
}

// New returns a Server with an empty route table. It starts nothing: call
// SetRoutes, then ServeTLS and ServeHTTP.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "edge"),
		upstreams: make(map[string]*upstream),
		upRefs:    make(map[string]int),
		auths:     make(map[string]*counted[*clientAuth]),
		settings:  make(map[string]*counted[*routeSettings]),
		services:  &serviceIndex{},
		svcs:      &svcArena{},
	}
	s.cfg.Logger = s.log
	s.mem.log = s.log
	s.mem.hold = func() bool { return s.warm.Load() != nil } // no release over a warm-up (release.go)
	s.table.Store(&table{})
	return s
}

// healthOf returns the active health check of r's upstreams.
func (s *Server) healthOf(r *Route) healthCheck {
	h := healthCheck{path: r.HealthPath, interval: r.HealthInterval}
	if h.path == "" {
		h.path = s.cfg.HealthPath
	}
	if h.interval <= 0 {
		h.interval = s.cfg.HealthInterval
	}
	return h
}

// Has reports whether host (in any case, with or without port or trailing
// dot) is in the route table.
func (s *Server) Has(host string) bool {
	return s.table.Load().has(hostname.Clean(host))
}

// ServeTLS serves HTTPS (HTTP/2 and HTTP/1.1) on ln, which must not already
// speak TLS, until Shutdown. Like http.Server, it returns
// http.ErrServerClosed after Shutdown.
func (s *Server) ServeTLS(ln net.Listener) error {
	srv := s.newHTTPServer(httpsHandler{s}, "https")
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	// Frames of at most 16 KiB (the protocol's default): net/http allocates
	// a buffer for a whole frame as soon as its header announces the length,
	// so with its 1 MiB default each connection that announced a big frame
	// and went silent held 1 MiB of heap.
	srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: s.cfg.MaxConcurrentStreams, MaxReadFrameSize: maxReadFrameSize}
	srv.ConnContext = connContext // counts canceled HTTP/2 streams (resets.go)
	if err := s.track(srv); err != nil {
		return err
	}
	if !s.cfg.KeepFreedMemory {
		s.mem.start()
	}
	// The handshake timeout is net/http's: ReadHeaderTimeout.
	hl := newHandshakeListener(ln, s.TLSConfig(), s.cfg.ReadHeaderTimeout, s.log.With("listener", "https"))
	hl.counts = &s.mem.conns
	hl.metrics = s.cfg.Metrics
	return srv.Serve(hl)
}

// ServeHTTP serves plain HTTP on ln until Shutdown: ACME HTTP-01 challenges
// through Config.HTTPChallenge, a 308 redirect to HTTPS for known hosts, 404
// for others. Like http.Server, it returns http.ErrServerClosed after
// Shutdown. (Server is not an http.Handler.)
func (s *Server) ServeHTTP(ln net.Listener) error {
	srv := s.newHTTPServer(httpHandler{s}, "http")
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	if err := s.track(srv); err != nil {
		return err
	}
	return srv.Serve(ln)
}

func (s *Server) newHTTPServer(h http.Handler, name string) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          log.New(serverLog{s.log.With("listener", name)}, "", 0),
		ConnState:         s.cfg.Metrics.ConnState(name), // nil without metrics
	}
}

func (s *Server) track(srv *http.Server) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, srv)
	return nil
}

// Shutdown stops accepting connections, waits (until ctx ends) for requests
// in flight to finish, then stops the health checkers. Upgraded connections
// (WebSocket) are not waited for.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	servers, quics := s.servers, s.quic
	s.quic = nil // a transport closes once
	s.mu.Unlock()

	errs := make([]error, len(servers)+len(quics))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() { errs[i] = srv.Shutdown(ctx) })
	}
	for i, q := range quics {
		wg.Go(func() { errs[len(servers)+i] = shutdownQUIC(ctx, q) })
	}
	wg.Wait()

	s.mem.stop()
	s.mu.Lock()
	ups := make([]*upstream, 0, len(s.upstreams))
	for _, up := range s.upstreams {
		up.stop()
		ups = append(ups, up)
	}
	s.mu.Unlock()
	// Health checkers end promptly once stopped (their requests carry the
	// cancelled context); wait so that nothing logs after Shutdown returns.
	for _, up := range ups {
		select {
		case <-up.done:
		case <-ctx.Done():
			errs = append(errs, ctx.Err())
		}
	}
	return errors.Join(errs...)
}

// serverLog sends http.Server's error log to slog, as warnings. (TLS
// handshake failures, routine at the edge, are logged at Debug by
// handshakeListener, which does the handshakes.)
type serverLog struct{ l *slog.Logger }

func (w serverLog) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}
