package edge

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"golang.org/x/time/rate"
)

// QUICKeys are the keys of QUIC that must be the same on every node that
// answers for the same names: a client's address-validation token (Retry,
// NEW_TOKEN), made by one node, is then good on another, and a node that
// receives a packet of a connection it does not hold (another node's, or
// its own from before a restart) answers with a stateless reset the client
// recognises, instead of leaving it to time out (RFC 9000 sections 8.1.3
// and 10.3).
type QUICKeys struct {
	// StatelessReset derives the stateless reset token of each connection ID.
	StatelessReset [32]byte
	// Token encrypts address-validation tokens.
	Token [32]byte
}

// Bounds of HTTP/3 that have no TCP counterpart in Config.
const (
	// quicUniStreams bounds the unidirectional streams a client may open:
	// HTTP/3 needs three (control, QPACK encoder and decoder).
	quicUniStreams = 16
	// quicRetryRate and quicRetryBurst: past this many new connections a
	// second, a client must prove its address with a Retry round trip
	// before the edge spends a handshake on it (RFC 9000 section 8.1.2),
	// which takes spoofed-source floods, and the amplification they buy,
	// off the edge.
	quicRetryRate  = 500
	quicRetryBurst = 1000
	// quicAltSvcMaxAge is how long a client may remember the Alt-Svc
	// advertisement (one day).
	quicAltSvcMaxAge = 86400
	// UDPBufferWant is the socket buffer size quic-go asks for (7 MiB);
	// smaller buffers drop packets under load.
	UDPBufferWant = 7 << 20
)

// ServeQUIC serves HTTP/3 on pc (UDP, normally on the HTTPS port) until
// Shutdown, with the same routing, certificates, 421 on a Host that is not
// the connection's SNI, limits and timeouts as ServeTLS: the TLS handshake
// takes at most ReadHeaderTimeout, an idle connection closes after
// IdleTimeout, a connection has at most MaxConcurrentStreams requests at
// once, and headers are limited to MaxHeaderBytes. 0-RTT is off: early data
// can be replayed. Once it runs, HTTPS answers over TCP carry
// Alt-Svc: h3=":HTTPSPort". Like http.Server, it returns
// http.ErrServerClosed after Shutdown.
//
// keys, if not nil, are the fleet's shared QUIC keys; nil uses keys of
// this Server's own (a single node).
func (s *Server) ServeQUIC(pc net.PacketConn, keys *QUICKeys) error {
	if keys == nil {
		keys = new(QUICKeys)
		rand.Read(keys.StatelessReset[:])
		rand.Read(keys.Token[:])
	}
	reset, token := quic.StatelessResetKey(keys.StatelessReset), quic.TokenGeneratorKey(keys.Token)
	retry := rate.NewLimiter(quicRetryRate, quicRetryBurst)
	tr := &quic.Transport{
		Conn:                pc,
		StatelessResetKey:   &reset,
		TokenGeneratorKey:   &token,
		VerifySourceAddress: func(net.Addr) bool { return !retry.Allow() },
	}
	qcfg := &quic.Config{
		// The handshake may idle this long, and takes at most twice it.
		HandshakeIdleTimeout:  s.cfg.ReadHeaderTimeout / 2,
		MaxIdleTimeout:        s.cfg.IdleTimeout,
		MaxIncomingStreams:    int64(s.cfg.MaxConcurrentStreams),
		MaxIncomingUniStreams: quicUniStreams,
		Allow0RTT:             false,
	}
	// http3.ConfigureTLSConfig offers ALPN h3 alone, on the listener's
	// configuration and on each one GetConfigForClient returns.
	ln, err := tr.Listen(http3.ConfigureTLSConfig(s.TLSConfig()), qcfg)
	if err != nil {
		return fmt.Errorf("edge: listening for HTTP/3: %w", err)
	}
	srv := &http3.Server{
		Handler:        httpsHandler{s},
		MaxHeaderBytes: s.cfg.MaxHeaderBytes,
		IdleTimeout:    s.cfg.IdleTimeout,
		Logger:         s.log.With("listener", "h3"),
	}
	if err := s.trackQUIC(srv, tr); err != nil {
		tr.Close()
		return err
	}
	s.altSvc.Store(&[]string{`h3=":` + strconv.Itoa(s.cfg.HTTPSPort) + `"; ma=` + strconv.Itoa(quicAltSvcMaxAge)})
	err = srv.ServeListener(ln)
	s.altSvc.Store(nil)
	return err
}

