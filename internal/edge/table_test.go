package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/spine-platform/spine/internal/metrics"
)

// routesByHost returns the table's routes by host, as given (with the
// upstream URLs normalised), and the keys of the server's upstreams.
func (s *Server) routesByHost() (map[string]Route, []string) {
	out := map[string]Route{}
	for rt := range s.table.Load().all() {
		out[rt.Host] = rt.Route()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return out, slices.Sorted(maps.Keys(s.upstreams))
}

// A delta leaves the edge serving exactly what SetRoutes of the resulting
// routes would: the routes set are served, the ones removed are gone, the
// others untouched, and an upstream no route names any more is stopped.
func TestUpdateRoutesMatchesSetRoutes(t *testing.T) {
	upA, upB, upC := namedUpstream(t, "A"), namedUpstream(t, "B"), namedUpstream(t, "C")
	reg := metrics.New(metrics.Sources{})
	h := startEdge(t, Config{Metrics: reg},
		Route{Host: "a.test", Project: "p", Service: "a", Upstreams: []string{upA.URL}},
		Route{Host: "b.test", Project: "p", Service: "b", Upstreams: []string{upB.URL}},
		Route{Host: "k.test", Project: "p", Service: "k", Upstreams: []string{upA.URL}, HSTSMaxAge: 60},
	)
	c := h.client(t, false)
	if _, body := do(t, c, "GET", "https://b.test/", nil); body != "B" {
		t.Fatalf("b.test before the change answered %q, want B", body)
	}
	bUp := h.s.upstreamOf(upB.URL)

	set := []Route{
		{Host: "b.test", Project: "p", Service: "b", Upstreams: []string{upA.URL}}, // moved to A
		{Host: "c.test", Project: "q", Service: "c", Upstreams: []string{upC.URL}}, // new
	}
	if err := h.s.UpdateRoutes(set, []string{"a.test", "gone.test"}); err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"b.test": "A", "c.test": "C", "k.test": "A"} {
		if resp, body := do(t, c, "GET", "https://"+host+"/", nil); resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("%s answered %d %q, want 200 %q", host, resp.StatusCode, body, want)
		}
	}
	if h.s.Has("a.test") {
		t.Error("a.test is still routed after its removal")
	}
	if _, err := h.dialTLS("a.test"); err == nil {
		t.Error("a handshake for the removed a.test succeeded")
	}
	if h.s.upstreamOf(upB.URL) != nil || !bUp.stopped.Load() {
		t.Error("upstream B, named by no route any more, is still there")
	}

	// The same routes through SetRoutes, on another server.
	full := startEdge(t, Config{},
		Route{Host: "k.test", Project: "p", Service: "k", Upstreams: []string{upA.URL}, HSTSMaxAge: 60},
		set[0], set[1])
	gotRoutes, gotUps := h.s.routesByHost()
	wantRoutes, wantUps := full.s.routesByHost()
	if !reflect.DeepEqual(gotRoutes, wantRoutes) {
		t.Errorf("after the delta the table is\n%+v\nafter SetRoutes\n%+v", gotRoutes, wantRoutes)
	}
	if !slices.Equal(gotUps, wantUps) {
		t.Errorf("after the delta the upstreams are %v, after SetRoutes %v", gotUps, wantUps)
	}
	if n := h.s.table.Load().n; n != 3 {
		t.Errorf("the table counts %d routes, want 3", n)
	}

	// Removing the last route of a service forgets its series; the
	// others keep theirs.
	if err := h.s.UpdateRoutes(nil, []string{"c.test"}); err != nil {
		t.Fatal(err)
	}
	h.s.mu.Lock()
	hasC, hasK := h.s.services.get("q", "c") != nil, h.s.services.get("p", "k") != nil
	h.s.mu.Unlock()
	if hasC || !hasK {
		t.Errorf("services after c.test left: q/c present %v (want false), p/k present %v (want true)", hasC, hasK)
	}
	if h.s.upstreamOf(upC.URL) != nil {
		t.Error("upstream C is still there after its last route left")
	}
}

