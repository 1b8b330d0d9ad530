package edge

import (
	"context"
	"crypto/tls"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spine-platform/spine/internal/hostname"
)

// The warm-up: a node with many hostnames serves before its first full
// route table is built (which reads every service of the store: seconds
// at a million names). Until the first SetRoutes, a name the table lacks
// is asked of a WarmLookup, which reads that one name from the store, and
// the route it returns is put in the table, so that the connection's
// requests, and the next connections for the name, find it there.
//
// What the warm-up adds to the table is a cache of the store, and its
// contract is this: it holds at most warmMaxRoutes routes; ForgetWarm
// (called for every change notice of the store) removes them all, and a
// look-up that was under way when ForgetWarm ran is read again rather
// than put in; the first SetRoutes replaces them with the full table and
// ends the warm-up. A name the lookup does not route is not remembered:
// each connection for it asks again. So a route served during the warm-up
// is never older than the last change notice, as after it.
//
// Bad input never reaches the lookup (a name not in hostname normal form
// is refused at once), and at most warmSlots look-ups run at a time; a
// look-up waits at most warmLookupTimeout for its slot and its answer,
// then the name is refused as unknown. A flood of unknown names costs one
// bounded look-up per connection, counted (WarmStats).

// WarmLookup returns the route the full table will hold for host (in
// hostname normal form), nil if it holds none, and the certificate to
// serve for it (nil: Config.GetCertificate's). It must be safe for
// concurrent use and honour ctx.
type WarmLookup func(ctx context.Context, host string) (*Route, *tls.Certificate, error)

const (
	// warmSlots bounds the look-ups running at once: the store's
	// connections are shared with the first full read.
	warmSlots = 8
	// warmLookupTimeout bounds a look-up's wait for a slot and its answer
	// (a handshake's context has no deadline of its own).
	warmLookupTimeout = 3 * time.Second
	// warmMaxRoutes bounds the routes the warm-up puts in the table; when
	// reached, they are forgotten (as by ForgetWarm) and it starts again.
	warmMaxRoutes = 10000
	// warmBuildRoutes is the bound instead while SetRoutes builds the full
	// table, which ends the warm-up: a forget then retires services and
	// upstreams the build may have taken from the table, so SetRoutes
	// built it all again holding the lock the warm-up's puts wait for (at
	// a million names 6-12 s, and a handshake waited 1.7-2.9 s:
	// BENCHMARKS.md, "Background work holds off while handshakes load
	// certificates").
	warmBuildRoutes = 2 * warmMaxRoutes
	// warmReadAgain bounds the reads of one name that ForgetWarm overtook.
	warmReadAgain = 3
)

// warmState is one warm-up.
type warmState struct {
	lookup WarmLookup
	slots  chan struct{}
	// gen changes at each ForgetWarm (written under Server.mu, read
	// without it before a look-up, so that a look-up does not wait for a
	// SetRoutes in progress to start).
	gen atomic.Uint64
	// certs are the routes the warm-up put in the table (under Server.mu
	// for writes), each with its certificate (a nil one when the lookup
	// gave none); read by handshakes.
	certs sync.Map // host -> *tls.Certificate
	n     int      // entries of certs; under Server.mu
}

// warmCounts counts the warm-up's look-ups, for WarmStats.
type warmCounts struct {
	routed, unrouted, refused, failed atomic.Uint64
}

// WarmStats counts the warm-up's look-ups since the Server was made.
type WarmStats struct {
	// Active reports a warm-up under way (Warm called, no SetRoutes yet).
	Active bool
	// Routed and Unrouted count the look-ups the store answered, with a
	// route and without one.
	Routed, Unrouted uint64
	// Refused counts the names refused without an answer: not a hostname
	// in normal form, no slot or no answer within the time allowed, or
	// changes kept overtaking the read.
	Refused uint64
	// Failed counts the look-ups that returned an error.
	Failed uint64
}

// Warm starts the warm-up: until the first SetRoutes, a name the route
// table lacks is looked up with lookup (see warm.go's contract). Call it
// before serving, with an empty table.
func (s *Server) Warm(lookup WarmLookup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.warm.Store(&warmState{lookup: lookup, slots: make(chan struct{}, warmSlots)})
}

// ForgetWarm removes from the table the routes the warm-up put in, and
// makes the look-ups under way read again: the store changed. Without a
// warm-up under way it does nothing.
func (s *Server) ForgetWarm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.warm.Load(); w != nil {
		s.forgetWarm(w)
	}
}

