package webhooks

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/spine-platform/spine/internal/platform"
)

// RefusedError is the error of a connection the dialer refused.
type RefusedError struct {
	Addr string // the resolved address
	What string // what it is ("a loopback address")
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused to connect to %s, %s: webhooks may reach public addresses only (the operator may allow private ones with --webhook-allow-private)", e.Addr, e.What)
}

// Dialer returns the dialer of webhook attempts: connections time out
// after timeout, and its Control refuses an address platform.RefusedAddress
// refuses.
// Control runs for each address the name resolved to, after resolution
// and before the connection is made, so a DNS answer cannot steer an
// attempt to an address that was not checked.
func Dialer(allowPrivate bool, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	d.Control = func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &RefusedError{Addr: address, What: "not an IP address"}
		}
		if what, bad := platform.RefusedAddress(ap.Addr(), allowPrivate); bad {
			return &RefusedError{Addr: ap.Addr().String(), What: what}
		}
		return nil
	}
	return d
}
