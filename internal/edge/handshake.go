package edge

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/metrics"
)

// maxHandshakes bounds the TLS handshakes in flight on one HTTPS listener;
// past it, new connections wait in the kernel's accept queue. Each
// handshake ends within the handshake timeout, and a client needs this many
// stalled handshakes at once to delay anyone else's.
const maxHandshakes = 4096

// handshakeListener accepts TCP connections, does each one's TLS handshake
// on a short-lived goroutine of its own, and hands net/http only
// connections whose handshake is done (as *tls.Conn, so that net/http
// dispatches ALPN h2, sets Request.TLS, and finds its own handshake call a
// no-op).
//
// Why: a goroutine's stack grows to fit its deepest call and shrinks only
// at a GC, by half each time, and never below four times what it is using.
// The handshake (ECDSA signing, ML-KEM) is the deepest thing a connection
// does; done on net/http's serve goroutine, every connection of a burst
// kept its grown stack until GCs had halved it again, which sets the
// process's peak memory, and with it the pages it keeps. Here the
// handshake's stack dies with its goroutine.
type handshakeListener struct {
	net.Listener // TCP

	cfg     *tls.Config
	timeout time.Duration // whole handshake; net/http's ReadHeaderTimeout
	log     *slog.Logger
	counts  *connCounts       // if not nil, kept up to date
	metrics *metrics.Registry // counts each handshake; may be nil

	start sync.Once
	slots chan struct{} // one per handshake in flight; cap maxHandshakes
	ready chan accepted // unbuffered

	mu       sync.Mutex
	inFlight map[net.Conn]struct{} // closed by Close; nil once closed

	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when acceptLoop ends
	stopErr   error         // why it ended; set before done is closed
}

type accepted struct {
	c   net.Conn
	err error
}

func newHandshakeListener(ln net.Listener, cfg *tls.Config, timeout time.Duration, log *slog.Logger) *handshakeListener {
	return &handshakeListener{
		Listener: ln,
		cfg:      cfg,
		timeout:  timeout,
		log:      log,
		slots:    make(chan struct{}, maxHandshakes),
		ready:    make(chan accepted),
		inFlight: make(map[net.Conn]struct{}),
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// Accept returns the next connection whose handshake succeeded, or an
// error of the TCP listener (net/http retries temporary ones).
func (l *handshakeListener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case a := <-l.ready:
		return a.c, a.err
	case <-l.done:
		return nil, l.stopErr
	}
}

// Close stops accepting and closes the connections still in their
// handshake.
func (l *handshakeListener) Close() error {
	l.closeOnce.Do(func() { close(l.closing) })
	err := l.Listener.Close()
	l.mu.Lock()
	for c := range l.inFlight {
		c.Close()
	}
	l.inFlight = nil
	l.mu.Unlock()
	return err
}

func (l *handshakeListener) acceptLoop() {
	defer close(l.done)
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.closing:
			l.stopErr = net.ErrClosed
			return
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			var ne net.Error
			if errors.As(err, &ne) && ne.Temporary() { //nolint:staticcheck // as net/http's Serve
				// net/http logs it and waits before its next Accept.
				select {
				case l.ready <- accepted{err: err}:
					continue
				case <-l.closing:
					err = net.ErrClosed
				}
			}
			l.stopErr = err
			return
		}
		if l.counts != nil {
			l.counts.accepted.Add(1)
			l.counts.handshakes.Add(1)
		}
		go l.handshake(c)
	}
}

// handshake runs on its own goroutine with one slot of l.slots held.
func (l *handshakeListener) handshake(c net.Conn) {
	defer func() {
		<-l.slots
		if l.counts != nil {
			l.counts.handshakes.Add(-1)
		}
	}()
	if !l.track(c) {
		c.Close()
		return
	}
	tc := tls.Server(c, l.cfg)
	tc.SetDeadline(time.Now().Add(l.timeout))
	err := tc.Handshake()
	if !l.untrack(c) {
		c.Close() // closed by Close meanwhile
		return
	}
	if err != nil {
		l.metrics.Handshake(nil)
		l.failed(c, err)
		return
	}
	if l.metrics != nil {
		st := tc.ConnectionState()
		l.metrics.Handshake(&st)
	}
	tc.SetDeadline(time.Time{})
	select {
	case l.ready <- accepted{c: tc}:
	case <-l.closing:
		c.Close()
	}
}

// failed closes c after a failed handshake. A client that spoke plain HTTP
// gets a 400 answer saying so, as from net/http.
func (l *handshakeListener) failed(c net.Conn, err error) {
	reason := err.Error()
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && recordLooksLikeHTTP(re.RecordHeader) {
		io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		reason = "client sent an HTTP request to an HTTPS server"
	}
	c.Close()
	// Routine at the edge: scanners, unknown names, clients giving up.
	l.log.Debug("TLS handshake failed", "remote", c.RemoteAddr().String(), "err", reason)
}

// track records c as in its handshake, unless the listener is closed.
func (l *handshakeListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight == nil {
		return false
	}
	l.inFlight[c] = struct{}{}
	return true
}

// untrack forgets c, and reports false if Close closed it.
func (l *handshakeListener) untrack(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight == nil {
		return false
	}
	delete(l.inFlight, c)
	return true
}

// recordLooksLikeHTTP reports whether a TLS record header is the start of
// a plain HTTP request (net/http's test).
func recordLooksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}
