package inspect

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/spine-platform/spine/internal/hostname"
)

// ParseTarget reads URL|HOST[:PORT]: an https:// URL, a host name, an IP
// address ([v6] with a port), each with an optional port (default 443).
// serverName, if not empty, replaces the host as the name sent in SNI and
// checked against the certificate.
func ParseTarget(in, serverName string) (Target, error) {
	t := Target{Input: in, Port: 443, Path: "/"}
	s := strings.TrimSpace(in)
	if s == "" {
		return t, fmt.Errorf("inspect: no target: give a URL (https://host:port/path) or HOST[:PORT]")
	}
	hostport := s
	if i := strings.Index(s, "://"); i >= 0 {
		u, err := url.Parse(s)
		if err != nil {
			return t, fmt.Errorf("inspect: %q is not a valid URL: %w", in, err)
		}
		if !strings.EqualFold(u.Scheme, "https") {
			return t, fmt.Errorf("inspect: %q: inspect connects with TLS, so the URL must start with https:// (or give HOST[:PORT])", in)
		}
		if u.User != nil {
			return t, fmt.Errorf("inspect: %q holds credentials; inspect sends none: leave them out", u.Redacted())
		}
		if u.Host == "" {
			return t, fmt.Errorf("inspect: %q has no host", in)
		}
		hostport = u.Host
		if u.EscapedPath() != "" {
			t.Path = u.EscapedPath()
		}
		if u.RawQuery != "" {
			t.Path += "?" + u.RawQuery
		}
	} else if strings.ContainsAny(s, "/?#@ ") {
		return t, fmt.Errorf("inspect: %q is neither a URL nor HOST[:PORT]: write https://HOST[:PORT]/PATH or HOST[:PORT]", in)
	}
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return t, fmt.Errorf("inspect: %q: %w", in, err)
	}
	if port != "" {
		p, err := hostname.ParsePort(port)
		if err != nil || p == 0 {
			return t, fmt.Errorf("inspect: %q: port %q is not a number from 1 to 65535", in, port)
		}
		t.Port = p
	}
	if t.Host, err = normalizeHost(host); err != nil {
		return t, fmt.Errorf("inspect: %q: %w", in, err)
	}
	t.ServerName = t.Host
	if serverName != "" {
		if t.ServerName, err = hostname.Normalize(serverName); err != nil {
			return t, fmt.Errorf("inspect: --servername: %w", err)
		}
	} else if _, err := netip.ParseAddr(t.Host); err == nil {
		t.ServerName = "" // no SNI for an address; the certificate is checked against it
	}
	return t, nil
}

// splitHostPort accepts "host", "host:port", "[v6]", "[v6]:port" and a
// bare IPv6 address.
func splitHostPort(s string) (host, port string, err error) {
	if _, err := netip.ParseAddr(s); err == nil {
		return s, "", nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return s[1 : len(s)-1], "", nil
	}
	if !strings.Contains(s, ":") {
		return s, "", nil
	}
	host, port, err = net.SplitHostPort(s)
	if err != nil {
		return "", "", fmt.Errorf("write HOST:PORT, or [IPv6]:PORT")
	}
	if port == "" {
		return "", "", fmt.Errorf("the port after %q is empty: give a number from 1 to 65535, or leave the colon out for 443", host)
	}
	return host, port, nil
}

func normalizeHost(h string) (string, error) {
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("an address with a zone (%s) cannot be checked against a certificate; give the address without %%%s", h, a.Zone())
		}
		return a.String(), nil
	}
	return hostname.Normalize(h)
}

// hostPort is the target's address for a given IP.
func hostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }
