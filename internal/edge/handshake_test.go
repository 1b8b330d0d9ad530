package edge

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
)

// TestHandshakeTimeout: a client that stalls its TLS handshake, before its
// ClientHello or half way (ClientHello sent, Finished withheld), is closed
// by the edge after ReadHeaderTimeout.
func TestHandshakeTimeout(t *testing.T) {
	up := namedUpstream(t, "up")
	h := startEdge(t, Config{ReadHeaderTimeout: 200 * time.Millisecond},
		Route{Host: "a.test", Upstreams: []string{up.URL}})

	for _, tc := range []struct {
		name  string
		stall func(t *testing.T, raw net.Conn)
	}{
		{"silent", func(*testing.T, net.Conn) {}},
		{"half way", func(t *testing.T, raw net.Conn) {
			// The client's second write is its Finished: hold it back.
			stalled, release := make(chan struct{}), make(chan struct{})
			t.Cleanup(func() { close(release) })
			w := &stallingConn{Conn: raw, stalled: stalled, release: release}
			go tls.Client(w, &tls.Config{ServerName: "a.test", RootCAs: h.pki.pool}).Handshake()
			<-stalled
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := net.Dial("tcp", h.tlsAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			tc.stall(t, raw)
			// The deadline only guards against a hang: the edge's
			// timeout is far shorter.
			raw.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err = io.Copy(io.Discard, raw)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the edge kept a stalled handshake open")
			}
		})
	}
	// The releaser (release.go) waits for no handshake in flight.
	poll.Until(t, "no handshake counted in flight", waitTimeout, poll.True(func() bool { return h.s.mem.conns.handshakes.Load() == 0 }))
	if n := h.s.mem.conns.accepted.Load(); n != 2 {
		t.Errorf("%d connections counted, want 2", n)
	}
}

// stallingConn passes its first Write through; the second closes stalled
// and blocks until release is closed.
type stallingConn struct {
	net.Conn
	writes  int
	stalled chan struct{}
	release chan struct{}
}

func (c *stallingConn) Write(p []byte) (int, error) {
	c.writes++
	if c.writes == 1 {
		return c.Conn.Write(p)
	}
	if c.writes == 2 {
		close(c.stalled)
	}
	<-c.release
	return 0, net.ErrClosed
}

// TestPlainHTTPOnHTTPSPort: a plain HTTP request on the HTTPS port gets a
// 400 that says why.
func TestPlainHTTPOnHTTPSPort(t *testing.T) {
	h := startEdge(t, Config{})
	c, err := net.Dial("tcp", h.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
	b, _ := io.ReadAll(c)
	if got := string(b); !strings.HasPrefix(got, "HTTP/1.0 400 ") || !strings.Contains(got, "HTTP request to an HTTPS server") {
		t.Errorf("answer %q, want a 400 about plain HTTP", got)
	}
}

// TestCloseEndsHandshakes: closing the HTTPS listener (as Shutdown does)
// closes the connections still in their TLS handshake, and Accept then
// returns net.ErrClosed.
func TestCloseEndsHandshakes(t *testing.T) {
	s := New(Config{Logger: testLogger(t)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newHandshakeListener(ln, s.TLSConfig(), time.Hour, s.log)
	errc := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if c != nil {
			c.Close()
			err = errors.New("a connection without a handshake was accepted")
		}
		errc <- err
	}()
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	poll.Until(t, "the listener to start the handshake", waitTimeout, poll.True(func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.inFlight) == 1
	}))

	l.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept: %v, want net.ErrClosed", err)
	}
	silent.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, silent); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Error("a connection in its handshake stayed open after Close")
	}
}
