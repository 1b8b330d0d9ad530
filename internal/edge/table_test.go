package edge

import (
	"maps"
	"net/http"
	"reflect"
	"slices"
	"testing"

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
	_, hasC := h.s.services[[2]string{"q", "c"}]
	_, hasK := h.s.services[[2]string{"p", "k"}]
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
