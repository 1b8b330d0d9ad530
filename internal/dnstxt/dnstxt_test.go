package dnstxt

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestRoundTripThroughWire(t *testing.T) {
	for _, v := range []string{"", "plain", `quote " and \ backslash`, "bytes \x00\x01\xff", strings.Repeat("x", 600)} {
		rr := &dns.TXT{Hdr: dns.RR_Header{Name: "a.example.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: Strings(v)}
		buf := make([]byte, 2048)
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("pack %q: %v", v, err)
		}
		back, _, err := dns.UnpackRR(buf[:n], 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := Value(back.(*dns.TXT).Txt); got != v {
			t.Fatalf("round trip of %q gave %q", v, got)
		}
		for _, s := range rr.Txt {
			if len(Value([]string{s})) > 255 {
				t.Fatalf("chunk over 255 bytes")
			}
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("spine-verify=abc")
	f.Add("\"\\\x00")
	f.Fuzz(func(t *testing.T, v string) {
		if got := Value(Strings(v)); got != v {
			t.Fatalf("%q -> %q", v, got)
		}
	})
}
