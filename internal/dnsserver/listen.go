package dnsserver

import (
	"fmt"
	"net"
)

// Listen opens the UDP socket and the TCP listener a DNS server needs, on one
// port of addr. With port 0 it picks a port free for both protocols (the
// kernel picks UDP and TCP ports independently), trying a few times.
func Listen(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dnsserver: listen address %q: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnsserver: listening for UDP on %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if i+1 >= tries {
			return nil, nil, fmt.Errorf("dnsserver: listening for TCP on %s: %w", pc.LocalAddr(), err)
		}
	}
}