// A delta with an invalid route changes nothing.
func TestUpdateRoutesInvalidChangesNothing(t *testing.T) {
	upA := namedUpstream(t, "A")
	h := startEdge(t, Config{}, Route{Host: "a.test", Upstreams: []string{upA.URL}})
	before, beforeUps := h.s.routesByHost()
	for name, set := range map[string][]Route{
		"bad upstream": {{Host: "x.test", Upstreams: []string{"ftp://127.0.0.1:1"}}},
		"twice":        {{Host: "x.test", Upstreams: []string{upA.URL}}, {Host: "x.test", Upstreams: []string{upA.URL}}},
		"bad host":     {{Host: "X..test", Upstreams: []string{upA.URL}}},
	} {
		if err := h.s.UpdateRoutes(set, []string{"a.test"}); err == nil {
			t.Errorf("%s: UpdateRoutes accepted it", name)
		}
		after, afterUps := h.s.routesByHost()
		if !reflect.DeepEqual(before, after) || !slices.Equal(beforeUps, afterUps) {
			t.Errorf("%s: a refused delta changed the table to %+v (upstreams %v)", name, after, afterUps)
		}
	}
	if _, body := do(t, h.client(t, false), "GET", "https://a.test/", nil); body != "A" {
		t.Errorf("a.test answered %q after refused deltas, want A", body)
	}
}

// tableServer returns a Server with no listener, for tests of the route
// table alone (its upstreams, not listening, fail their health checks
// unlogged).
func tableServer(t *testing.T, cfg Config) *Server {
	cfg.Logger, cfg.HealthInterval = slog.New(slog.DiscardHandler), time.Hour
	s := New(cfg)
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

// checkServices fails t unless s's services are those of its table:
// every route's service is the one indexed under its project and name,
// counts the routes that name it, and is not retired; and the index holds
// no other.
func checkServices(t *testing.T, s *Server) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[*routeService]int32{}
	for rt := range s.table.Load().all() {
		if got := s.services.get(rt.Project(), rt.Service); got != rt.routeService {
			t.Fatalf("%s: route's service %s/%s is %p, the index's %p", rt.Host, rt.Project(), rt.Service, rt.routeService, got)
		}
		counts[rt.routeService]++
	}
	indexed := 0
	for sv := range s.services.all() {
		indexed++
		if sv.routes != counts[sv] || sv.gone {
			t.Fatalf("service %s/%s counts %d routes (gone %v), the table has %d", sv.Project(), sv.Service, sv.routes, sv.gone, counts[sv])
		}
	}
	if indexed != len(counts) {
		t.Fatalf("the index holds %d services, the table names %d", indexed, len(counts))
	}
}

// Every host of a table spread over all its shards is found, with its
// route; a name that is not in it is not, whatever shard it falls in and
// wherever it would sort.
func TestTableLookup(t *testing.T) {
	s := tableServer(t, Config{})
	routes := make([]Route, 20_000) // about 20 a shard: none empty
	for i := range routes {
		routes[i] = Route{Host: "h" + strconv.Itoa(i) + ".test", Project: "p", Service: "s" + strconv.Itoa(i%7),
			Upstreams: []string{"http://127.0.0.1:" + strconv.Itoa(1+i%3)}}
	}
	if err := s.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	tb := s.table.Load()
	empty := 0
	for _, sh := range tb.shards {
		if sh == nil || len(sh.routes) == 0 {
			empty++
		}
	}
	if tb.n != len(routes) || empty > 0 {
		t.Fatalf("table of %d routes with %d empty shards, want %d routes in every shard", tb.n, empty, len(routes))
	}
	for _, r := range routes {
		rt := tb.lookup(r.Host)
		if rt == nil {
			t.Fatalf("%s is not found", r.Host)
		}
		if got := rt.Route(); got.Host != r.Host || got.Service != r.Service || got.Upstreams[0] != r.Upstreams[0] {
			t.Fatalf("%s: found %+v, want %+v", r.Host, got, r)
		}
	}
	for _, host := range []string{"", "a.test", "h.test", "h20000.test", "h1.tes", "h1.testx", "zzz.test", "h-1.test"} {
		if tb.lookup(host) != nil || s.Has(host) {
			t.Errorf("%q is found in a table without it", host)
		}
	}
	if !s.Has("H17.test:443") {
		t.Error("Has does not find H17.test:443")
	}
	checkServices(t, s)
}

