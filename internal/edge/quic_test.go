package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/spine-platform/spine/internal/poll"
)

// startQUIC serves HTTP/3 for h on a UDP port of 127.0.0.1 and returns its
// address. Shutting the edge down ends it.
func startQUIC(t testing.TB, h *harness) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- h.s.ServeQUIC(pc, nil) }()
	poll.Until(t, "HTTP/3 to start", waitTimeout, poll.True(func() bool { return h.s.altSvcHeader() != nil }))
	// Runs before startEdge's cleanup (LIFO), which shuts down again.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeQUIC returned %v, want http.ErrServerClosed", err)
		}
		pc.Close()
	})
	return pc.LocalAddr().String()
}

// h3Client returns an HTTP/3 client that reaches every host at addr (UDP),
// trusting only the test CA.
func (h *harness) h3Client(t testing.TB, addr string) *http.Client {
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: h.pki.pool},
		QUICConfig:      &quic.Config{HandshakeIdleTimeout: 10 * time.Second},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, addr, tlsCfg, cfg)
		},
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func TestHTTP3(t *testing.T) {
	a, b := namedUpstream(t, "upstream-a"), namedUpstream(t, "upstream-b")
	h := startEdge(t, Config{HTTPSPort: 8443},
		Route{Host: "a.test", Service: "a", Upstreams: []string{a.URL}},
		Route{Host: "b.test", Service: "b", Upstreams: []string{b.URL}, HSTSMaxAge: 300},
	)
	// Before HTTP/3 runs, nothing is advertised.
	resp, _ := do(t, h.client(t, true), "GET", "https://a.test/", nil)
	if got := resp.Header.Get("Alt-Svc"); got != "" {
		t.Errorf("Alt-Svc %q without HTTP/3", got)
	}
	addr := startQUIC(t, h)
	c := h.h3Client(t, addr)

	t.Run("routing and certificate", func(t *testing.T) {
		for _, host := range []string{"a.test", "b.test"} {
			resp, body := do(t, c, "GET", "https://"+host+"/x", nil)
			if resp.StatusCode != 200 || body != "upstream-"+host[:1] {
				t.Errorf("%s: %d %q", host, resp.StatusCode, body)
			}
			if resp.ProtoMajor != 3 {
				t.Errorf("%s: protocol %s", host, resp.Proto)
			}
			if resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName != host {
				t.Errorf("%s: certificate not the name's", host)
			}
			if got := resp.Header.Get("Alt-Svc"); got != "" {
				t.Errorf("%s: Alt-Svc %q on an HTTP/3 answer", host, got)
			}
		}
		resp, _ := do(t, c, "GET", "https://b.test/", nil)
		if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=300" {
			t.Errorf("HSTS over HTTP/3: %q", got)
		}
	})

	t.Run("421 on another Host than the SNI", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "https://a.test/", nil)
		req.Host = "b.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("status %d, want 421", resp.StatusCode)
		}
	})

	t.Run("unknown name refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, addr, &tls.Config{ServerName: "other.test", RootCAs: h.pki.pool, NextProtos: []string{"h3"}}, nil)
		if err == nil {
			conn.CloseWithError(0, "")
			t.Fatal("handshake for a name outside the table succeeded")
		}
		if !strings.Contains(err.Error(), "unrecognized name") {
			t.Errorf("error %v, want the unrecognized_name alert", err)
		}
		if h.pki.wasAsked("other.test") {
			t.Error("the certificate source was asked for an unknown name")
		}
	})

	t.Run("resumption without 0-RTT", func(t *testing.T) {
		cfg := &tls.Config{ServerName: "a.test", RootCAs: h.pki.pool, NextProtos: []string{"h3"},
			ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		for i := range 2 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			conn, err := quic.DialAddrEarly(ctx, addr, cfg, nil)
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			select {
			case <-conn.HandshakeComplete():
			case <-ctx.Done():
				t.Fatal("handshake did not complete")
			}
			// Wait for the ticket, which comes after the handshake.
			if i == 0 {
				poll.Until(t, "a session ticket", waitTimeout, poll.True(func() bool { _, ok := cfg.ClientSessionCache.Get("a.test"); return ok }))
			}
			st := conn.ConnectionState()
			conn.CloseWithError(0, "")
			cancel()
			if i == 1 {
				if !st.TLS.DidResume {
					t.Error("second connection did not resume")
				}
				if st.Used0RTT {
					t.Error("0-RTT was accepted")
				}
			}
		}
	})

	t.Run("Alt-Svc over TCP", func(t *testing.T) {
		want := `h3=":` + strconv.Itoa(8443) + `"; ma=86400`
		for _, h2 := range []bool{false, true} {
			resp, _ := do(t, h.client(t, h2), "GET", "https://a.test/", nil)
			if got := resp.Header.Values("Alt-Svc"); len(got) != 1 || got[0] != want {
				t.Errorf("h2=%v: Alt-Svc %q, want %q", h2, got, want)
			}
		}
		// Error pages advertise it too.
		resp, _ := do(t, h.client(t, false), "GET", "https://a.test/", http.Header{"Host": {"b.test"}})
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Fatalf("status %d, want 421", resp.StatusCode)
		}
		if got := resp.Header.Get("Alt-Svc"); got != want {
			t.Errorf("error page: Alt-Svc %q, want %q", got, want)
		}
	})
}

// ListenHTTPS opens TCP and UDP on one port, and names which of the two
// could not be had.
func TestListenHTTPS(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ln, pc, err := ListenHTTPS("127.0.0.1:0", true, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer pc.Close()
	if tcp, udp := ln.Addr().(*net.TCPAddr).Port, pc.LocalAddr().(*net.UDPAddr).Port; tcp != udp {
		t.Errorf("TCP port %d, UDP port %d: want one port", tcp, udp)
	}
	if _, _, err := ListenHTTPS(ln.Addr().String(), false, log); !isListenError(err, "HTTPS") {
		t.Errorf("a taken TCP port: %v, want a ListenError of HTTPS", err)
	}
	// The UDP port alone taken: the TCP one is free again once ln closes.
	addr := ln.Addr().String()
	ln.Close()
	if _, _, err := ListenHTTPS(addr, true, log); !isListenError(err, "HTTP/3 (UDP)") {
		t.Errorf("a taken UDP port: %v, want a ListenError of HTTP/3 (UDP)", err)
	}
	ln2, pc2, err := ListenHTTPS(addr, false, log)
	if err != nil || pc2 != nil {
		t.Fatalf("HTTP/3 off with the UDP port taken: %v, %v; want TCP alone", pc2, err)
	}
	ln2.Close()
}

func isListenError(err error, what string) bool {
	var le *ListenError
	return errors.As(err, &le) && le.What == what && le.Err != nil
}
