package serving

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
	"iter"
	"log/slog"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

// State is what a node serves, as computed from one read of the store.
type State struct {
	// Services are the services served, each with only the hostnames it
	// may serve.
	Services []store.Service
	// Wildcards are the verified domains whose services share one
	// wildcard certificate ("*.domain", obtained through DNS-01).
	Wildcards []string
	// Sum is the fingerprint of Services and Wildcards: two States with
	// the same Sum serve the same.
	Sum [sha256.Size]byte
	// digests are the digest of each of Services (Compute's), which
	// Applied.Full keeps instead of digesting each service again.
	digests [][sha256.Size]byte
}

// Compute returns the State of svcs and domains (every service and every
// domain of the store). It takes svcs: its services are filtered and
// changed in place. wildcard reports whether DNS-01 can be solved for
// a verified domain's names; a service the edge cannot route is left out
// and logged.
func Compute(svcs []store.Service, domains []store.Domain, wildcard func(store.Domain) bool, log *slog.Logger) State {
	var s State
	for _, d := range domains {
		if d.Status == store.DomainVerified && wildcard(d) {
			s.Wildcards = append(s.Wildcards, d.Name)
		}
	}
	// ServedOnly and routable filter svcs in place, and intern makes its
	// services share the strings a read repeats in every row.
	s.Services = routable(platform.ServedOnly(svcs, domains), log)
	intern(s.Services)
	s.Sum, s.digests = fingerprintDigests(s.Services, s.Wildcards)
	return s
}

// RouteList is the edge's routes of a list of services, one for each of
// their hostnames, each marked Suspended if its project is (503 page, no
// upstream): made one at a time as the edge reads them (edge.RouteSeq)
// rather than held as a list. The list (152 B a route) was 152 MB of
// garbage at a node's first sync of a million hostnames, a sixth of what
// it allocated (BENCHMARKS.md, "The first sync's transient lists and the
// warm-up's one collection"). It is left out of Compute: a State whose
// Sum was applied already needs none.
type RouteList struct {
	svcs      []store.Service
	suspended map[string]bool
	n         int
}

// Routes returns the RouteList of svcs, the projects of suspended
// suspended. It holds svcs, which the caller leaves as they are while it
// uses the list.
func Routes(svcs []store.Service, suspended map[string]bool) *RouteList {
	l := &RouteList{svcs: svcs, suspended: suspended}
	var y sched.Yielder
	for i := range svcs {
		// Even a count: a million services are 224 MB to read, 20 ms of
		// a processor that handshakes waited for (a runtime trace of
		// PostgreSQL's warm-up).
		y.Every(i)
		l.n += len(svcs[i].Hostnames)
	}
	return l
}

// Len returns the number of routes: of hostnames.
func (l *RouteList) Len() int { return l.n }

// All yields the routes in the order of the services and of their
// hostnames, one Route reused (edge.RouteSeq): the yielder copies what
// it keeps. It never yields the processor (sched): the edge's build does,
// between routes, letting go of its lock first.
func (l *RouteList) All() iter.Seq[*edge.Route] {
	return func(yield func(*edge.Route) bool) {
		var r edge.Route
		for i := range l.svcs {
			s := &l.svcs[i]
			if len(s.Hostnames) == 0 {
				continue
			}
			r = routeOf(s, "")
			r.Suspended = l.suspended[s.ProjectID]
			for _, h := range s.Hostnames {
				r.Host = h
				if !yield(&r) {
					return
				}
			}
		}
	}
}

// Slice returns the routes as a list, for a few services (one, or a
// snapshot's hot set).
func (l *RouteList) Slice() []edge.Route { return l.AppendTo(make([]edge.Route, 0, l.n)) }

// AppendTo appends the routes to dst and returns the extended list.
func (l *RouteList) AppendTo(dst []edge.Route) []edge.Route {
	for r := range l.All() {
		dst = append(dst, *r)
	}
	return dst
}