// SetRoutes refuses a host given twice, and keeps the table it had.
func TestSetRoutesHostTwice(t *testing.T) {
	s := tableServer(t, Config{})
	up := []string{"http://127.0.0.1:1"}
	if err := s.SetRoutes([]Route{{Host: "a.test", Upstreams: up}}); err != nil {
		t.Fatal(err)
	}
	err := s.SetRoutes([]Route{{Host: "b.test", Upstreams: up}, {Host: "c.test", Upstreams: up}, {Host: "b.test", Upstreams: up}})
	if !errors.Is(err, ErrInvalidRoute) || !strings.Contains(err.Error(), "host b.test appears twice") {
		t.Fatalf("SetRoutes with b.test twice: %v", err)
	}
	if !s.Has("a.test") || s.Has("b.test") || s.Has("c.test") {
		t.Error("a refused SetRoutes changed the table")
	}
	checkServices(t, s)
}

// reusedRoutes is a RouteSeq that yields every route in one Route it
// overwrites, as serving.RouteList does; n is what its Len says.
type reusedRoutes struct {
	routes []Route
	n      int
}

func (r reusedRoutes) Len() int { return r.n }

func (r reusedRoutes) All() iter.Seq[*Route] {
	return func(yield func(*Route) bool) {
		var one Route
		for _, rt := range r.routes {
			one = rt
			if !yield(&one) {
				return
			}
		}
	}
}

// A table built from a source that reuses one Route is the table of the
// same routes as a list; a source whose count is not its Len is refused,
// and the table stays as it was.
func TestSetRouteSeq(t *testing.T) {
	up := []string{"http://127.0.0.1:1"}
	routes := []Route{
		{Host: "a.test", Project: "p", Service: "a", Upstreams: up},
		{Host: "a2.test", Project: "p", Service: "a", Upstreams: up},
		{Host: "b.test", Project: "p", Service: "b", Upstreams: []string{"http://127.0.0.1:2/x"}, HSTSMaxAge: 60},
		{Host: "c.test", Project: "q", Service: "c", Upstreams: up, Suspended: true},
		{Host: "d.test", Project: "q", Service: "d", Upstreams: up, HealthPath: "/up", HealthInterval: time.Minute},
	}
	for range 300 { // past a yield (every 64th route) and a fill's 256
		i := len(routes)
		routes = append(routes, Route{Host: fmt.Sprintf("h%d.test", i), Project: "r", Service: fmt.Sprintf("s%d", i%7), Upstreams: up})
	}
	s, list := tableServer(t, Config{}), tableServer(t, Config{})
	if err := s.SetRouteSeq(reusedRoutes{routes, len(routes)}); err != nil {
		t.Fatal(err)
	}
	if err := list.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	got, gotUps := s.routesByHost()
	want, wantUps := list.routesByHost()
	if !reflect.DeepEqual(got, want) || !slices.Equal(gotUps, wantUps) || len(got) != len(routes) {
		t.Errorf("from a reused Route: %d routes %v\nfrom the list: %d routes %v", len(got), gotUps, len(want), wantUps)
	}
	checkServices(t, s)

	for _, n := range []int{len(routes) - 1, len(routes) + 1, 0} {
		err := s.SetRouteSeq(reusedRoutes{routes[:3], n})
		if err == nil || !strings.Contains(err.Error(), "route source of") {
			t.Errorf("a source of 3 routes whose Len is %d: %v, want refused", n, err)
		}
	}
	if after, _ := s.routesByHost(); !reflect.DeepEqual(after, got) {
		t.Error("a refused source changed the table")
	}
	checkServices(t, s)
}

// tableContents is what a table routes, by host.
func tableContents(tb *table) map[string]Route {
	out := map[string]Route{}
	for rt := range tb.all() {
		out[rt.Host] = rt.Route()
	}
	return out
}

