package security

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/hostname"
	"github.com/spine-platform/spine/internal/pkitest"
	"github.com/spine-platform/spine/internal/poll"
)

// TestWarmUpLookups attacks the warm-up (a node serving while its first
// sync runs, when a name the edge lacks is read from the store): a
// client's SNI and Host header choose the name read. Names that are not
// hostnames in normal form never reach the store; a flood of unknown names
// costs one read per connection, never more than the edge's bound at a
// time, counted; a known name is still served once the flood's reads are
// done; after the first full table no name is read. The edge is the real
// one, on 127.0.0.1, its lookup a recording stand-in for the store.
func TestWarmUpLookups(t *testing.T) {
	ctx := context.Background()
	pki := pkitest.NewRoot("Warm-up Root")
	issued := pki.Issue(pkitest.Leaf{CommonName: "known.test", DNSNames: []string{"known.test"}})
	cert, err := tls.X509KeyPair(issued.ChainPEM, issued.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(up.Close)
	known := edge.Route{Host: "known.test", Project: "p", Service: "s", Upstreams: []string{up.URL}}

	var (
		mu       sync.Mutex
		asked    []string
		inflight atomic.Int64
		peak     atomic.Int64
		release  = make(chan struct{})
	)
	lookup := func(ctx context.Context, host string) (*edge.Route, *tls.Certificate, error) {
		mu.Lock()
		asked = append(asked, host)
		mu.Unlock()
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		if strings.HasPrefix(host, "flood-") {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
		if host == known.Host {
			r := known
			return &r, &cert, nil
		}
		return nil, nil, nil
	}
	srv := edge.New(edge.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("no certificate here") },
		Logger:         slog.New(slog.DiscardHandler),
		HealthInterval: time.Hour,
	})
	srv.Warm(lookup)
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(tlsLn)
	go srv.ServeHTTP(httpLn)
	t.Cleanup(func() { srv.Shutdown(ctx) })

	dial := func(name string) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", tlsLn.Addr().String(),
			&tls.Config{ServerName: name, RootCAs: pki.Pool(), InsecureSkipVerify: name != known.Host})
		if err == nil {
			c.Close()
		}
		return err
	}
	// plainGet is the status of a plain-HTTP GET with Host host; 0 if
	// net/http's client refuses to send that Host.
	plainGet := func(host string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+httpLn.Addr().String()+"/", nil)
		req.Host = host
		resp, err := (&http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Served from the lookup, over TLS and plain HTTP.
	if err := dial(known.Host); err != nil {
		t.Fatalf("the known name during the warm-up: %v", err)
	}
	if code := plainGet(known.Host); code != http.StatusPermanentRedirect {
		t.Errorf("the known name over plain HTTP: %d, want 308", code)
	}

	// Bad names: refused, never read.
	bad := []string{"bad_name.test", "a..test", strings.Repeat("a", 64) + ".test", strings.Repeat("a.", 130) + "test",
		"-lead.test", "xn--a.test", "sp ace.test", "ünïcode.test", "*.test", "a.test%00", "a.test' OR '1'='1"}
	mu.Lock()
	before := len(asked)
	mu.Unlock()
	for _, name := range bad {
		if err := dial(name); err == nil {
			t.Errorf("SNI %q: handshake succeeded", name)
		}
		if code := plainGet(name); code != 0 && code != http.StatusNotFound && code != http.StatusBadRequest {
			t.Errorf("Host %q: %d, want 404 or 400", name, code)
		}
	}
	mu.Lock()
	for _, h := range asked[before:] {
		// net/http's client sends "ünïcode.test" as its punycode, a
		// hostname in normal form: that one may be read.
		if hostname.Check(h) != nil {
			t.Errorf("a bad name reached the lookup: %q", h)
		}
	}
	mu.Unlock()
	if st := srv.WarmStats(); st.Refused == 0 {
		t.Errorf("bad names not counted as refused: %+v", st)
	}

	// A flood of unknown names: at most the bound at a time, one read per
	// connection.
	const flood = 40
	var wg sync.WaitGroup
	for i := range flood {
		wg.Go(func() {
			if err := dial(fmt.Sprintf("flood-%d.test", i)); err == nil {
				t.Errorf("flood-%d.test served", i)
			}
		})
	}
	poll.Until(t, "the flood's reads at their bound", time.Minute, func() error {
		if n := inflight.Load(); n < 8 {
			return fmt.Errorf("%d reads under way", n)
		}
		return nil
	})
	close(release)
	wg.Wait()
	if p := peak.Load(); p > 8 {
		t.Errorf("%d reads at a time during the flood, want at most 8", p)
	}
	mu.Lock()
	floods := 0
	for _, h := range asked {
		if strings.HasPrefix(h, "flood-") {
			floods++
		}
	}
	mu.Unlock()
	if st := srv.WarmStats(); floods > flood || st.Unrouted+st.Failed+st.Refused < flood {
		t.Errorf("%d reads for %d flooding connections, counts %+v: want at most one read each, each counted", floods, flood, st)
	}
	if err := dial(known.Host); err != nil {
		t.Errorf("the known name after the flood: %v", err)
	}

	// The full table: the warm-up is over, no name is read any more.
	if err := srv.SetRoutes([]edge.Route{known}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	before = len(asked)
	mu.Unlock()
	for _, name := range []string{"flood-x.test", "unknown.test"} {
		if err := dial(name); err == nil {
			t.Errorf("%s served after the warm-up", name)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != before || srv.WarmStats().Active {
		t.Errorf("names read after the first full table: %q", slices.Clone(asked[before:]))
	}
}