// Managed returns the hostnames whose certificates are managed: those of
// the projects not suspended (a suspended name is not renewed), then
// extra. The list is made at its size with extra in it: an append to a
// list of a million names made a copy of it (16 MB allocated and copied
// at once), which held a node's one processor for 48 ms during its
// warm-up (BENCHMARKS.md, "What a runtime trace of a 1M node found on
// PostgreSQL").
func (l *RouteList) Managed(extra ...string) []string {
	var y sched.Yielder
	n := l.n
	if len(l.suspended) > 0 {
		n = 0
		for i := range l.svcs {
			y.Every(i)
			if !l.suspended[l.svcs[i].ProjectID] {
				n += len(l.svcs[i].Hostnames)
			}
		}
	}
	hosts := make([]string, 0, n+len(extra))
	for i := range l.svcs {
		y.Every(i)
		if !l.suspended[l.svcs[i].ProjectID] {
			hosts = append(hosts, l.svcs[i].Hostnames...)
		}
	}
	return append(hosts, extra...)
}

// SuspendedHosts returns the hostnames routed to the suspended page.
func (l *RouteList) SuspendedHosts() map[string]bool {
	out := map[string]bool{}
	if len(l.suspended) == 0 {
		return out
	}
	var y sched.Yielder
	for i := range l.svcs {
		y.Every(i)
		if l.suspended[l.svcs[i].ProjectID] {
			for _, h := range l.svcs[i].Hostnames {
				out[h] = true
			}
		}
	}
	return out
}

// routeOf returns the route of s for host.
func routeOf(s *store.Service, host string) edge.Route {
	r := edge.Route{
		Host:       host,
		Project:    s.ProjectID,
		Service:    s.Name,
		Upstreams:  s.Upstreams,
		HSTSMaxAge: s.HSTSMaxAge,
		// "" and 0 leave the edge's defaults.
		HealthPath:     s.HealthPath,
		HealthInterval: s.HealthInterval,
		ClientAuth:     s.ClientAuth,
	}
	if s.ClientCA != "" {
		r.ClientCA = []byte(s.ClientCA)
	}
	return r
}

// routable leaves out the services the edge would refuse (an upstream stored
// before the platform checked it as the edge does, say), so that one bad
// service never keeps every other project's changes from going live. It
// filters svcs in place (the caller's list is its own) and returns it.
func routable(svcs []store.Service, log *slog.Logger) []store.Service {
	out := svcs[:0]
	var y sched.Yielder
	var check edge.RouteChecker // each distinct upstream parsed once
	for _, s := range svcs {
		y.Maybe()
		if err := checkRoutes(&check, &s); err != nil {
			log.Warn("not serving a service the edge cannot route", "project", s.ProjectID, "service", s.Name, "err", err)
			continue
		}
		out = append(out, s)
	}
	clear(svcs[len(out):]) // what was left out holds no strings alive
	return out
}

// checkRoutes checks the route of each hostname of s, without making
// routesOf's list: the routes of one service differ by their host only.
func checkRoutes(check *edge.RouteChecker, s *store.Service) error {
	if len(s.Hostnames) == 0 {
		return nil
	}
	r := routeOf(s, s.Hostnames[0])
	for _, h := range s.Hostnames {
		r.Host = h
		if err := check.Check(r); err != nil {
			return err
		}
	}
	return nil
}