// A run of deltas and swaps, checked after each against a model: the
// table routes what the model holds, each service is shared by its routes
// and counts them, every table published before is unchanged (a delta
// copies the shards it touches; the others are shared, not copied), and a
// service that left is retired.
func TestTableChanges(t *testing.T) {
	s := tableServer(t, Config{})
	rnd := rand.New(rand.NewPCG(1, 2))
	model := map[string]Route{}
	route := func() Route {
		// Few hosts and services, so that changes hit routes and services
		// already there: a host moving to another service, a service
		// gaining and losing hosts.
		i, sv := rnd.IntN(3000), rnd.IntN(400)
		return Route{Host: "h" + strconv.Itoa(i) + ".test", Project: "p" + strconv.Itoa(sv%3), Service: "s" + strconv.Itoa(sv),
			Upstreams: []string{"http://127.0.0.1:" + strconv.Itoa(1+sv%5)}}
	}
	type published struct {
		t        *table
		contents map[string]Route
	}
	var old []published
	for step := range 150 {
		before := s.table.Load()
		var svsBefore []*routeService
		for sv := range s.services.all() {
			svsBefore = append(svsBefore, sv)
		}
		if step%50 == 0 {
			// A swap: half the model kept, some new.
			next := map[string]Route{}
			for h, r := range model {
				if rnd.IntN(2) == 0 {
					next[h] = r
				}
			}
			for range 500 {
				r := route()
				next[r.Host] = r
			}
			if err := s.SetRoutes(slices.Collect(maps.Values(next))); err != nil {
				t.Fatal(err)
			}
			model = next
		} else {
			var set []Route
			var remove []string
			inSet := map[string]bool{}
			for range rnd.IntN(20) {
				if r := route(); !inSet[r.Host] {
					inSet[r.Host] = true
					set = append(set, r)
				}
			}
			for range rnd.IntN(20) {
				remove = append(remove, route().Host)
			}
			if err := s.UpdateRoutes(set, remove); err != nil {
				t.Fatal(err)
			}
			for _, h := range remove {
				delete(model, h)
			}
			for _, r := range set {
				model[r.Host] = r
			}
			after := s.table.Load()
			for i := range before.shards {
				if before.shards[i] == after.shards[i] {
					continue // shared
				}
				touched := false
				for _, r := range set {
					sh, _ := hashOf(r.Host)
					touched = touched || sh == i
				}
				for _, h := range remove {
					sh, _ := hashOf(h)
					touched = touched || sh == i && before.has(h)
				}
				if !touched {
					t.Fatalf("step %d: shard %d was copied, though the delta does not touch it", step, i)
				}
			}
		}
		got, _ := s.routesByHost()
		if !maps.EqualFunc(got, model, func(a, b Route) bool { return reflect.DeepEqual(a, b) }) {
			t.Fatalf("step %d: the table routes %d hosts, the model %d (or they differ)", step, len(got), len(model))
		}
		checkServices(t, s)
		names := map[[2]string]bool{}
		for _, r := range model {
			names[[2]string{r.Project, r.Service}] = true
		}
		for _, sv := range svsBefore {
			kept := names[[2]string{sv.Project(), sv.Service}]
			if cur := s.services.get(sv.Project(), sv.Service); kept != (cur == sv) || kept == sv.gone {
				t.Fatalf("step %d: service %s/%s still routed %v: indexed %p (was %p), retired %v",
					step, sv.Project(), sv.Service, kept, cur, sv, sv.gone)
			}
		}
		if step%10 != 0 {
			continue
		}
		for _, p := range old {
			if !reflect.DeepEqual(tableContents(p.t), p.contents) {
				t.Fatalf("step %d: a table published before changed", step)
			}
		}
		old = append(old, published{s.table.Load(), tableContents(s.table.Load())})
	}
}

