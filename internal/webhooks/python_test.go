package webhooks_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// pythonReceiver runs testdata/receiver.py (the README's example) with
// secret and returns its URL and its stdout, one handled event a line.
func pythonReceiver(t *testing.T, secret string) (string, *bufio.Scanner) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed for the README's receiver example (apt-get install python3)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, py, "testdata/receiver.py")
	cmd.Env = append(cmd.Environ(), "SPINE_WEBHOOK_SECRET="+secret)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		t.Fatalf("receiver.py: %q %v", line, err)
	}
	go io.Copy(io.Discard, stderr)
	return "http://" + strings.TrimSpace(strings.TrimPrefix(line, "listening on ")), bufio.NewScanner(stdout)
}

// A receiver written in Python with its standard library, as the README
// shows it, verifies Spine's signatures, and refuses a message signed
// with another secret.
func TestPythonReceiver(t *testing.T) {
	e := newEnv(t)
	e.clock.set(time.Now()) // the receiver checks the timestamp against its own clock
	url, lines := pythonReceiver(t, e.secret)
	e.webhook(t, "good", url+"/hook")
	if err := e.db.CreateWebhook(context.Background(), store.Webhook{ID: "forged", ProjectID: "p1", URL: url + "/hook",
		Secret: platform.NewWebhookSecret(), CreatedAt: e.t0}, 0); err != nil {
		t.Fatal(err)
	}
	ev := e.event(t, "api")
	s := e.sender(t, "node-a", nil)
	if n := e.runAt(t, s, time.Now()); n != 2 {
		t.Fatalf("attempted %d, want 2", n)
	}
	if d := e.delivery(t, "good"); d.Status != store.DeliveryDelivered || d.LastStatus != 204 {
		t.Errorf("signed with the receiver's secret: %+v", d)
	}
	if d := e.delivery(t, "forged"); d.Status != store.DeliveryPending || d.LastStatus != 401 {
		t.Errorf("signed with another secret: %+v", d)
	}
	// A redelivery (same webhook-id) is verified and dropped as seen.
	if _, err := e.db.Redeliver(context.Background(), "p1", e.delivery(t, "good").ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := e.runAt(t, s, time.Now()); n != 1 {
		t.Fatalf("redelivery: attempted %d", n)
	}
	if d := e.delivery(t, "good"); d.Status != store.DeliveryDelivered {
		t.Errorf("redelivery: %+v", d)
	}
	if !lines.Scan() {
		t.Fatal("the receiver printed no event")
	}
	var got struct {
		Type string
		Data struct{ ID int64 }
	}
	if err := json.Unmarshal(lines.Bytes(), &got); err != nil || got.Type != "service.created" || got.Data.ID != ev.ID {
		t.Errorf("the receiver handled %s (%v)", lines.Text(), err)
	}
}
