package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/api"
	"github.com/spine-platform/spine/internal/events"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// apiEnv is the API over a real SQLite store on a real listener, with two
// projects that each hold a verified domain.
type apiEnv struct {
	db       *store.DB
	p        *platform.Platform
	url      string
	one, two *client.Client
	admin    *client.Client // the default project's: the operator
	ids      map[*client.Client]string
	tokens   map[*client.Client]string
}

func newAPIEnv(t *testing.T, mod func(*api.Config)) *apiEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := platform.New(db, platform.Options{})
	e := &apiEnv{db: db, p: p, tokens: map[*client.Client]string{}, ids: map[*client.Client]string{}}
	tokenFile := filepath.Join(t.TempDir(), "admin.token")
	if _, err := p.Bootstrap(ctx, tokenFile); err != nil {
		t.Fatal(err)
	}
	adminTok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	var toks, ids []string
	for i := range 2 {
		pr, tok, err := p.CreateProject(ctx, fmt.Sprint("project-", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.AddDomain(ctx, pr.ID, fmt.Sprintf("p%d.example", i), true); err != nil {
			t.Fatal(err)
		}
		toks, ids = append(toks, tok), append(ids, pr.ID)
	}
	hub := events.NewHub(events.HubConfig{Store: db, MaxStreamsPerProject: 2})
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { hub.Run(hctx); close(done) }()
	cfg := api.Config{Platform: p, Events: hub, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	srv := httptest.NewServer(api.New(cfg))
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	e.url = srv.URL
	e.one, e.two = client.New(srv.URL, toks[0]), client.New(srv.URL, toks[1])
	e.tokens[e.one], e.tokens[e.two] = toks[0], toks[1]
	e.ids[e.one], e.ids[e.two] = ids[0], ids[1]
	e.admin = client.New(srv.URL, strings.TrimSpace(string(adminTok)))
	e.tokens[e.admin] = strings.TrimSpace(string(adminTok))
	return e
}

// get answers GET path as c's token sees it: the status and the body.
func (e *apiEnv) get(t *testing.T, c *client.Client, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.tokens[c])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (e *apiEnv) service(t *testing.T, c *client.Client, name, domain string) {
	t.Helper()
	if _, err := c.CreateService(context.Background(), client.ServiceCreate{Name: name, Domain: domain, Upstreams: []string{"http://127.0.0.1:9"}}); err != nil {
		t.Fatal(err)
	}
}

func TestEventsList(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	for i := range 3 {
		e.service(t, e.one, fmt.Sprint("s", i), "p0.example")
	}
	e.service(t, e.two, "other", "p1.example")
	// Each project's log starts with its first token's creation.
	page, err := e.one.Events(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Next != 2 || !page.More || page.Events[0].Type != "token.created" || page.Events[0].Subject != "initial" ||
		page.Events[1].Type != "service.created" || page.Events[1].Subject != "s0" {
		t.Fatalf("first page = %+v", page)
	}
	page, err = e.one.Events(ctx, page.Next, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Events[0].ID != 3 || page.More || page.Next != 4 {
		t.Fatalf("second page = %+v", page)
	}
	var data struct{ Hostnames []string }
	if err := json.Unmarshal(page.Events[1].Data, &data); err != nil || len(data.Hostnames) != 1 || data.Hostnames[0] != "s2.p0.example" {
		t.Errorf("event data = %s", page.Events[1].Data)
	}
	page, err = e.two.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Events[1].Subject != "other" {
		t.Errorf("project two sees %+v", page.Events)
	}

	for _, c := range []struct{ query, code string }{
		{"after=-1", "invalid_after"}, {"after=x", "invalid_after"}, {"after=1e3", "invalid_after"},
		{"limit=0x10", "invalid_limit"}, {"limit=1001", "invalid_limit"}, {"limit=-5", "invalid_limit"},
	} {
		code, body := e.get(t, e.one, "/v1/events?"+c.query)
		if code != 400 || !strings.Contains(body, `"error": "`+c.code+`"`) {
			t.Errorf("GET /v1/events?%s: %d %s, want 400 %s", c.query, code, body, c.code)
		}
	}
}

// streamEvents collects n events from a stream started at after.
func streamEvents(t *testing.T, c *client.Client, after int64, n int, started func()) []client.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []client.Event
	done := errors.New("done")
	errc := make(chan error, 1)
	go func() {
		errc <- c.StreamEvents(ctx, after, func(e client.Event) error {
			got = append(got, e)
			if len(got) == n {
				return done
			}
			return nil
		})
	}()
	if started != nil {
		started()
	}
	if err := <-errc; !errors.Is(err, done) {
		t.Fatalf("stream: %v after %d events", err, len(got))
	}
	return got
}

func TestEventStream(t *testing.T) {
	e := newAPIEnv(t, nil)
	e.service(t, e.one, "old", "p0.example")

	// From the start, with Last-Event-ID (what a reconnect sends): the
	// backlog, then live events, in order, none of project two's.
	got := streamEvents(t, e.one, 1, 3, func() { // after the first token's event
		e.service(t, e.two, "theirs", "p1.example")
		e.service(t, e.one, "new", "p0.example")
		if err := e.one.DeleteService(context.Background(), "new"); err != nil {
			t.Error(err)
		}
	})
	want := []string{"service.created old", "service.created new", "service.deleted new"}
	for i, ev := range got {
		if ev.Type+" "+ev.Subject != want[i] || ev.ID != int64(i+2) || ev.Project == "" {
			t.Errorf("event %d = %+v, want %s with ID %d", i, ev, want[i], i+2)
		}
	}
	// Resuming after ID 3 gives 4 and what follows.
	got = streamEvents(t, e.one, 3, 2, func() { e.service(t, e.one, "later", "p0.example") })
	if got[0].ID != 4 || got[1].ID != 5 || got[1].Subject != "later" {
		t.Errorf("resumed stream = %+v", got)
	}
}

func TestEventStreamWire(t *testing.T) {
	e := newAPIEnv(t, func(c *api.Config) { c.StreamHeartbeat = 50 * time.Millisecond })
	e.service(t, e.one, "a", "p0.example")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(header, query string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/events/stream"+query, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens[e.one])
		if header != "" {
			req.Header.Set("Last-Event-ID", header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	// Without a start, the stream begins after the latest event, and says
	// where; idle, it sends keep-alive comments.
	resp := open("", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("stream answer: %d %v", resp.StatusCode, resp.Header)
	}
	r := bufio.NewReader(resp.Body)
	var lines []string
	for len(lines) < 5 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimRight(l, "\n"))
	}
	if strings.Join(lines, "|") != "retry: 2000|id: 2||: keep-alive|" {
		t.Errorf("stream begins %q", lines)
	}
	// A second stream: the project's limit is 2 in this test; a third is refused.
	open("0", "")
	resp3 := open("", "?after=0")
	body, _ := io.ReadAll(resp3.Body)
	if resp3.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "too_many_streams") {
		t.Errorf("third stream: %d %s", resp3.StatusCode, body)
	}
	for _, c := range []struct{ header, query, code string }{
		{"abc", "", "invalid_last_event_id"}, {"-3", "", "invalid_last_event_id"}, {"", "?after=-1", "invalid_after"},
	} {
		resp := open(c.header, c.query)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 400 || !strings.Contains(string(body), c.code) {
			t.Errorf("stream with Last-Event-ID %q %s: %d %s", c.header, c.query, resp.StatusCode, body)
		}
	}
}

// A stream outlives the API server's WriteTimeout: each write moves its own
// deadline on.
func TestEventStreamOutlivesWriteTimeout(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "spine.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := platform.New(db, platform.Options{})
	pr, tok, err := p.CreateProject(ctx, "streamer")
	if err != nil {
		t.Fatal(err)
	}
	hub := events.NewHub(events.HubConfig{Store: db})
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go hub.Run(hctx)
	srv := httptest.NewUnstartedServer(api.New(api.Config{Platform: p, Events: hub, StreamHeartbeat: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, tok)
	start := time.Now()
	got := make(chan client.Event, 1)
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	go c.StreamEvents(sctx, -1, func(e client.Event) error { got <- e; return nil }) // from the next event
	// Past the write timeout (keep-alives flow meanwhile), an event still comes.
	for time.Since(start) < time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	if _, _, err := db.AppendEvent(ctx, store.Event{ProjectID: pr.ID, Type: store.EventTokenCreated, Subject: "late"}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Subject != "late" {
			t.Errorf("event = %+v", e)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no event on a stream older than the server's WriteTimeout")
	}
}

// GET /v1/services answers a page at a time, by name: the page's size and
// where it starts as asked, the project's total, next_offset to the next
// page and none on the last; the client's Services follows every page;
// a bad offset or limit is refused and names the parameter; another
// project's services never appear.
func TestServicesPaged(t *testing.T) {
	e := newAPIEnv(t, nil)
	ctx := context.Background()
	var want []string
	for i := range 7 {
		name := fmt.Sprintf("s%d", (i*3)%7) // not created in name order
		e.service(t, e.one, name, "p0.example")
		want = append(want, name)
	}
	slices.Sort(want)
	e.service(t, e.two, "other", "p1.example")
	var got []string
	for offset, pages := 0, 0; ; pages++ {
		p, err := e.one.ServicePage(ctx, "", offset, 3)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 7 || len(p.Services) != min(3, 7-offset) {
			t.Fatalf("page at %d: %d services, total %d; want %d of 7", offset, len(p.Services), p.Total, min(3, 7-offset))
		}
		for _, s := range p.Services {
			got = append(got, s.Name)
			if len(s.Hostnames) != 1 || s.Hostnames[0] != s.Name+".p0.example" {
				t.Errorf("%s: hostnames %v", s.Name, s.Hostnames)
			}
		}
		if p.NextOffset == nil {
			if offset+len(p.Services) != 7 || pages != 2 {
				t.Fatalf("the last page at %d after %d pages", offset, pages)
			}
			break
		}
		if *p.NextOffset != offset+3 {
			t.Fatalf("next_offset %d after the page at %d", *p.NextOffset, offset)
		}
		offset = *p.NextOffset
	}
	if !slices.Equal(got, want) {
		t.Errorf("the pages gave %v, want %v", got, want)
	}
	// By cursor: the same pages, each after the last name of the one
	// before, which a service created meanwhile before the cursor does
	// not move (an offset would repeat the page's last service).
	got = got[:0]
	for after, pages := "", 0; ; pages++ {
		p, err := e.one.ServicePage(ctx, after, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 7+min(pages, 1) || pages > 0 && p.NextOffset != nil {
			t.Fatalf("page after %q: total %d, next_offset %v", after, p.Total, p.NextOffset)
		}
		for _, s := range p.Services {
			got = append(got, s.Name)
		}
		if pages == 0 {
			e.service(t, e.one, "a0", "p0.example") // sorts before every other
		}
		if p.NextAfter == nil {
			break
		}
		if *p.NextAfter != p.Services[len(p.Services)-1].Name {
			t.Fatalf("next_after %q after the page %v", *p.NextAfter, p.Services)
		}
		after = *p.NextAfter
	}
	if !slices.Equal(got, want) {
		t.Errorf("the pages by cursor gave %v, want %v", got, want)
	}
	want = append([]string{"a0"}, want...)
	all, err := e.one.Services(ctx)
	if names := func() (n []string) {
		for _, s := range all {
			n = append(n, s.Name)
		}
		return n
	}(); err != nil || !slices.Equal(names, want) {
		t.Errorf("Services: %d, %v", len(all), err)
	}
	if p, err := e.one.ServicePage(ctx, "", 50, 0); err != nil || len(p.Services) != 0 || p.Total != 8 || p.NextOffset != nil || p.NextAfter != nil {
		t.Errorf("past the end: %+v, %v", p, err)
	}
	for _, q := range []struct{ query, param string }{{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=x", "limit"}, {"offset=-5", "offset"}, {"offset=1e3", "offset"},
		{"after=s1&offset=2", "after"}, {"after=" + strings.Repeat("a", 254), "after"}} {
		code, body := e.get(t, e.one, "/v1/services?"+q.query)
		if code != 400 || !strings.Contains(body, "invalid_"+q.param) || !strings.Contains(body, q.param+"=") {
			t.Errorf("?%s: %d %s; want 400 naming %s", q.query, code, body, q.param)
		}
	}
}