// intern makes the services of svcs share one copy of each string and
// list that a read repeats in many rows (the project, the domain, the
// upstreams, the health-check path and the client-certificate settings):
// a read makes a copy of each for every row, and what a node keeps of the
// services (the edge's routes, Applied) would keep them all alive.
func intern(svcs []store.Service) {
	strs := map[string]string{}
	str := func(s *string) {
		if *s == "" {
			return
		}
		if v, ok := strs[*s]; ok {
			*s = v
			return
		}
		strs[*s] = *s
	}
	lists := map[string][]string{}
	var y sched.Yielder
	var key []byte
	for i := range svcs {
		y.Maybe()
		s := &svcs[i]
		str(&s.ProjectID)
		str(&s.Domain)
		str(&s.HealthPath)
		str(&s.ClientCA)
		str(&s.ClientAuth)
		key = key[:0]
		for _, u := range s.Upstreams {
			key = binary.AppendUvarint(key, uint64(len(u)))
			key = append(key, u...)
		}
		if l, ok := lists[string(key)]; ok {
			s.Upstreams = l
		} else if len(lists) < 4096 { // the distinct lists of a table are few; a bound all the same
			lists[string(key)] = s.Upstreams
		}
	}
}

// fingerprint digests the services served and the wildcard domains. The
// services' part is an order-independent combination (the XOR) of each
// service's digest, so that Applied keeps it by a delta: the digests of
// the services that left out, those of the ones that came in.
func fingerprint(svcs []store.Service, wild []string) [sha256.Size]byte {
	sum, _ := fingerprintDigests(svcs, wild)
	return sum
}

// fingerprintDigests is fingerprint, and the digest of each service.
func fingerprintDigests(svcs []store.Service, wild []string) ([sha256.Size]byte, [][sha256.Size]byte) {
	var acc [sha256.Size]byte
	var y sched.Yielder
	ds := make([][sha256.Size]byte, len(svcs))
	for i := range svcs {
		y.Maybe()
		ds[i] = digest(&svcs[i])
		xorInto(&acc, ds[i])
	}
	return combine(acc, wild), ds
}

// combine digests the services' combined digest and the wildcard domains.
func combine(acc [sha256.Size]byte, wild []string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(acc[:])
	var buf []byte
	buf = binary.AppendUvarint(buf, uint64(len(wild)))
	h.Write(buf)
	for _, w := range wild {
		buf = binary.AppendUvarint(buf[:0], uint64(len(w)))
		h.Write(buf)
		io.WriteString(h, w)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func xorInto(acc *[sha256.Size]byte, d [sha256.Size]byte) {
	for i := range acc {
		acc[i] ^= d[i]
	}
}

// digest digests every field of one service served.
func digest(s *store.Service) [sha256.Size]byte {
	var arr [512]byte
	return sha256.Sum256(appendDigestInput(arr[:0], s))
}

// appendDigestInput appends what digest hashes of s to buf: every field,
// strings and lists prefixed by their length.
func appendDigestInput(buf []byte, s *store.Service) []byte {
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	strs := func(ss []string) {
		buf = binary.AppendUvarint(buf, uint64(len(ss)))
		for _, s := range ss {
			str(s)
		}
	}
	str(s.ID)
	str(s.ProjectID)
	str(s.Name)
	str(s.Domain)
	strs(s.Hostnames)
	strs(s.Upstreams)
	str(s.HealthPath)
	str(s.ClientCA)
	str(s.ClientAuth)
	buf = binary.AppendVarint(buf, int64(s.HSTSMaxAge))
	buf = binary.AppendVarint(buf, int64(s.HealthInterval))
	buf = binary.AppendVarint(buf, s.CreatedAt.UnixNano())
	buf = binary.AppendVarint(buf, s.UpdatedAt.UnixNano())
	return buf
}

// ServiceRoutes returns the routes of one service as Compute and Routes
// make them from a full read: only its hostnames that it may
// serve under domains (those at or above its hostnames suffice:
// platform.ServedOnly looks up no other), none if the edge would refuse
// one of them, each marked Suspended if its project is. It serves a node
// that answers a hostname before its first full read (syncer's warm-up)
// exactly as that read will.
func ServiceRoutes(svc store.Service, domains []store.Domain, suspended bool, log *slog.Logger) []edge.Route {
	svcs := routable(platform.ServedOnly([]store.Service{svc}, domains), log)
	if len(svcs) == 0 {
		return nil
	}
	return Routes(svcs, map[string]bool{svc.ProjectID: suspended}).Slice()
}
