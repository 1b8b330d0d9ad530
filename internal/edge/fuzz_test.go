package edge

import (
	"strings"
	"testing"
)

// FuzzNormalizeHost feeds Host headers and TLS server names as a client may
// send them. The normalised name is lower case, and a name the route table
// could hold maps to itself, so a lookup never lands on another route.
func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"a.localhost", "A.LOCALHOST.", "a.localhost:8443", "[::1]:443", "[::1]", "a.localhost..", "", ":", ".", "a:b:c", "ÄÖ.example", "xn--bcher-kva.example."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		n := normalizeHost(h)
		if strings.ToLower(n) != n {
			t.Fatalf("normalizeHost(%q) = %q, not lower case", h, n)
		}
		if validateHost(n) == nil && normalizeHost(n) != n {
			t.Fatalf("valid name %q normalises to %q", n, normalizeHost(n))
		}
	})
}

// FuzzParseUpstream checks that an accepted upstream URL is canonical: it
// parses again to itself, with an http or https scheme and a host.
func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:9000", "https://Api.Internal/v1/", "http://h:0", "http://[::1]:80/", "http://u@h", "http://h/?", "gopher://h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := parseUpstream(raw)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" {
			t.Fatalf("parseUpstream(%q) accepted %v", raw, u)
		}
		again, err := parseUpstream(u.String())
		if err != nil || again.String() != u.String() {
			t.Fatalf("not canonical: %q -> %q -> %v (%v)", raw, u, again, err)
		}
	})
}