// A swap keeps the service of a project and name still routed, with its
// recorder, even when none of its hostnames is kept; the swap that leaves
// it out retires it: its series go, and a request on an old route makes
// no recorder.
func TestServiceKeptAcrossSwap(t *testing.T) {
	reg := metrics.New(metrics.Sources{})
	s := tableServer(t, Config{Metrics: reg})
	up := []string{"http://127.0.0.1:1"}
	if err := s.SetRoutes([]Route{{Host: "a.test", Project: "p", Service: "web", Upstreams: up}}); err != nil {
		t.Fatal(err)
	}
	old := s.table.Load().lookup("a.test")
	m := s.recorder(old.routeService)
	m.Observe(200, 1, 1, time.Millisecond)
	if err := s.SetRoutes([]Route{
		{Host: "b.test", Project: "p", Service: "web", Upstreams: up},
		{Host: "c.test", Project: "p", Service: "other", Upstreams: up},
	}); err != nil {
		t.Fatal(err)
	}
	if rt := s.table.Load().lookup("b.test"); rt.routeService != old.routeService || s.recorder(rt.routeService) != m {
		t.Error("the swap gave p/web, routed by b.test only now, another service or recorder")
	}
	checkServices(t, s)
	if err := s.SetRoutes([]Route{{Host: "c.test", Project: "p", Service: "other", Upstreams: up}}); err != nil {
		t.Fatal(err)
	}
	series := map[string]string{"service": "p/web", "code": "200", "proto": "1.1"}
	if _, ok := metrics.Lookup(reg.Gatherer(), "spine_http_requests_total", series); ok {
		t.Error("p/web's series are still there after it left the table")
	}
	if !old.gone || s.services.get("p", "web") != nil {
		t.Error("p/web is not retired after it left the table")
	}
	other := s.table.Load().lookup("c.test").routeService
	if err := s.SetRoutes(nil); err != nil {
		t.Fatal(err)
	}
	if s.recorder(other) != nil {
		t.Error("a request on the old route of p/other, retired before any request, made a recorder")
	}
	checkServices(t, s)
}

// A shard's search finds a host among routes of the same key, and for
// any key, wherever its guess falls (below the answer, above it, on it),
// the place a bisection would: checked against a linear scan on shards of
// even, clustered and equal keys.
func TestShardFind(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	spreads := map[string]func() uint32{
		"even":      rnd.Uint32,
		"high":      func() uint32 { return 1<<31 | rnd.Uint32()>>1 },
		"low":       func() uint32 { return rnd.Uint32() >> 12 },
		"few":       func() uint32 { return rnd.Uint32() % 4 << 30 },
		"one value": func() uint32 { return 7 },
	}
	for _, n := range []int{0, 1, 2, 3, 17, 1000} {
		for name, spread := range spreads {
			sh := &shard{}
			for i := range n {
				sh.keys = append(sh.keys, spread())
				sh.routes = append(sh.routes, route{Host: "h" + strconv.Itoa(i) + ".test"})
			}
			sort.Sort((*byKey)(sh))
			for range 1000 {
				key, host := spread(), "h"+strconv.Itoa(rnd.IntN(n+2))+".test"
				if rnd.IntN(4) == 0 {
					key = rnd.Uint32()
				}
				if n > 0 && rnd.IntN(2) == 0 {
					j := rnd.IntN(n)
					key, host = sh.keys[j], sh.routes[j].Host
				}
				want := 0
				for want < n && (sh.keys[want] < key || sh.keys[want] == key && sh.routes[want].Host < host) {
					want++
				}
				wantOK := want < n && sh.keys[want] == key && sh.routes[want].Host == host
				if got, ok := sh.find(key, host); got != want || ok != wantOK {
					t.Fatalf("%d keys %s: find(%d, %s) = %d, %v; want %d, %v", n, name, key, host, got, ok, want, wantOK)
				}
			}
		}
	}
}

