package edge

import (
	"testing"
)

// FuzzParseUpstream checks that an accepted upstream URL is canonical: it
// parses again to itself, with an http or https scheme and a host.
func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:9000", "https://Api.Internal/v1/", "http://h:0080", "http://h:0", "http://[::1]:80/", "http://u@h", "http://h/?", "gopher://h"} {
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
