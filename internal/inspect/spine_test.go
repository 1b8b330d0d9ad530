package inspect_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/inspect"
	"github.com/spine-platform/spine/internal/node"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/poll"
)

// TestAgainstSpine inspects a Spine node started in-process: its demo
// service verifies against Spine's root, answers over HTTP/2 with HSTS,
// resumes, and Spine's API gives its view of the certificate; a name the
// node does not serve fails the handshake with an explanation.
func TestAgainstSpine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.Start(ctx, config.Config{
		DataDir: dir, Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Version: "test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New("http://"+n.APIAddr(), strings.TrimSpace(string(tok)))
	_, port, _ := strings.Cut(n.HTTPSAddr(), ":")
	root := filepath.Join(dir, "ca", "root.pem")
	cfg := inspect.Config{
		Roots:         []inspect.RootSource{{Name: "Spine's root (" + root + ")", Certs: []*x509.Certificate{n.CA().Root()}}},
		NoSystemRoots: true,
		Spine:         admin,
		Timeout:       30 * time.Second,
	}
	inspectURL := func(url string) *inspect.Report {
		target, err := inspect.ParseTarget(url, "")
		if err != nil {
			t.Fatal(err)
		}
		r := inspect.Run(context.Background(), target, cfg)
		var b strings.Builder
		r.WriteText(&b)
		t.Logf("%s", b.String())
		return r
	}

	// The demo service's certificate is issued at start and its status
	// recorded just after; the node loads the fleet's ticket keys in its
	// first seconds, which invalidates tickets issued before; its answers
	// offer HTTP/3 once its QUIC listener runs (on a loaded machine, after
	// the first HTTPS answers). Wait for all three.
	var r *inspect.Report
	poll.Until(t, "the node settled (certificate active, session resumed, HTTP/3 offered)", 2*time.Minute, func() error {
		r = inspectURL("https://hello.localhost:" + port + "/")
		if !r.Result.OK || r.Spine == nil || r.Spine.Status != "active" || !r.Resumption.Resumed || !r.HTTP.H3.Advertised {
			return fmt.Errorf("result %+v, spine %+v, resumption %+v, HTTP/3 %+v", r.Result, r.Spine, r.Resumption, r.HTTP.H3)
		}
		return nil
	})
	if !r.Result.OK || r.Result.ExitCode != inspect.ExitOK {
		t.Fatalf("result %+v", r.Result)
	}
	if r.DNS.Source != "localhost" || r.TCP.Remote != n.HTTPSAddr() {
		t.Errorf("DNS %+v, TCP %+v", r.DNS, r.TCP)
	}
	if sh := r.Handshake.ServerHello; sh.Version != "TLS 1.3" || sh.Group != "X25519MLKEM768" || sh.ALPN != "h2" {
		t.Errorf("ServerHello %+v", sh)
	}
	v := r.Verification
	if v.Root != "CN=Spine Internal CA" || !strings.HasPrefix(v.RootSource, "Spine's root") || len(v.Path) != 3 {
		t.Errorf("verification %+v", v)
	}
	if k := r.KeyExchange; !k.PostQuantum || !k.ForwardSecret {
		t.Errorf("key exchange %+v", k)
	}
	if h := r.HTTP; h.Protocol != "h2" || h.Status != 200 || h.HSTS != "max-age=31536000" {
		t.Errorf("HTTP %+v", h)
	}
	// Alt-Svc names the node's port; the HTTP/3 request there works.
	if h3 := r.HTTP.H3; !h3.Advertised || h3.Authority != ":"+port || !h3.Works || h3.Status != 200 || h3.Address != n.HTTPSAddr() {
		t.Errorf("HTTP/3 %+v", h3)
	}
	if res := r.Resumption; res.Tickets < 1 || !res.Resumed || res.LifetimeSeconds <= 0 {
		t.Errorf("resumption %+v", res)
	}
	s := r.Spine
	if s == nil || s.Status != "active" || s.Service != "hello" || s.Issuer == "" || s.Served == nil || !*s.Served {
		t.Fatalf("Spine's view %+v", s)
	}
	if s.RenewAfter == nil || !s.RenewAfter.After(*s.NotBefore) || !s.RenewAfter.Before(*s.NotAfter) || !strings.Contains(s.Explanation, "renewal is due from") {
		t.Errorf("Spine's view of the renewal: %+v", s)
	}

	// A name the node does not serve: the handshake fails, explained.
	r = inspectURL("https://nothere.localhost:" + port + "/")
	if r.Result.ExitCode != inspect.ExitConnect || r.Result.Reason != "handshake_failed" || !strings.Contains(r.Result.Message, "nothere.localhost") {
		t.Errorf("unknown name: %+v", r.Result)
	}
}
