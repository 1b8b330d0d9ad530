package hostname

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// ParsePort reads a port number: decimal digits only (no sign, no name such
// as "http"), from 0 to 65535. Leading zeros are read as url.Parse and
// net.Dial read them ("08443" is 8443), so a caller that compares ports
// compares the numbers. 0 is returned like any other port: a listener takes
// it to mean any free port, and a caller that must dial refuses it.
func ParsePort(p string) (int, error) {
	if p == "" {
		return 0, errors.New("hostname: port is empty")
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("hostname: port %q is not a number", p)
		}
		if n = n*10 + int(c-'0'); n > 65535 {
			return 0, fmt.Errorf("hostname: port %q is above 65535", p)
		}
	}
	return n, nil
}

// ValidListenAddr reports whether addr is HOST:PORT or :PORT with a port
// number (ParsePort; 0 picks a free one) and a host without spaces or
// slashes: a listen address as Spine's flags take it.
func ValidListenAddr(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || strings.ContainsAny(host, " /") {
		return false
	}
	_, err = ParsePort(port)
	return err == nil
}

// CheckListenAddr returns nil for a ValidListenAddr, else an error saying
// what to write instead.
func CheckListenAddr(addr string) error {
	if ValidListenAddr(addr) {
		return nil
	}
	return errors.New("write HOST:PORT or :PORT with a port from 0 to 65535, e.g. :443 or 127.0.0.1:8443")
}
