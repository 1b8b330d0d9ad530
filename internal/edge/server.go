package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/metrics"
)

// Server is the edge: an HTTPS listener that proxies to upstreams, and a
// plain-HTTP listener for challenges and redirects. Its methods are safe for
// concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger

	table atomic.Pointer[table] // never nil

	ticketCfg atomic.Pointer[tls.Config] // TLS config with shared ticket keys; nil until SetSessionTicketKeys
	ech       atomic.Pointer[echState]   // nil until SetECHKeys (ech.go)

	// certs maps a served name to its *cachedCert; bounded by the route
	// table, as SetRoutes clears it (contract: certCacheTTL, tls.go).
	certs sync.Map

	mem releaser // returns memory to the OS after bursts of connections (release.go)

	mu sync.Mutex // serialises SetRoutes and Shutdown; never taken by requests
	// upstreams are the upstreams of the route table, by URL and health
	// check (healthCheck.key).
	upstreams map[string]*upstream
	servers   []*http.Server
	quic      []quicServer // ServeQUIC's
	closed    bool

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
	}
	s.cfg.Logger = s.log
	s.mem.log = s.log
	s.table.Store(&table{routes: map[string]*route{}})
	return s
}

// SetRoutes replaces the route table with routes, whole. It validates every
// route first; on error the current table stays as it was. Upstreams keep
// their health state and connections across calls for as long as some route
// names them; upstreams no longer named are stopped. Requests in flight
// finish on the table they started with.
func (s *Server) SetRoutes(routes []Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("edge: server is shut down")
	}

	next := &table{routes: make(map[string]*route, len(routes))}
	// Client-certificate settings by mode and CA: the routes of one
	// service share one, and a swap keeps the previous table's (their
	// configurations and ticket keys).
	auths := map[string]*clientAuth{}
	if prev := s.table.Load(); prev != nil {
		for _, old := range prev.routes {
			if old.mtls != nil {
				auths[clientAuthKey(&old.Route)] = old.mtls
			}
		}
	}
	keep := make(map[string]*upstream, len(s.upstreams))
	recorders := serviceRecorders{reg: s.cfg.Metrics, by: map[[2]string]*metrics.Service{}}
	var created []*upstream
	for i := range routes {
		r := routes[i]
		urls, err := validateRoute(&r)
		if err != nil {
			return err
		}
		if _, dup := next.routes[r.Host]; dup {
			return fmt.Errorf("%w: host %s appears twice", ErrInvalidRoute, r.Host)
		}
		r.Upstreams = make([]string, len(urls))
		rt := &route{Route: r, pool: pool{ups: make([]*upstream, len(urls))}, metrics: recorders.of(r.Project, r.Service)}
		if r.HSTSMaxAge > 0 {
			rt.hsts = []string{"max-age=" + strconv.Itoa(r.HSTSMaxAge)}
		}
		if r.ClientAuth != "" {
			key := clientAuthKey(&r)
			if rt.mtls = auths[key]; rt.mtls == nil {
				if rt.mtls, err = s.newClientAuth(&r); err != nil {
					return fmt.Errorf("%w: host %s: %v", ErrInvalidRoute, r.Host, err)
				}
				auths[key] = rt.mtls
			}
		}
		if r.Suspended {
			rt.Upstreams, rt.pool = nil, pool{}
			next.routes[r.Host] = rt
			continue
		}
		health := s.healthOf(&r)
		for j, u := range urls {
			r.Upstreams[j] = u.String()
			// Routes that name one URL with the same health check share
			// its connections and health state.
			key := health.key(u.String())
			up := keep[key]
			if up == nil {
				up = s.upstreams[key]
			}
			if up == nil {
				up = newUpstream(u.String(), u, health, &s.cfg)
				created = append(created, up)
			}
			keep[key] = up
			rt.pool.ups[j] = up
		}
		next.routes[r.Host] = rt
	}

	s.table.Store(next)
	s.certs.Clear()
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.ForgetServices(recorders.labels()) // a service that left takes its series along
	}
	for _, up := range created {
		up.start(&s.cfg)
	}
	for key, up := range s.upstreams {
		if keep[key] == nil {
			up.stop() // drained: requests in flight finish, then its connections close
		}
	}
	s.upstreams = keep
	s.log.Info("routes updated", "routes", len(next.routes), "upstreams", len(keep), "new_upstreams", len(created))
	return nil
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

// serviceRecorders are the metrics recorders of one route table's
// services, asked of the registry once per service, not per hostname.
type serviceRecorders struct {
	reg *metrics.Registry
	by  map[[2]string]*metrics.Service
}

func (sr *serviceRecorders) of(project, service string) *metrics.Service {
	if sr.reg == nil {
		return nil
	}
	k := [2]string{project, service}
	rec := sr.by[k]
	if rec == nil {
		rec = sr.reg.Service(project, service)
		sr.by[k] = rec
	}
	return rec
}

// labels is the set of the services' labels, for Registry.ForgetServices.
func (sr *serviceRecorders) labels() map[string]bool {
	out := make(map[string]bool, len(sr.by))
	for _, rec := range sr.by {
		out[rec.Label()] = true
	}
	return out
}