// SetRoutes lets go of the table's lock while it yields, so a warm-up's
// route is put meanwhile: whether the build had reached its service by
// then (the build's own service and upstream replace the warm-up's, which
// are retired and stopped, the series kept) or not (the build takes the
// warm-up's). A warm-up forgotten during the build (what the build took
// may have been stopped) makes it build again. Every way, the table holds
// every route, its services and upstreams live.
func TestSetRoutesLetsTheWarmUpIn(t *testing.T) {
	for _, c := range []struct {
		name     string
		at       int  // the route index at whose yield the warm-up puts w.test
		forgetAt int  // and at whose yield it is forgotten (ForgetWarm), 0 never
		shared   bool // w.test comes last, its upstream that of the others, its settings its own
	}{
		{"put before the build reaches it", 0, 0, false},
		{"put after", 128, 0, false},
		{"put, then forgotten during the build", 0, 192, false},
		{"put after the build made its upstream, before its settings", 64, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := metrics.New(metrics.Sources{})
			s := tableServer(t, Config{Metrics: reg})
			warm := Route{Host: "w.test", Project: "p", Service: "web", Upstreams: []string{"http://127.0.0.1:2"}}
			s.Warm(func(ctx context.Context, host string) (*Route, *tls.Certificate, error) {
				if host != warm.Host {
					return nil, nil, nil
				}
				r := warm
				return &r, nil, nil
			})
			var routes []Route
			if c.shared {
				warm.Upstreams, warm.HSTSMaxAge = []string{"http://127.0.0.1:1"}, 60
			} else {
				routes = append(routes, warm)
			}
			for i := range 300 {
				routes = append(routes, Route{Host: fmt.Sprintf("r%d.test", i), Project: "p", Service: fmt.Sprintf("s%d", i),
					Upstreams: []string{"http://127.0.0.1:1"}})
			}
			if c.shared {
				routes = append(routes, warm)
			}
			var put *route
			yields := 0
			testHookBuildYield = func(i int) {
				if yields++; c.forgetAt != 0 && i == c.forgetAt {
					s.ForgetWarm()
				}
				if i != c.at {
					return
				}
				put = s.route(t.Context(), warm.Host) // takes s.mu: waits for the whole build unless it let go
				if put == nil {
					t.Fatal("the warm-up's look-up during the build gave no route")
				}
				s.recorder(put.routeService).Observe(200, 1, 1, time.Millisecond)
			}
			defer func() { testHookBuildYield = nil }()
			if err := s.SetRoutes(routes); err != nil {
				t.Fatal(err)
			}
			if put == nil {
				t.Fatalf("the build yielded %d times, never at route %d", yields, c.at)
			}
			if yields != 5 {
				t.Errorf("the hook ran %d times, want 5 (a build again after a forgotten warm-up lets go of nothing)", yields)
			}
			checkServices(t, s)
			if n := s.table.Load().n; n != len(routes) {
				t.Errorf("the table holds %d routes, want %d", n, len(routes))
			}
			s.mu.Lock()
			for key, up := range s.upstreams {
				if up.stopped.Load() {
					t.Errorf("upstream %s of the table is stopped", key)
				}
			}
			orphan := ""
			for rt := range s.table.Load().all() {
				for _, up := range rt.pool.ups {
					if s.upstreams[up.health.key(up.key)] != up {
						orphan = rt.Host
					}
				}
			}
			nups := len(s.upstreams)
			s.mu.Unlock()
			if orphan != "" {
				t.Errorf("%s names an upstream the table does not hold (never stopped)", orphan)
			}
			if want := map[bool]int{false: 2, true: 1}[c.shared]; nups != want {
				t.Errorf("%d upstreams, want %d", nups, want)
			}
			rt := s.table.Load().lookup(warm.Host)
			if rt.pool.ups[0].stopped.Load() {
				t.Error("w.test's upstream is stopped")
			}
			if rt.routeService != put.routeService && !put.routeService.gone {
				t.Error("the warm-up's service, replaced, is not marked gone")
			}
			series := map[string]string{"service": "p/web", "code": "200", "proto": "1.1"}
			if _, ok := metrics.Lookup(reg.Gatherer(), "spine_http_requests_total", series); !ok && c.forgetAt == 0 {
				t.Error("p/web's series, counted during the warm-up, are gone though it is in the table")
			}
			if s.warm.Load() != nil {
				t.Error("the warm-up is not over after SetRoutes")
			}
		})
	}
}

// A routeService is 32 bytes, one per service of the table (a million
// at a million services): its project and recorder are behind one pointer.
func TestRouteServiceSize(t *testing.T) {
	if n := unsafe.Sizeof(routeService{}); n != 32 {
		t.Errorf("routeService is %d bytes, want 32", n)
	}
}