// quicServer is a running HTTP/3 server and the transport under it.
type quicServer struct {
	srv *http3.Server
	tr  *quic.Transport
}

func (s *Server) trackQUIC(srv *http3.Server, tr *quic.Transport) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return http.ErrServerClosed
	}
	s.quic = append(s.quic, quicServer{srv, tr})
	return nil
}

// shutdownQUIC sends GOAWAY on every HTTP/3 connection, waits (until ctx
// ends) for their requests, then closes the transports.
func shutdownQUIC(ctx context.Context, q quicServer) error {
	err := q.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = nil // ServeTLS's http.Server reports the same deadline
	}
	return errors.Join(err, q.tr.Close())
}

// altSvcHeader is the Alt-Svc value of answers over TCP: nil until
// ServeQUIC runs.
func (s *Server) altSvcHeader() []string {
	if p := s.altSvc.Load(); p != nil {
		return *p
	}
	return nil
}

// UDPBuffers reports the receive and send buffer sizes the kernel gave pc
// after asking for UDPBufferWant each (Linux reports twice what it
// allows; the sizes here are what it reports). An operator whose buffers
// come out smaller raises net.core.rmem_max and net.core.wmem_max.
func UDPBuffers(pc net.PacketConn) (read, write int, err error) {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return 0, 0, errors.New("edge: not a UDP socket")
	}
	uc.SetReadBuffer(UDPBufferWant)
	uc.SetWriteBuffer(UDPBufferWant)
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var rerr, werr error
	cerr := rc.Control(func(fd uintptr) {
		read, rerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		write, werr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	})
	return read, write, errors.Join(cerr, rerr, werr)
}

// CheckUDPBuffers warns on log when the kernel keeps the UDP buffers of pc
// (HTTP/3's socket) below what QUIC needs to not drop packets under load,
// and says how to raise them.
func CheckUDPBuffers(pc net.PacketConn, log *slog.Logger) {
	read, write, err := UDPBuffers(pc)
	if err != nil {
		log.Warn("HTTP/3: cannot read the UDP buffer sizes", "err", err)
		return
	}
	if read < UDPBufferWant || write < UDPBufferWant {
		log.Warn("HTTP/3: the UDP buffers are smaller than QUIC needs, which drops packets under load; "+
			"raise them with: sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000",
			"receive_buffer", read, "send_buffer", write, "want", UDPBufferWant)
	}
}

// ListenError is a listener ListenHTTPS could not open.
type ListenError struct {
	What string // "HTTPS" or "HTTP/3 (UDP)"
	Err  error
}

func (e *ListenError) Error() string { return "edge: listening for " + e.What + ": " + e.Err.Error() }

func (e *ListenError) Unwrap() error { return e.Err }

// ListenHTTPS opens the HTTPS listener on addr (HOST:PORT) and, with
// http3, a UDP socket on the same port for ServeQUIC, whose buffers
// CheckUDPBuffers checks. With port 0, a free TCP port may be taken on
// UDP: then both are tried again on another port, up to ten times. Its
// error is a *ListenError.
func ListenHTTPS(addr string, http3 bool, log *slog.Logger) (net.Listener, net.PacketConn, error) {
	host, port, _ := net.SplitHostPort(addr)
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, &ListenError{What: "HTTPS", Err: err}
		}
		if !http3 {
			return ln, nil, nil
		}
		_, got, _ := net.SplitHostPort(ln.Addr().String())
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, got))
		if err == nil {
			CheckUDPBuffers(pc, log)
			return ln, pc, nil
		}
		ln.Close()
		if port != "0" || attempt == 10 {
			return nil, nil, &ListenError{What: "HTTP/3 (UDP)", Err: err}
		}
	}
}
