package hostname

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
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
		{in: "XN--BCHER-KVA.example", want: "xn--bcher-kva.example"},
		{in: "127.0.0.1", want: "127.0.0.1"},
		{in: long63 + ".example", want: long63 + ".example"},
		{in: "", errHas: "empty"},
		{in: " . ", errHas: "empty label"},
		{in: "a..b", errHas: "empty label"},
		{in: ".a.b", errHas: "empty label"},
		{in: "a.b..", errHas: "empty label"},
		{in: strings.Repeat("a", 64) + ".example", errHas: "limit is 63"},
		{in: strings.Repeat("abcdefghi.", 26) + "com", errHas: "limit is 253"},
		{in: "-api.example.com", errHas: "hyphen"},
		{in: "api-.example.com", errHas: "hyphen"},
		{in: "under_score.example.com", errHas: "not allowed"},
		{in: "sp ace.example.com", errHas: "not allowed"},
		{in: "api.example.com:8443", errHas: "not allowed"},
		{in: "*.example.com", errHas: "wildcards"},
		{in: "*", errHas: "wildcards"},
		{in: "a.*.example.com", errHas: "not allowed"},
		{in: "a/b.example.com", errHas: "hostname"},
		{in: "xn--zz.example", errHas: "punycode"},
		{in: "a\u200d.example", errHas: "internationalised"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Normalize(tc.in)
			if tc.errHas != "" {
				if err == nil {
					t.Fatalf("Normalize(%q) = %q, want an error mentioning %q", tc.in, got, tc.errHas)
				}
				if !strings.Contains(err.Error(), tc.errHas) || !strings.HasPrefix(err.Error(), "hostname ") {
					t.Fatalf("Normalize(%q) error = %q, want it to start with \"hostname\" and mention %q", tc.in, err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatalf("Normalize(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	for _, ok := range []string{"a.test", "xn--bcher-kva.example", "a-b.c1", strings.Repeat("a", 63)} {
		if err := Check(ok); err != nil {
			t.Errorf("Check(%q): %v", ok, err)
		}
	}
	for in, errHas := range map[string]string{
		"A.test": `write it "a.test"`, "a.test.": `write it "a.test"`, " a.test": `write it "a.test"`,
		"é.test": `write it "xn--9ca.test"`, "a.test:443": "not allowed", "a_b.test": "not allowed",
		"": "empty", "a..test": "empty label", "-a.test": "hyphen", "xn--zz.test": "punycode",
	} {
		if err := Check(in); err == nil || !strings.Contains(err.Error(), errHas) {
			t.Errorf("Check(%q) = %v, want an error mentioning %q", in, err, errHas)
		}
	}
}

func TestValidLabel(t *testing.T) {
	for label, want := range map[string]bool{
		"api": true, "a-1": true, "0": true, strings.Repeat("x", 63): true,
		"": false, "-a": false, "a-": false, "A": false, "a_b": false, "a.b": false, strings.Repeat("x", 64): false,
	} {
		if got := ValidLabel(label); got != want {
			t.Errorf("ValidLabel(%q) = %v, want %v", label, got, want)
		}
	}
}

func TestIsDNSName(t *testing.T) {
	for name, want := range map[string]bool{
		"_acme-challenge.example.com": true, "-a-.b": true, "a": true,
		strings.Repeat("a", 63) + ".b": true, strings.Repeat("a.", 126) + "a": true,
		"": false, "a.": false, ".a": false, "a..b": false, "A.b": false, "a b": false, `a\.b`: false, "a/b": false,
		strings.Repeat("a", 64) + ".b": false, strings.Repeat("a.", 126) + "ab": false,
	} {
		if got := IsDNSName(name); got != want {
			t.Errorf("IsDNSName(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestNoAllocations holds the hot paths to what they cost before they moved
// here: the edge cleans every Host header and server name, and checks every
// route of a table.
func TestNoAllocations(t *testing.T) {
	var sink string
	for name, f := range map[string]func(){
		"Clean host:port": func() { sink = Clean("bench.test:443") },
		"Clean [v6]:port": func() { sink = Clean("[::1]:443") },
		"Clean dot":       func() { sink = Clean("bench.test.") },
		"Fold":            func() { sink = Fold("bench.test.") },
		"Normalize":       func() { sink, _ = Normalize("api.bench.test") },
		"Check":           func() { _ = Check("api.bench.test") },
		"InDomain":        func() { _ = InDomain("api.bench.test", "bench.test") },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
	_ = sink
}

// FuzzNormalize checks that a normalised name is stable, short enough,
// plain ASCII, and passes every other rule of the package: Check, the label
// rule, the DNS name rule, and Clean leaves it as it is.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.example.", "a..b", "xn--bcher-kva.example", "*.x", strings.Repeat("a", 70), "a.test:443", "[::1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := Normalize(in)
		if err != nil {
			return
		}
		again, err := Normalize(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, out, again, err)
		}
		if len(out) > MaxLen || strings.ToLower(out) != out {
			t.Fatalf("bad output %q", out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] >= 0x80 {
				t.Fatalf("non-ASCII output %q", out)
			}
		}
		if err := Check(out); err != nil {
			t.Fatalf("Check(%q) after Normalize(%q): %v", out, in, err)
		}
		for _, l := range strings.Split(out, ".") {
			if !ValidLabel(l) {
				t.Fatalf("Normalize(%q) = %q, whose label %q is not valid", in, out, l)
			}
		}
		if !IsDNSName(out) {
			t.Fatalf("Normalize(%q) = %q, which is not a DNS name", in, out)
		}
		if c := Clean(out); c != out {
			t.Fatalf("Clean(%q) = %q, want the name unchanged", out, c)
		}
	})
}
