package hostname

import "testing"

func TestWildcards(t *testing.T) {
	if !IsWildcard("*.example.com") || IsWildcard("example.com") || IsWildcard("*") || IsWildcard("a.*.example.com") {
		t.Error("IsWildcard misreads a name")
	}
	if w := Wildcard("example.com"); w != "*.example.com" || TrimWildcard(w) != "example.com" || TrimWildcard("a.example.com") != "a.example.com" {
		t.Errorf("Wildcard/TrimWildcard: %q, %q", w, TrimWildcard(w))
	}
	for name, want := range map[string]string{"a.example.com": "example.com", "example.com": "com", "com": "", ".com": "", "a.": "", "": ""} {
		got, ok := Parent(name)
		if got != want || ok != (want != "") {
			t.Errorf("Parent(%q) = %q, %v, want %q", name, got, ok, want)
		}
	}
}

func TestInDomain(t *testing.T) {
	for _, tc := range []struct {
		name, domain string
		want         bool
	}{
		{"example.com", "example.com", true},
		{"a.example.com", "example.com", true},
		{"a.b.example.com", "example.com", true},
		{"_acme.x.zone.", "zone.", true},
		{"badexample.com", "example.com", false},
		{"example.com", "a.example.com", false},
		{"com", "example.com", false},
		{"example.org", "example.com", false},
	} {
		if got := InDomain(tc.name, tc.domain); got != tc.want {
			t.Errorf("InDomain(%q, %q) = %v, want %v", tc.name, tc.domain, got, tc.want)
		}
	}
}
