package platform

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/spine-platform/spine/internal/hostname"
)

// checkUpstreamHostPort refuses an upstream whose host or port the edge
// could not dial. The edge validates every route again and refuses a whole
// route table that holds one bad upstream, so anything the platform lets
// through here would stop every later change from going live, for every
// project.
func checkUpstreamHostPort(raw string, u *url.URL) error {
	if u.Hostname() == "" {
		return invalid("invalid_upstream", fmt.Sprintf("upstream %q has no host name; write it like http://127.0.0.1:9000", redactUpstream(raw)))
	}
	if p := u.Port(); p != "" {
		if n, err := hostname.ParsePort(p); err != nil || n == 0 {
			return invalid("invalid_upstream", fmt.Sprintf("upstream %q: port %q must be a number from 1 to 65535", redactUpstream(raw), p))
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return invalid("invalid_upstream", fmt.Sprintf("upstream %q: the port after the colon is missing", redactUpstream(raw)))
	}
	return nil
}

// checkServedUpstreams refuses upstreams that name a hostname Spine itself
// serves (any project's, or one of newHosts) on one of Spine's own ports:
// the edge would proxy each request to itself, without end.
func (p *Platform) checkServedUpstreams(ctx context.Context, ups, newHosts []string) error {
	if len(p.ownAddrs) == 0 {
		return nil
	}
	ownPorts := map[int]bool{}
	for a := range p.ownAddrs {
		if _, port, err := net.SplitHostPort(a); err == nil {
			n, _ := strconv.Atoi(port) // ownAddr wrote it
			ownPorts[n] = true
		}
	}
	var served map[string]bool
	for _, raw := range ups {
		u, err := url.Parse(raw)
		if err != nil {
			continue // checkUpstream has refused it already
		}
		port := upstreamPort(u)
		if !ownPorts[port] {
			continue
		}
		if served == nil {
			svcs, err := p.store.ListServices(ctx, "")
			if err != nil {
				return fromStore(err, "services")
			}
			served = map[string]bool{}
			for _, s := range svcs {
				for _, h := range s.Hostnames {
					served[h] = true
				}
			}
			for _, h := range newHosts {
				served[h] = true
			}
		}
		if host, err := hostname.Normalize(u.Hostname()); err == nil && served[host] {
			return invalid("proxy_loop", fmt.Sprintf("upstream %q is a hostname Spine serves, on Spine's own port; that would make a proxy loop", redactUpstream(raw)))
		}
	}
	return nil
}

// upstreamPort returns the port an upstream URL dials: its own, else its
// scheme's. The URL has passed checkUpstreamHostPort.
func upstreamPort(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, _ := hostname.ParsePort(p)
		return n
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}

// redactUpstream returns raw fit to repeat in an error message: a password
// in it (user:secret@host), even in a URL that does not parse, is masked.
func redactUpstream(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return raw
	}
	start := strings.Index(raw, "://") + 3
	if start < 3 || start > at {
		start = 0
	}
	return raw[:start] + "xxxxx" + raw[at:]
}
