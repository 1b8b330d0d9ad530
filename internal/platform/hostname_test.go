package platform

import (
	"strings"
	"testing"
)

func TestNormalizeHostname(t *testing.T) {
	long63 := strings.Repeat("a", 63)
	for _, tc := range []struct {
		in, want string
		errHas   string
	}{
		{in: "Example.COM", want: "example.com"},
		{in: "api.example.com.", want: "api.example.com"},
		{in: "  api.localhost ", want: "api.localhost"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "BÜCHER.example", want: "xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: long63 + ".example", want: long63 + ".example"},
		{in: "", errHas: "empty"},
		{in: "a..b", errHas: "empty label"},
		{in: ".a.b", errHas: "empty label"},
		{in: strings.Repeat("a", 64) + ".example", errHas: "limit is 63"},
		{in: strings.Repeat("abcdefghi.", 26) + "com", errHas: "limit is 253"},
		{in: "-api.example.com", errHas: "hyphen"},
		{in: "api-.example.com", errHas: "hyphen"},
		{in: "under_score.example.com", errHas: "not allowed"},
		{in: "sp ace.example.com", errHas: "hostname"},
		{in: "*.example.com", errHas: "wildcards"},
		{in: "a/b.example.com", errHas: "hostname"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := NormalizeHostname(tc.in)
			if tc.errHas != "" {
				if err == nil {
					t.Fatalf("NormalizeHostname(%q) = %q, want an error mentioning %q", tc.in, got, tc.errHas)
				}
				if !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("NormalizeHostname(%q) error = %q, want it to mention %q", tc.in, err, tc.errHas)
				}
				var pe *Error
				if !asError(err, &pe) || pe.Kind != Invalid || pe.Code != "invalid_hostname" {
					t.Fatalf("error %v is not an Invalid invalid_hostname *Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeHostname(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("NormalizeHostname(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzNormalizeHostname(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.example.", "a..b", "xn--bcher-kva.example", "*.x", strings.Repeat("a", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeHostname(in)
		if err != nil {
			return
		}
		// A normalised name is stable, short enough and plain ASCII.
		again, err := NormalizeHostname(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
		if len(out) > 253 || strings.ToLower(out) != out {
			t.Fatalf("bad output %q", out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] >= 0x80 {
				t.Fatalf("non-ASCII output %q", out)
			}
		}
	})
}

func TestUpstreamErrorsHidePasswords(t *testing.T) {
	p := New(nil, Options{})
	for _, raw := range []string{
		"http://user:hunter2@127.0.0.1:9000",      // credentials refused
		"http://user:hunter2@[::1:9000",           // does not parse
		"ftp://user:hunter2@127.0.0.1:9000/x?y=1", // wrong scheme
		"http://user:hunter2@127.0.0.1:9000/?q",   // query
	} {
		_, err := p.checkUpstream(raw)
		if err == nil {
			t.Fatalf("%q accepted", raw)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error repeats the password: %v", err)
		}
	}
}