// forgetWarm is ForgetWarm, with s.mu held.
func (s *Server) forgetWarm(w *warmState) {
	w.gen.Add(1)
	var hosts []string
	w.certs.Range(func(k, _ any) bool {
		hosts = append(hosts, k.(string))
		return true
	})
	w.certs.Clear()
	w.n = 0
	if err := s.updateRoutes(nil, hosts); err != nil {
		s.log.Warn("forgetting the warm-up's routes", "err", err)
	}
}

// WarmStats returns the warm-up's counts.
func (s *Server) WarmStats() WarmStats {
	c := &s.warmCounts
	return WarmStats{Active: s.warm.Load() != nil, Routed: c.routed.Load(), Unrouted: c.unrouted.Load(),
		Refused: c.refused.Load(), Failed: c.failed.Load()}
}

// route returns host's route (host in Clean's form): the table's, else,
// during a warm-up, the lookup's; false if there is none.
func (s *Server) route(ctx context.Context, host string) (route, bool) {
	if rt, ok := s.table.Load().lookup(host); ok {
		return rt, true
	}
	if w := s.warm.Load(); w != nil {
		return s.warmRoute(ctx, w, host)
	}
	return route{}, false
}

// warmCertificate returns the certificate the warm-up's lookup gave for
// host, nil if none (or no warm-up).
func (s *Server) warmCertificate(host string) *tls.Certificate {
	w := s.warm.Load()
	if w == nil {
		return nil
	}
	if c, ok := w.certs.Load(host); ok {
		return c.(*tls.Certificate)
	}
	return nil
}

// warmRoute looks host up with w's lookup, puts the route in the table and
// returns it (false: none).
func (s *Server) warmRoute(ctx context.Context, w *warmState, host string) (route, bool) {
	c := &s.warmCounts
	if hostname.Check(host) != nil {
		c.refused.Add(1)
		return route{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, warmLookupTimeout)
	defer cancel()
	select {
	case w.slots <- struct{}{}:
		defer func() { <-w.slots }()
	case <-ctx.Done():
		c.refused.Add(1)
		return route{}, false
	}
	for range warmReadAgain {
		gen := w.gen.Load()
		start := time.Now()
		r, cert, err := w.lookup(ctx, host)
		s.cfg.Metrics.WarmLookup(time.Since(start)) // nil without metrics
		if err != nil {
			c.failed.Add(1)
			s.log.Debug("warm-up look-up failed", "host", quoteHost(host), "err", err)
			return route{}, false
		}
		if rt, ok, done := s.putWarm(w, gen, host, r, cert); done {
			if ok {
				c.routed.Add(1)
			} else {
				c.unrouted.Add(1)
			}
			return rt, ok
		}
	}
	c.refused.Add(1)
	return route{}, false
}

// putWarm puts r (host's route, or nil) in the table unless the warm-up
// moved on since gen: done is false when ForgetWarm ran since (read
// again); when the full table came in, its route is the answer. ok is
// false when host has no route.
func (s *Server) putWarm(w *warmState, gen uint64, host string, r *Route, cert *tls.Certificate) (rt route, ok, done bool) {
	if s.warm.Load() != w { // the full table is in: no wait for s.mu, which SetRoutes holds a while longer
		rt, ok = s.table.Load().lookup(host)
		return rt, ok, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.warm.Load() != w {
		rt, ok = s.table.Load().lookup(host)
		return rt, ok, true
	}
	if w.gen.Load() != gen {
		return route{}, false, false
	}
	if r == nil {
		return route{}, false, true
	}
	if r.Host != host {
		s.log.Warn("warm-up look-up answered another name", "host", quoteHost(host), "route", quoteHost(r.Host))
		return route{}, false, true
	}
	if w.n >= warmMaxRoutes && !(s.building && w.n < warmBuildRoutes) {
		s.forgetWarm(w)
	}
	if err := s.updateRoutes([]Route{*r}, nil); err != nil {
		s.log.Warn("not serving a route the warm-up read", "host", quoteHost(host), "err", err)
		return route{}, false, true
	}
	if _, had := w.certs.Swap(host, cert); !had {
		w.n++
	}
	rt, ok = s.table.Load().lookup(host)
	return rt, ok, true
}
