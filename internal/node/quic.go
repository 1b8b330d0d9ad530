package node

import (
	"context"
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
			edge.CheckUDPBuffers(pc, n.log)
			return nil
		}
		ln.Close()
		if portStr != "0" || attempt == 10 {
			return fail("HTTP/3 (UDP)", err)
		}
	}
}

// quicKeys returns the fleet's QUIC keys (the snapshot's if the node
// started from it and the store cannot give them; nil: keys of the node's
// own), and records them for the snapshot (fleetState.quic).
func (n *Node) quicKeys(ctx context.Context) *edge.QUICKeys {
	var snap *fleet.Snapshot
	if n.fleet.static {
		snap = n.fleet.loaded
	}
	k := fleet.QUICKeysForNode(ctx, n.db, n.fleet.id, snap, n.log)
	if k == nil {
		return nil
	}
	n.fleet.quic = k
	return &edge.QUICKeys{StatelessReset: k.StatelessReset, Token: k.Token}
}