// A whole table's build takes its services from arrays of at most
// svcSlabLen, sized by the routes left, each service its own.
func TestSvcSlab(t *testing.T) {
	sl := &svcSlab{left: 3}
	a, b, c := sl.next(), sl.next(), sl.next()
	if a == b || b == c || a == c {
		t.Fatal("svcSlab handed out one service twice")
	}
	if cap(sl.free) != 0 {
		t.Errorf("three routes left made an array of %d more", cap(sl.free))
	}
	sl.left = 10 * svcSlabLen
	sl.next()
	if n := len(sl.free) + 1; n != svcSlabLen {
		t.Errorf("array of %d services, want at most %d", n, svcSlabLen)
	}

	// SetRoutes of more services than one array: each route finds its own.
	s := tableServer(t, Config{})
	var routes []Route
	for i := range svcSlabLen + 10 {
		routes = append(routes, Route{Host: fmt.Sprintf("s%d.example.com", i), Project: "prj_1",
			Service: fmt.Sprintf("s%d", i), Upstreams: []string{"http://127.0.0.1:9"}})
	}
	if err := s.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		rt := s.table.Load().lookup(r.Host)
		if rt == nil || rt.Service != r.Service || rt.Project() != "prj_1" {
			t.Fatalf("%s: route %+v", r.Host, rt)
		}
	}
}

// A build's services the previous table lacks, by project and name
// (serviceSet): found again whatever their hashes, colliding ones too.
func TestServiceSet(t *testing.T) {
	for _, tc := range []struct {
		name string
		hash func(project, service string) uint64
	}{
		{"hashed", serviceHash},
		{"every hash colliding", func(string, string) uint64 { return 7 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newServiceSet(0)
			x.hash = tc.hash
			metas := map[string]*serviceMeta{}
			keys := [][2]string{{"ab", "c"}, {"a", "bc"}, {"prj_1", "web"}, {"prj_2", "web"}, {"prj_1", "api"}}
			made := map[[2]string]*routeService{}
			for _, k := range keys {
				sv := x.getOrAdd(k[0], k[1], func() *routeService {
					sv := newRouteService(k[0], k[1], metas, nil)
					made[k] = sv
					return sv
				})
				if made[k] == nil || sv != made[k] {
					t.Fatalf("getOrAdd(%q, %q) the first time = %p, not the one it made", k[0], k[1], sv)
				}
			}
			for _, k := range keys {
				sv := x.getOrAdd(k[0], k[1], func() *routeService {
					t.Errorf("getOrAdd(%q, %q) made a second service", k[0], k[1])
					return nil
				})
				if sv != made[k] {
					t.Errorf("getOrAdd(%q, %q) = %p, want %p", k[0], k[1], sv, made[k])
				}
			}
		})
	}

	// SetRoutes: the routes of one service share its routeService even
	// when they are not next to each other.
	s := tableServer(t, Config{})
	routes := []Route{
		{Host: "a1.example.com", Project: "prj_1", Service: "a", Upstreams: []string{"http://127.0.0.1:9"}},
		{Host: "b1.example.com", Project: "prj_1", Service: "b", Upstreams: []string{"http://127.0.0.1:9"}},
		{Host: "a2.example.com", Project: "prj_1", Service: "a", Upstreams: []string{"http://127.0.0.1:9"}},
		{Host: "a3.example.com", Project: "prj_2", Service: "a", Upstreams: []string{"http://127.0.0.1:9"}},
	}
	if err := s.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	tb := s.table.Load()
	a1, b1, a2, a3 := tb.lookup("a1.example.com"), tb.lookup("b1.example.com"), tb.lookup("a2.example.com"), tb.lookup("a3.example.com")
	if a1 == nil || b1 == nil || a2 == nil || a3 == nil {
		t.Fatal("a route is missing")
	}
	if a1.routeService != a2.routeService {
		t.Error("the two routes of prj_1's service a have a service each")
	}
	if a1.routeService == b1.routeService || a1.routeService == a3.routeService {
		t.Error("two services share one routeService")
	}
	if a1.routes != 2 || b1.routes != 1 || a3.routes != 1 {
		t.Errorf("routes counted %d, %d, %d; want 2, 1, 1", a1.routes, b1.routes, a3.routes)
	}
}
