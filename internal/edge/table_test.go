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

	"github.com/spine-platform/spine/internal/memory/memtest"
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
	_, hasC := h.s.services.get("q", "c")
	_, hasK := h.s.services.get("p", "k")
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
	checkServices(t, h.s)
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
// counts the routes that name it, and is live (not retired); the index
// holds no other; and every slot the arena handed out is either a
// service's or free (none leaked).
func checkServices(t *testing.T, s *Server) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[svcRef]int32{}
	for rt := range s.table.Load().all() {
		if got, _ := s.services.get(rt.Project(), rt.Service); got != rt.svc {
			t.Fatalf("%s: route's service %s/%s is %v, the index's %v", rt.Host, rt.Project(), rt.Service, rt.svc, got)
		}
		counts[rt.svc]++
	}
	indexed := 0
	s.services.each(func(project, service string, ref svcRef) {
		indexed++
		if n := s.svcs.slot(ref.slot).routes; n != counts[ref] || !s.svcs.live(ref) {
			t.Fatalf("service %s/%s counts %d routes (live %v), the table has %d", project, service, n, s.svcs.live(ref), counts[ref])
		}
	})
	if indexed != len(counts) {
		t.Fatalf("the index holds %d services, the table names %d", indexed, len(counts))
	}
	free := map[uint32]bool{}
	for _, i := range s.svcs.free {
		if free[i] {
			t.Fatalf("slot %d is free twice", i)
		}
		free[i] = true
	}
	for ref := range counts {
		if free[ref.slot] {
			t.Fatalf("slot %d is free and a service's", ref.slot)
		}
	}
	if int(s.svcs.n) != indexed+len(free) {
		t.Fatalf("%d slots handed out, %d services and %d free: %d leaked", s.svcs.n, indexed, len(free), int(s.svcs.n)-indexed-len(free))
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
		if sh == nil || len(sh.recs) == 0 {
			empty++
		}
	}
	if tb.n != len(routes) || empty > 0 {
		t.Fatalf("table of %d routes with %d empty shards, want %d routes in every shard", tb.n, empty, len(routes))
	}
	for _, r := range routes {
		rt, ok := tb.lookup(r.Host)
		if !ok {
			t.Fatalf("%s is not found", r.Host)
		}
		if got := rt.Route(); got.Host != r.Host || got.Service != r.Service || got.Upstreams[0] != r.Upstreams[0] {
			t.Fatalf("%s: found %+v, want %+v", r.Host, got, r)
		}
	}
	for _, host := range []string{"", "a.test", "h.test", "h20000.test", "h1.tes", "h1.testx", "zzz.test", "h-1.test"} {
		if _, ok := tb.lookup(host); ok || s.Has(host) {
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
		host := "h" + strconv.Itoa(i) + ".test"
		if i < 1000 { // a service's hostname that starts with its name (shard.record keeps the name once)
			sv = i % 400
			host = "s" + strconv.Itoa(sv) + "." + host
		}
		return Route{Host: host, Project: "p" + strconv.Itoa(rnd.IntN(3)), Service: "s" + strconv.Itoa(sv),
			Upstreams: []string{"http://127.0.0.1:" + strconv.Itoa(1+sv%5)}}
	}
	type published struct {
		t        *table
		contents map[string]Route
	}
	var old []published
	for step := range 150 {
		before := s.table.Load()
		var svsBefore []svcName
		s.services.each(func(project, service string, ref svcRef) {
			svsBefore = append(svsBefore, svcName{project, service, ref})
		})
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
			kept := names[[2]string{sv.project, sv.service}]
			if cur, ok := s.services.get(sv.project, sv.service); kept != (ok && cur == sv.ref) || kept != s.svcs.live(sv.ref) {
				t.Fatalf("step %d: service %s/%s still routed %v: indexed %v (was %v), live %v",
					step, sv.project, sv.service, kept, cur, sv.ref, s.svcs.live(sv.ref))
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
	old, _ := s.table.Load().lookup("a.test")
	m := s.recorder(&old)
	m.Observe(200, 1, 1, time.Millisecond)
	if err := s.SetRoutes([]Route{
		{Host: "b.test", Project: "p", Service: "web", Upstreams: up},
		{Host: "c.test", Project: "p", Service: "other", Upstreams: up},
	}); err != nil {
		t.Fatal(err)
	}
	if rt, _ := s.table.Load().lookup("b.test"); rt.svc != old.svc || s.recorder(&rt) != m {
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
	if _, ok := s.services.get("p", "web"); s.svcs.live(old.svc) || ok {
		t.Error("p/web is not retired after it left the table")
	}
	if s.recorder(&old) != nil {
		t.Error("a request on the old route of p/web, retired, got a recorder")
	}
	other, _ := s.table.Load().lookup("c.test")
	if err := s.SetRoutes(nil); err != nil {
		t.Fatal(err)
	}
	if s.recorder(&other) != nil {
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
			sh := &shard{sets: []*routeSettings{nil}}
			for i := range n {
				sh.keys = append(sh.keys, spread())
				sh.recs = append(sh.recs, sh.record(&route{Host: "h" + strconv.Itoa(i) + ".test"}, 0))
			}
			sort.Sort((*byKey)(sh))
			for range 1000 {
				key, host := spread(), "h"+strconv.Itoa(rnd.IntN(n+2))+".test"
				if rnd.IntN(4) == 0 {
					key = rnd.Uint32()
				}
				if n > 0 && rnd.IntN(2) == 0 {
					j := rnd.IntN(n)
					key, host = sh.keys[j], sh.at(j).Host
				}
				want := 0
				for want < n && (sh.keys[want] < key || sh.keys[want] == key && sh.at(want).Host < host) {
					want++
				}
				wantOK := want < n && sh.keys[want] == key && sh.at(want).Host == host
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
			var put route
			putOK := false
			yields := 0
			testHookBuildYield = func(i int) {
				if yields++; c.forgetAt != 0 && i == c.forgetAt {
					s.ForgetWarm()
				}
				if i != c.at {
					return
				}
				put, putOK = s.route(t.Context(), warm.Host) // takes s.mu: waits for the whole build unless it let go
				if !putOK {
					t.Fatal("the warm-up's look-up during the build gave no route")
				}
				s.recorder(&put).Observe(200, 1, 1, time.Millisecond)
			}
			defer func() { testHookBuildYield = nil }()
			if err := s.SetRoutes(routes); err != nil {
				t.Fatal(err)
			}
			if !putOK {
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
			rt, _ := s.table.Load().lookup(warm.Host)
			if rt.pool.ups[0].stopped.Load() {
				t.Error("w.test's upstream is stopped")
			}
			if rt.svc != put.svc && s.svcs.live(put.svc) {
				t.Error("the warm-up's service, replaced, is still live")
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

// A warm-up that reaches its bound while SetRoutes builds is not
// forgotten (up to warmBuildRoutes): a forget retires the services the
// build may have taken from the table, and SetRoutes built everything
// again, holding the lock the warm-up's puts wait for.
func TestWarmUpAtItsBoundDuringTheBuild(t *testing.T) {
	reg := metrics.New(metrics.Sources{})
	s := tableServer(t, Config{Metrics: reg})
	warm := map[string]Route{
		"v.test": {Host: "v.test", Project: "p", Service: "v", Upstreams: []string{"http://127.0.0.1:2"}},
		"w.test": {Host: "w.test", Project: "p", Service: "w", Upstreams: []string{"http://127.0.0.1:2"}},
	}
	s.Warm(func(ctx context.Context, host string) (*Route, *tls.Certificate, error) {
		r, ok := warm[host]
		if !ok {
			return nil, nil, nil
		}
		return &r, nil, nil
	})
	v, ok := s.route(t.Context(), "v.test") // put before the build, with a request counted
	if !ok {
		t.Fatal("the warm-up gave no route for v.test")
	}
	s.recorder(&v).Observe(200, 1, 1, time.Millisecond)
	routes := []Route{warm["v.test"], warm["w.test"]}
	for i := range 300 {
		routes = append(routes, Route{Host: fmt.Sprintf("r%d.test", i), Project: "p", Service: fmt.Sprintf("s%d", i),
			Upstreams: []string{"http://127.0.0.1:1"}})
	}
	puts := 0
	testHookBuildYield = func(i int) {
		if i != 128 {
			return
		}
		s.mu.Lock()
		s.warm.Load().n = warmMaxRoutes // the bound reached
		s.mu.Unlock()
		if _, ok := s.route(t.Context(), "w.test"); !ok {
			t.Fatal("the warm-up's look-up during the build gave no route")
		}
		puts++
	}
	defer func() { testHookBuildYield = nil }()
	if err := s.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	if puts != 1 {
		t.Fatalf("the warm-up put w.test %d times during the build, want 1", puts)
	}
	series := map[string]string{"service": "p/v", "code": "200", "proto": "1.1"}
	if _, ok := metrics.Lookup(reg.Gatherer(), "spine_http_requests_total", series); !ok {
		t.Error("v.test's series are gone: the warm-up was forgotten during the build, its service retired")
	}
	checkServices(t, s)
	if n := s.table.Load().n; n != len(routes) {
		t.Errorf("the table holds %d routes, want %d", n, len(routes))
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
			keys := [][2]string{{"ab", "c"}, {"a", "bc"}, {"prj_1", "web"}, {"prj_2", "web"}, {"prj_1", "api"}}
			x := newServiceSet(0, func(at uint64) (string, string) { return keys[at][0], keys[at][1] })
			x.hash = tc.hash
			made := map[[2]string]svcRef{}
			for i, k := range keys {
				sv, err := x.getOrAdd(k[0], k[1], uint64(i), func() (svcRef, error) {
					made[k] = svcRef{slot: uint32(i), gen: 1}
					return made[k], nil
				})
				if _, ok := made[k]; !ok || err != nil || sv != made[k] {
					t.Fatalf("getOrAdd(%q, %q) the first time = %v, %v, not the one it made", k[0], k[1], sv, err)
				}
			}
			for i, k := range keys {
				sv, _ := x.getOrAdd(k[0], k[1], uint64(i), func() (svcRef, error) {
					t.Errorf("getOrAdd(%q, %q) made a second service", k[0], k[1])
					return svcRef{}, nil
				})
				if sv != made[k] {
					t.Errorf("getOrAdd(%q, %q) = %v, want %v", k[0], k[1], sv, made[k])
				}
			}
			n := 0
			x.each(func(svcRef) { n++ })
			if n != len(keys) {
				t.Errorf("the set yields %d services, want %d", n, len(keys))
			}
		})
	}

	// SetRoutes: the routes of one service share it even when they are
	// not next to each other.
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
	a1, ok1 := tb.lookup("a1.example.com")
	b1, ok2 := tb.lookup("b1.example.com")
	a2, ok3 := tb.lookup("a2.example.com")
	a3, ok4 := tb.lookup("a3.example.com")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		t.Fatal("a route is missing")
	}
	if a1.svc != a2.svc {
		t.Error("the two routes of prj_1's service a have a service each")
	}
	if a1.svc == b1.svc || a1.svc == a3.svc {
		t.Error("two services share one slot")
	}
	routesOf := func(rt route) int32 { return s.svcs.slot(rt.svc.slot).routes }
	if routesOf(a1) != 2 || routesOf(b1) != 1 || routesOf(a3) != 1 {
		t.Errorf("routes counted %d, %d, %d; want 2, 1, 1", routesOf(a1), routesOf(b1), routesOf(a3))
	}
	checkServices(t, s)
}

// What the table keeps a route and a service has no pointer for a
// collection to follow: a route record (24 bytes), a service's slot and
// its index entry. Only a service's recorder, made at its first request,
// is a pointer.
func TestTableRecordsHoldNoPointer(t *testing.T) {
	for _, ty := range []reflect.Type{reflect.TypeFor[routeRec](), reflect.TypeFor[svcSlot](), reflect.TypeFor[svcEntry]()} {
		if memtest.HoldsPointer(ty) {
			t.Errorf("%s holds a pointer", ty)
		}
	}
	if n := unsafe.Sizeof(routeRec{}); n > 24 {
		t.Errorf("routeRec is %d bytes, want at most 24", n)
	}
}

// The table copies what it keeps of a route's strings: none of its names
// is the caller's (a node's full sync gives names in the blocks of its
// store read, which the table kept alive), after a whole build and after
// a change.
func TestTableKeepsNoCallersString(t *testing.T) {
	s := tableServer(t, Config{})
	given := map[*byte]bool{}
	var routes []Route
	for i := range 300 {
		r := Route{Host: fmt.Sprintf("h%d.test", i), Project: fmt.Sprintf("prj_%d", i%5/3), Service: fmt.Sprintf("s%d", i%40),
			Upstreams: []string{"http://127.0.0.1:9"}}
		if i%3 == 0 {
			r.Host = r.Service + "." + r.Host
		}
		routes = append(routes, r)
	}
	extra := Route{Host: "extra.test", Project: "prj_9", Service: "new", Upstreams: []string{"http://127.0.0.1:9"}}
	for _, r := range append(routes, extra) {
		for _, str := range []string{r.Host, r.Project, r.Service} {
			given[unsafe.StringData(str)] = true
		}
	}
	if err := s.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	for i, sh := range s.table.Load().shards {
		if sh != nil && len(sh.text) != cap(sh.text) {
			t.Fatalf("shard %d: %d bytes of names in a block of %d (the build sizes it exactly)", i, len(sh.text), cap(sh.text))
		}
	}
	if err := s.UpdateRoutes([]Route{extra}, []string{"h1.test"}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for rt := range s.table.Load().all() {
		n++
		for _, str := range []string{rt.Host, rt.Project(), rt.Service} {
			if given[unsafe.StringData(str)] {
				t.Fatalf("%s: the table keeps the caller's string %q", rt.Host, str)
			}
		}
	}
	s.mu.Lock()
	s.services.each(func(project, service string, _ svcRef) {
		if given[unsafe.StringData(project)] || given[unsafe.StringData(service)] {
			t.Errorf("the service index keeps the caller's %s/%s", project, service)
		}
	})
	s.mu.Unlock()
	if n != len(routes) {
		t.Errorf("%d routes, want %d", n, len(routes))
	}
	checkServices(t, s)
}

// A service's slot, freed when it leaves, goes to the next service made:
// a request still on a route of the first gets no recorder, neither the
// first's (its series are gone) nor the next's; the next counts its own.
// A build or a change that is refused frees the slots it made.
func TestServiceSlotReused(t *testing.T) {
	reg := metrics.New(metrics.Sources{})
	s := tableServer(t, Config{Metrics: reg})
	up := []string{"http://127.0.0.1:9"}
	if err := s.SetRoutes([]Route{{Host: "a.test", Project: "p", Service: "web", Upstreams: up}}); err != nil {
		t.Fatal(err)
	}
	old, _ := s.table.Load().lookup("a.test")
	s.recorder(&old).Observe(200, 1, 1, time.Millisecond)
	if err := s.UpdateRoutes(nil, []string{"a.test"}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRoutes([]Route{{Host: "b.test", Project: "p", Service: "api", Upstreams: up}}, nil); err != nil {
		t.Fatal(err)
	}
	next, _ := s.table.Load().lookup("b.test")
	if next.svc.slot != old.svc.slot || next.svc == old.svc {
		t.Fatalf("p/api's service is %v, p/web's was %v: want its slot, another generation", next.svc, old.svc)
	}
	m := s.recorder(&next)
	if m == nil {
		t.Fatal("p/api made no recorder")
	}
	if got := s.recorder(&old); got != nil {
		t.Errorf("a request on p/web's old route got a recorder (p/api's: %v)", got == m)
	}
	if _, ok := metrics.Lookup(reg.Gatherer(), "spine_http_requests_total",
		map[string]string{"service": "p/web", "code": "200", "proto": "1.1"}); ok {
		t.Error("p/web's series stayed after it left")
	}
	checkServices(t, s)

	bad := Route{Host: "c.test", Project: "p", Service: "bad", Upstreams: []string{"ftp://127.0.0.1:1"}}
	if err := s.UpdateRoutes([]Route{{Host: "d.test", Project: "p", Service: "d", Upstreams: up}, bad}, nil); err == nil {
		t.Fatal("UpdateRoutes accepted an ftp upstream")
	}
	checkServices(t, s)
	if err := s.SetRoutes([]Route{{Host: "d.test", Project: "p", Service: "d", Upstreams: up}, bad}); err == nil {
		t.Fatal("SetRoutes accepted an ftp upstream")
	}
	checkServices(t, s)

	// Services past one chunk of slots: each route finds its own.
	var routes []Route
	for i := range svcChunkLen + 10 {
		routes = append(routes, Route{Host: fmt.Sprintf("s%d.example.com", i), Project: "prj_1",
			Service: fmt.Sprintf("s%d", i), Upstreams: up})
	}
	if err := s.SetRoutes(routes); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		rt, ok := s.table.Load().lookup(r.Host)
		if !ok || rt.Service != r.Service || rt.Project() != "prj_1" {
			t.Fatalf("%s: route %+v", r.Host, rt)
		}
	}
	checkServices(t, s)
}

// A route's project ID or service name longer than a record keeps is
// refused, with the host it came with.
func TestRouteNamesTooLong(t *testing.T) {
	s := tableServer(t, Config{})
	long := strings.Repeat("a", maxNameLen+1)
	for _, r := range []Route{{Project: long}, {Service: long}} {
		r.Host, r.Upstreams = "a.test", []string{"http://127.0.0.1:9"}
		if err := s.SetRoutes([]Route{r}); !errors.Is(err, ErrInvalidRoute) || !strings.Contains(err.Error(), "a.test") {
			t.Errorf("SetRoutes of a %d-byte name: %v", maxNameLen+1, err)
		}
		if err := s.UpdateRoutes([]Route{r}, nil); !errors.Is(err, ErrInvalidRoute) {
			t.Errorf("UpdateRoutes of a %d-byte name: %v", maxNameLen+1, err)
		}
	}
	checkServices(t, s)
}
