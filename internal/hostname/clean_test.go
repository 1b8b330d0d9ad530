package hostname

import (
	"strings"
	"testing"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"a.localhost": "a.localhost", "A.LocalHost.:8443": "a.localhost", "a.localhost:8443": "a.localhost",
		"[::1]:443": "::1", "[::1]": "::1", "a.localhost..": "a.localhost.", "": "", ":": "", ".": "",
		"ÄÖ.example": "äö.example", "xn--bcher-kva.example.": "xn--bcher-kva.example",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFold(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM.": "example.com", "example.com": "example.com", "a..": "a.", "a.test:443": "a.test:443", "[::1]": "[::1]", "": "", ".": "",
	} {
		if got := Fold(in); got != want {
			t.Errorf("Fold(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzClean feeds Host headers and TLS server names as a client may send
// them. The cleaned name is lower case, and a name a route table could hold
// maps to itself, also with a port, a trailing dot or in upper case, so a
// lookup never lands on another name.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"a.localhost", "A.LOCALHOST.", "a.localhost:8443", "[::1]:443", "[::1]", "a.localhost..", "", ":", ".", "a:b:c", "ÄÖ.example", "xn--bcher-kva.example."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		n := Clean(h)
		if strings.ToLower(n) != n {
			t.Fatalf("Clean(%q) = %q, not lower case", h, n)
		}
		if Check(n) != nil {
			return
		}
		for _, spelling := range []string{n, n + ":443", n + ".", strings.ToUpper(n) + ".:8443"} {
			if c := Clean(spelling); c != n {
				t.Fatalf("Clean(%q) = %q, want %q", spelling, c, n)
			}
		}
	})
}
