package platform

import (
	"net/url"
	"strconv"
	"testing"
)

// FuzzCheckUpstream checks that every upstream URL the platform accepts is
// one the edge takes too (absolute http or https, a host, a port from 1 to
// 65535, no credentials, query or fragment), that its canonical form is
// stable, and that no input makes it panic.
func FuzzCheckUpstream(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:9000", "https://api.internal/v1/", "HTTP://Example.COM", "http://127.0.0.1:9/?",
		"http://[::1]:80", "http://:80", "http://h:0", "http://h:99999", "http://u:p@h", "ftp://h", "http://h/#x", "http://127.0.0.1:8443"} {
		f.Add(s)
	}
	p := &Platform{ownAddrs: map[string]bool{"127.0.0.1:8443": true}}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := p.checkUpstream(raw)
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Kind != Invalid || e.Message == "" {
				t.Fatalf("checkUpstream(%q): error %v is not a user-facing Invalid error", raw, err)
			}
			return
		}
		u, err := url.Parse(out)
		if err != nil {
			t.Fatalf("accepted %q as %q, which does not parse: %v", raw, out, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			t.Fatalf("accepted %q as %q, which the edge refuses", raw, out)
		}
		if port := u.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				t.Fatalf("accepted %q with port %q", raw, port)
			}
		}
		if again, err := p.checkUpstream(out); err != nil || again != out {
			t.Fatalf("canonical form not stable: %q -> %q -> %q (%v)", raw, out, again, err)
		}
	})
}
