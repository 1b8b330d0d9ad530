package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/poll"
)

// loadClient keeps requests going to one hostname through a node's HTTPS
// listener, over real TLS, on kept-alive HTTP/1.1 and HTTP/2 connections,
// GETs and POSTs, until stopped. It counts failures and notes, per worker,
// when the answer moved from the old upstream's name to the new one's.
type loadClient struct {
	stop     atomic.Bool
	wg       sync.WaitGroup
	requests atomic.Int64
	failed   atomic.Int64
	firstErr atomic.Value
	sawNew   []atomic.Bool
}

func startLoad(t *testing.T, addr, host string, roots *x509.CertPool, workers int, newName string) *loadClient {
	t.Helper()
	l := &loadClient{sawNew: make([]atomic.Bool, workers)}
	for i := range workers {
		h2 := i%2 == 0
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: host},
			ForceAttemptHTTP2: h2,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			},
			MaxConnsPerHost: 1, // one kept-alive connection per worker, through the whole test
		}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		t.Cleanup(tr.CloseIdleConnections)
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		method := []string{http.MethodGet, http.MethodPost}[i/2%2]
		l.wg.Go(func() {
			for n := 0; !l.stop.Load() && n < 1_000_000; n++ {
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader("payload")
				}
				req, _ := http.NewRequest(method, "https://"+host+"/", body)
				resp, err := c.Do(req)
				var got string
				if err == nil {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					got, err = string(b), rerr
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
					}
					if err == nil && (resp.ProtoMajor == 2) != h2 {
						err = fmt.Errorf("protocol %s", resp.Proto)
					}
				}
				l.requests.Add(1)
				switch {
				case err != nil:
					l.fail(fmt.Errorf("worker %d (%s, h2=%v): %w", i, method, h2, err))
				case got == newName:
					l.sawNew[i].Store(true)
				case l.sawNew[i].Load():
					l.fail(fmt.Errorf("worker %d: %q answered after %q had", i, got, newName))
				}
			}
		})
	}
	return l
}

func (l *loadClient) fail(err error) {
	l.failed.Add(1)
	l.firstErr.CompareAndSwap(nil, err)
}

func (l *loadClient) allMoved() error {
	for i := range l.sawNew {
		if !l.sawNew[i].Load() {
			return fmt.Errorf("worker %d not answered by the new upstream yet", i)
		}
	}
	return nil
}

// halt stops the load and fails the test if any request failed.
func (l *loadClient) halt(t *testing.T) {
	t.Helper()
	l.stop.Store(true)
	l.wg.Wait()
	if n := l.failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, l.requests.Load(), l.firstErr.Load())
	}
	t.Logf("%d requests, none failed", l.requests.Load())
}

func namedHandler(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	}
}

