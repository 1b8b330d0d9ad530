package inspect

import (
	"crypto/tls"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// clock is a tls.Config.Time that remembers the last second it returned.
// crypto/tls reads the time just before it computes a TLS 1.3 ticket's
// use-by time (now + ticket_lifetime) and stores the ticket right after,
// so use_by minus that second is the lifetime the server sent, exactly.
type clock struct{ last atomic.Int64 }

func (c *clock) now() time.Time {
	t := time.Now()
	c.last.Store(t.Unix())
	return t
}

// ticket is one session ticket the server sent.
type ticket struct {
	size       int
	lifetime   int64 // seconds; 0 if the server gave none (TLS 1.2 hint 0)
	version    uint16
	receivedAt time.Time
}

// ticketCache is the client's session cache for one inspection: it holds
// the last ticket received (one entry: every connection of an inspection
// goes to the same server under the same name) and notes each one.
// crypto/tls calls it from the connection's goroutines.
type ticketCache struct {
	clock *clock

	mu       sync.Mutex
	state    *tls.ClientSessionState
	received []ticket
}

var _ tls.ClientSessionCache = (*ticketCache)(nil)

func (c *ticketCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state, c.state != nil
}

func (c *ticketCache) Put(_ string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs == nil {
		c.state = nil // crypto/tls drops a ticket the server refused
		return
	}
	c.state = cs
	t := ticket{receivedAt: time.Now()}
	raw, state, err := cs.ResumptionState()
	if err != nil || state == nil {
		c.received = append(c.received, t)
		return
	}
	t.size = len(raw)
	if b, err := state.Bytes(); err == nil {
		if v, useBy, err := sessionUseBy(b); err == nil {
			t.version = v
			if useBy > 0 {
				t.lifetime = int64(useBy) - c.clock.last.Load()
			}
		}
		clear(b) // it holds the resumption secret
	}
	c.received = append(c.received, t)
}

// tickets returns the tickets received so far.
func (c *ticketCache) tickets() []ticket {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ticket(nil), c.received...)
}

// sessionUseBy reads the version and, for a TLS 1.3 client session, the
// use_by time (seconds since the epoch) from the encoding of
// tls.SessionState that its Bytes method documents. crypto/tls keeps
// use_by unexported, and the ticket's lifetime is only on the wire
// encrypted. The resumption secret it skips is never copied.
func sessionUseBy(b []byte) (version uint16, useBy uint64, err error) {
	s := cryptobyte.String(b)
	var typ, ems, earlyData uint8
	var suite uint16
	var createdAt uint64
	var secret, extra, certs, chains cryptobyte.String
	if !s.ReadUint16(&version) || !s.ReadUint8(&typ) || !s.ReadUint16(&suite) || !s.ReadUint64(&createdAt) ||
		!s.ReadUint8LengthPrefixed(&secret) || !s.ReadUint24LengthPrefixed(&extra) ||
		!s.ReadUint8(&ems) || !s.ReadUint8(&earlyData) ||
		!s.ReadUint24LengthPrefixed(&certs) || !s.ReadUint24LengthPrefixed(&chains) {
		return 0, 0, errMalformedSession
	}
	if earlyData == 1 {
		var alpn cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&alpn) {
			return 0, 0, errMalformedSession
		}
	}
	if version >= tls.VersionTLS13 && typ == 2 {
		if !s.ReadUint64(&useBy) {
			return 0, 0, errMalformedSession
		}
	}
	return version, useBy, nil
}

var errMalformedSession = errors.New("inspect: session state not in the documented encoding")
