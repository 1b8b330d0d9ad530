package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/fleet"
)

// listenHTTPS opens the HTTPS listener and, unless HTTP/3 is off, a UDP
// socket on the same port. With port 0, a free TCP port may be taken on
// UDP: then both are tried again on another port.
func (n *Node) listenHTTPS() error {
	addr := n.cfg.HTTPSAddr
	host, portStr, _ := net.SplitHostPort(addr) // checked by Validate
	fail := func(what string, err error) error {
		hint := "is another server using it? pick another address"
		if what == "HTTP/3 (UDP)" {
			hint += ", or turn HTTP/3 off"
		}
		return &FieldError{Field: "HTTPSAddr", Value: strconv.Quote(addr), Err: fmt.Errorf("listening for %s: %w (%s)", what, err, hint)}
	}
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fail("HTTPS", err)
		}
		if n.cfg.DisableHTTP3 {
			n.httpsLn = ln
			return nil
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port(ln.Addr()))))
		if err == nil {
			n.httpsLn, n.quicConn = ln, pc
			n.checkUDPBuffers()
			return nil
		}
		ln.Close()
		if portStr != "0" || attempt == 10 {
			return fail("HTTP/3 (UDP)", err)
		}
	}
}

// checkUDPBuffers warns when the kernel keeps the UDP buffers of HTTP/3
// below what QUIC needs to not drop packets under load.
func (n *Node) checkUDPBuffers() {
	read, write, err := edge.UDPBuffers(n.quicConn)
	if err != nil {
		n.log.Warn("HTTP/3: cannot read the UDP buffer sizes", "err", err)
		return
	}
	if read < edge.UDPBufferWant || write < edge.UDPBufferWant {
		n.log.Warn("HTTP/3: the UDP buffers are smaller than QUIC needs, which drops packets under load; "+
			"raise them with: sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000",
			"receive_buffer", read, "send_buffer", write, "want", edge.UDPBufferWant)
	}
}

// quicKeys returns the fleet's QUIC keys, and records them for the
// snapshot (fleetState.quic). When the store cannot give them, as when the
// node starts from its snapshot with PostgreSQL away, they are the
// snapshot's (the store's as of the snapshot: they are never rotated), or
// nil (keys of this node's own) if the snapshot has none.
func (n *Node) quicKeys(ctx context.Context) *edge.QUICKeys {
	k, err := fleet.LoadQUICKeys(ctx, n.db, n.fleet.id)
	if err != nil {
		if n.fleet.static {
			if sk, ok := n.fleet.loaded.QUIC(); ok {
				n.log.Warn("HTTP/3: the fleet's QUIC keys could not be read from the store; using the snapshot's", "err", err)
				k, err = sk, nil
			}
		}
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			n.log.Warn("HTTP/3: the fleet's QUIC keys could not be read; this node uses keys of its own until it restarts "+
				"(clients of other nodes that come here do a full handshake and time out instead of a stateless reset)", "err", err)
		}
		return nil
	}
	n.fleet.quic = &k
	return &edge.QUICKeys{StatelessReset: k.StatelessReset, Token: k.Token}
}