// TestUpdateServiceInPlace changes a live service through the API on one
// node while a load client runs: the upstream change drops no request and
// moves every client to the new upstream; an added hostname is served once
// its certificate is issued; a removed one is refused at the handshake, no
// longer managed by the certificate manager, and free for another project.
func TestUpdateServiceInPlace(t *testing.T) {
	for _, sc := range storeCases(t) {
		t.Run(sc.name, func(t *testing.T) {
			dir := t.TempDir()
			n := startNode(t, dir, sc.dsn)
			c := adminClient(t, n, dir)
			ctx := context.Background()
			oldUp, newUp := upstream(t, namedHandler("old")), upstream(t, namedHandler("new"))
			if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "web", Upstreams: []string{oldUp},
				Hosts: []string{"www.localhost"}, HealthPath: "/healthz", HealthInterval: "2s"}); err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{"web.localhost", "www.localhost"} {
				poll.Until(t, h+" served", waitTimeout, func() error {
					_, body, err := httpsGet(t, n, h, "/")
					if err == nil && body != "old" {
						err = fmt.Errorf("body %q", body)
					}
					return err
				})
			}
			roots := x509.NewCertPool()
			roots.AddCert(n.CA().Root())
			load := startLoad(t, n.HTTPSAddr(), "web.localhost", roots, 8, "new")
			poll.Until(t, "load running", waitTimeout, func() error {
				if load.requests.Load() < 200 {
					return errors.New("fewer than 200 requests yet")
				}
				return nil
			})

			svc, err := c.UpdateService(ctx, "web", client.ServiceUpdate{Upstreams: []string{newUp}})
			if err != nil {
				t.Fatal(err)
			}
			changed := time.Now()
			if !slices.Equal(svc.Upstreams, []string{newUp}) || svc.HealthPath != "/healthz" || svc.HealthInterval != "2s" ||
				!slices.Equal(svc.Hostnames, []string{"web.localhost", "www.localhost"}) {
				t.Fatalf("after the update: %+v", svc)
			}
			poll.Until(t, "every client on the new upstream", waitTimeout, load.allMoved)
			t.Logf("every client answered by the new upstream %s after the API answered", time.Since(changed).Round(time.Millisecond))
			moved := load.requests.Load()
			poll.Until(t, "more load on the new upstream", waitTimeout, func() error {
				if load.requests.Load() < moved+200 {
					return errors.New("fewer than 200 requests since")
				}
				return nil
			})
			load.halt(t)

			// Hostnames: one added, one removed, in one update.
			svc, err = c.UpdateService(ctx, "web", client.ServiceUpdate{AddHosts: []string{"api.localhost"}, RemoveHosts: []string{"www.localhost"}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(svc.Hostnames, []string{"web.localhost", "api.localhost"}) {
				t.Fatalf("hostnames after the update: %v", svc.Hostnames)
			}
			poll.Until(t, "the added hostname served with its own certificate", waitTimeout, func() error {
				resp, body, err := httpsGet(t, n, "api.localhost", "/")
				if err != nil {
					return err
				}
				if body != "new" || !slices.Contains(resp.TLS.PeerCertificates[0].DNSNames, "api.localhost") {
					return fmt.Errorf("body %q, names %v", body, resp.TLS.PeerCertificates[0].DNSNames)
				}
				return nil
			})
			poll.Until(t, "the removed hostname refused", waitTimeout, func() error {
				_, _, err := httpsGet(t, n, "www.localhost", "/")
				var op *net.OpError
				if !errors.As(err, &op) || op.Op != "remote error" {
					return fmt.Errorf("want a TLS alert, got %v", err)
				}
				return nil
			})
			if n.certs.Manages("www.localhost") || !n.certs.Manages("api.localhost") {
				t.Errorf("certificate manager: manages www.localhost=%v (want false), api.localhost=%v (want true)",
					n.certs.Manages("www.localhost"), n.certs.Manages("api.localhost"))
			}
			certs, err := c.Certificates(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, cert := range certs {
				if cert.Hostname == "www.localhost" {
					t.Errorf("the removed hostname is still listed: %+v", cert)
				}
			}
			// The removed name is free: another service takes it.
			if _, err := c.CreateService(ctx, client.ServiceCreate{Name: "other", Upstreams: []string{oldUp}, Hosts: []string{"www.localhost"}}); err != nil {
				t.Fatalf("the removed hostname is not free: %v", err)
			}
			poll.Until(t, "the freed hostname served by the other service", waitTimeout, func() error {
				_, body, err := httpsGet(t, n, "www.localhost", "/")
				if err == nil && body != "old" {
					err = fmt.Errorf("body %q", body)
				}
				return err
			})

			// A refused update changes nothing.
			before, err := c.Service(ctx, "web")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.UpdateService(ctx, "web", client.ServiceUpdate{Upstreams: []string{"http://10.1.1.1"}, AddHosts: []string{"www.localhost"}})
			if !client.IsCode(err, "conflict") {
				t.Fatalf("taking another service's hostname: %v", err)
			}
			after, err := c.Service(ctx, "web")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(before.Upstreams, after.Upstreams) || !slices.Equal(before.Hostnames, after.Hostnames) || !before.UpdatedAt.Equal(after.UpdatedAt) {
				t.Errorf("a refused update changed the service: %+v -> %+v", before, after)
			}
		})
	}
}
