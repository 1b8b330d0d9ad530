package inspect

import (
	"net"
	"sync"
	"time"
)

// captureLimit bounds the bytes kept of each direction of one connection:
// enough for any ClientHello and for a ServerHello with the TLS 1.2 messages
// that follow it in clear (a certificate chain of a few dozen kilobytes).
// What lies beyond is not captured and the report says so.
const captureLimit = 128 << 10

// wire wraps the TCP connection of one handshake and keeps a copy of the
// bytes sent and received (each up to captureLimit), so that the report
// shows what was really on the wire rather than what the configuration
// asked for. It also notes when the first flight left and when the first
// byte of the answer came back. Safe for the one reader and one writer a
// tls.Conn uses at a time.
type wire struct {
	net.Conn
	now func() time.Time

	mu        sync.Mutex
	out, in   []byte
	truncated bool
	sent      time.Time // the first write (the ClientHello) returned
	answered  time.Time // the first byte from the server arrived
	stopped   bool
}

func newWire(c net.Conn, now func() time.Time) *wire { return &wire{Conn: c, now: now} }

func (w *wire) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	w.mu.Lock()
	if w.sent.IsZero() && n > 0 {
		w.sent = w.now()
	}
	w.out = w.keep(w.out, p[:n])
	w.mu.Unlock()
	return n, err
}

func (w *wire) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	w.mu.Lock()
	if w.answered.IsZero() && n > 0 {
		w.answered = w.now()
	}
	w.in = w.keep(w.in, p[:n])
	w.mu.Unlock()
	return n, err
}

func (w *wire) keep(buf, p []byte) []byte {
	if w.stopped {
		return buf
	}
	if room := captureLimit - len(buf); len(p) > room {
		p = p[:room]
		w.truncated = true
	}
	return append(buf, p...)
}

// stop ends the capture: what follows the handshake is the HTTP exchange.
func (w *wire) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// bytes returns what was captured each way.
func (w *wire) bytes() (out, in []byte, truncated bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out, w.in, w.truncated
}

// timing returns when the first flight was sent and answered.
func (w *wire) timing() (sent, answered time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent, w.answered
}
