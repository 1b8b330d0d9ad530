package edge

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
)

// An HTTP/2 client that opens streams and cancels them at once (rapid
// reset, CVE-2023-44487) makes the edge start a request to an upstream for
// each stream while it pays almost nothing. net/http bounds the handlers it
// runs at once per connection and closes a connection whose queue of
// not-yet-started handlers grows too long, but a client that resets at just
// the rate the handlers finish keeps its connection for ever. So the edge
// counts, per connection, the streams whose client went away before the
// answer was done, and closes a connection once more than
// maxCanceledStreams of them make up more than half of all its streams: a
// browser that cancels a few requests now and then never comes near it.
const maxCanceledStreams = 100

// maxReadFrameSize is the largest HTTP/2 frame the edge reads (see ServeTLS).
const maxReadFrameSize = 16 << 10

// connStreams counts one HTTP/2 connection's streams.
type connStreams struct {
	conn     net.Conn
	total    atomic.Int64
	canceled atomic.Int64
	closed   atomic.Bool
}

type connStreamsKey struct{}

// connContext is the HTTPS server's ConnContext: it gives every connection
// its stream counters.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connStreamsKey{}, &connStreams{conn: c})
}

// countStream records the end of an HTTP/2 request on its connection and
// closes the connection when its client cancels too many streams.
func (s *Server) countStream(r *http.Request) {
	cs, ok := r.Context().Value(connStreamsKey{}).(*connStreams)
	if !ok {
		return
	}
	total := cs.total.Add(1)
	if r.Context().Err() == nil {
		return
	}
	canceled := cs.canceled.Add(1)
	if canceled > maxCanceledStreams && canceled*2 > total && cs.closed.CompareAndSwap(false, true) {
		s.log.Warn("closing an HTTP/2 connection whose client cancels most of its streams (rapid reset)",
			"remote", cs.conn.RemoteAddr().String(), "streams", total, "canceled", canceled)
		cs.conn.Close()
	}
}
