package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/poll"
)

// lockedBuffer is an io.Writer that a test may read while the CLI writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// `spine events --follow -o json` prints each new event as a JSON line, as
// it is recorded; `spine events` lists them.
func TestEventsFollow(t *testing.T) {
	dir := t.TempDir()
	n, err := node.Start(context.Background(), config.Config{
		DataDir: dir, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	t.Setenv("SPINE_TOKEN", "")
	common := []string{"--data", dir, "--api", "http://" + n.APIAddr()}

	ctx, cancel := context.WithCancel(context.Background())
	var out lockedBuffer
	root := newRoot()
	root.SetArgs(append([]string{"events", "--follow", "--after", "0", "-o", "json"}, common...))
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetContext(ctx)
	done := make(chan error, 1)
	go func() { done <- root.Execute() }()

	c, err := (&globals{data: dir, api: "http://" + n.APIAddr()}).client()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one", "two"} {
		if _, err := c.CreateService(ctx, client.ServiceCreate{Name: name, Upstreams: []string{"http://127.0.0.1:9"}}); err != nil {
			t.Fatal(err)
		}
	}
	// The log starts with the admin token's token.created; the services' events follow.
	poll.Until(t, "both services' events printed", time.Minute, func() error {
		if strings.Count(out.String(), `"type":"service.created"`) < 2 {
			return fmt.Errorf("events --follow printed %q", out.String())
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("events --follow ended with %v", err)
	}
	var created []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.Contains(line, `"type":"service.created"`) {
			created = append(created, line)
		}
	}
	for i, line := range created[:2] {
		var e client.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Type != "service.created" || e.Subject != []string{"one", "two"}[i] {
			t.Errorf("line %d = %q (%v), want service.created of %s", i, line, err, []string{"one", "two"}[i])
		}
	}

	list, err := spine(t, append([]string{"events"}, common...)...)
	if err != nil || !strings.Contains(list, `"hostnames":["two.localhost"]`) {
		t.Errorf("events: %v\n%s", err, list)
	}
	found := false
	for _, line := range strings.Split(list, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[2] == "service.created" && f[3] == "one" {
			found = true
		}
	}
	if !found {
		t.Errorf("events does not list service.created of one:\n%s", list)
	}
}
