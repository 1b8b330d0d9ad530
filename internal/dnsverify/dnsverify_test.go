package dnsverify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spine-platform/spine/internal/dnsserver"
)

// startAuthoritative runs a dnsserver for example.com on 127.0.0.1 (UDP and
// TCP on one port) and returns its address.
func startAuthoritative(t *testing.T, recs *dnsserver.MemoryStore) string {
	t.Helper()
	srv, err := dnsserver.New(dnsserver.Config{
		Zone:    "example.com.",
		Records: recs,
		// A name with an A record and no TXT, for NODATA.
		Glue: map[string][]netip.Addr{"_spine-challenge.nodata.example.com.": {netip.MustParseAddr("192.0.2.1")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	pc, ln := listenPair(t)
	go srv.Serve(pc, ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return pc.LocalAddr().String()
}

// listenPair listens on one 127.0.0.1 port for both UDP and TCP, as a
// resolver does, so a truncated UDP answer can be retried over TCP.
func listenPair(t *testing.T) (net.PacketConn, net.Listener) {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no free UDP+TCP port pair")
	return nil, nil
}

func TestVerify(t *testing.T) {
	recs := &dnsserver.MemoryStore{}
	ctx := context.Background()
	recs.AddTXT(ctx, "_spine-challenge.example.com.", "spine-verify=right-token")
	recs.AddTXT(ctx, "_spine-challenge.example.com.", "google-site-verification=abc")
	recs.AddTXT(ctx, "_spine-challenge.wrong.example.com.", "spine-verify=old-token")
	recs.AddTXT(ctx, "_spine-challenge.wrong.example.com.", "something else")
	for i := range 20 { // too many for one UDP answer: retried over TCP
		recs.AddTXT(ctx, "_spine-challenge.big.example.com.", fmt.Sprintf("filler-%02d-%s", i, strings.Repeat("x", 90)))
	}
	recs.AddTXT(ctx, "_spine-challenge.big.example.com.", "spine-verify=big-token")
	addr := startAuthoritative(t, recs)
	v := &Verifier{Resolver: addr, Timeout: 3 * time.Second}

	tests := []struct {
		domain, token string
		kind          error // nil: verified
		detail        string
	}{
		{"example.com", "right-token", nil, "verified"},
		{"Example.COM.", "right-token", nil, "verified"},
		{"*.example.com", "right-token", nil, "verified"},
		{"big.example.com", "big-token", nil, "verified"},
		{"example.com", "other-token", ErrMismatch,
			`found 2 TXT values at _spine-challenge.example.com: "google-site-verification=abc", "spine-verify=right-token"; none equals "spine-verify=other-token"`},
		{"wrong.example.com", "new-token", ErrMismatch,
			`found 2 TXT values at _spine-challenge.wrong.example.com: "something else", "spine-verify=old-token"; none equals "spine-verify=new-token"`},
		{"missing.example.com", "t", ErrNotFound, "NXDOMAIN: _spine-challenge.missing.example.com does not exist"},
		{"nodata.example.com", "t", ErrNotFound, "no TXT record at _spine-challenge.nodata.example.com"},
		{"elsewhere.org", "t", ErrResolver, "resolver " + addr + " answered REFUSED for _spine-challenge.elsewhere.org"},
	}
	for _, tc := range tests {
		t.Run(tc.domain+"/"+tc.token, func(t *testing.T) {
			res, err := v.Verify(ctx, tc.domain, tc.token)
			if res.Detail != tc.detail {
				t.Errorf("Detail = %q\nwant     %q", res.Detail, tc.detail)
			}
			if tc.kind == nil {
				if err != nil || !res.OK {
					t.Fatalf("Verify: %v (OK=%v)", err, res.OK)
				}
				return
			}
			if res.OK || !errors.Is(err, tc.kind) {
				t.Fatalf("Verify error %v (OK=%v), want kind %v", err, res.OK, tc.kind)
			}
			for _, other := range []error{ErrNotFound, ErrMismatch, ErrResolver} {
				if other != tc.kind && errors.Is(err, other) {
					t.Errorf("error is also %v", other)
				}
			}
			if err.Error() != "dnsverify: "+tc.detail {
				t.Errorf("error text %q", err)
			}
		})
	}
}

// A UDP socket that never answers: the resolver failure says so and when.
func TestVerifyResolverTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	v := &Verifier{Resolver: pc.LocalAddr().String(), Timeout: 300 * time.Millisecond}
	start := time.Now()
	res, err := v.Verify(context.Background(), "example.com", "t")
	if !errors.Is(err, ErrResolver) || errors.Is(err, ErrNotFound) {
		t.Fatalf("error %v, want a resolver failure", err)
	}
	want := "resolver " + pc.LocalAddr().String() + " timed out after 300ms"
	if res.Detail != want {
		t.Errorf("Detail = %q, want %q", res.Detail, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Errorf("underlying error %v is not a timeout", errors.Unwrap(err))
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %s with a 300ms timeout", time.Since(start))
	}
}

// A resolver that returns CNAME chains: whole in one answer, or only the
// first link, so that the target must be asked for.
func TestLookupTXTFollowsCNAME(t *testing.T) {
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		q := req.Question[0].Name
		cname := func(from, to string) dns.RR {
			return &dns.CNAME{Hdr: dns.RR_Header{Name: from, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: to}
		}
		txt := func(name, v string) dns.RR {
			return &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{v}}
		}
		switch q {
		case "_spine-challenge.full.test.":
			m.Answer = []dns.RR{cname(q, "a.target.test."), cname("a.target.test.", "b.target.test."), txt("b.target.test.", "spine-verify=via-cname")}
		case "_spine-challenge.partial.test.":
			m.Answer = []dns.RR{cname(q, "b.target.test.")}
		case "b.target.test.":
			m.Answer = []dns.RR{txt(q, "spine-verify=via-cname")}
		case "_spine-challenge.dangling.test.":
			m.Answer = []dns.RR{cname(q, "gone.target.test.")}
			m.Rcode = dns.RcodeNameError
		case "_spine-challenge.loop.test.":
			m.Answer = []dns.RR{cname(q, q)}
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: h}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	v := &Verifier{Resolver: pc.LocalAddr().String(), Timeout: 2 * time.Second}

	for _, d := range []string{"full.test", "partial.test"} {
		if res, err := v.Verify(context.Background(), d, "via-cname"); err != nil || !res.OK {
			t.Errorf("%s: %v", d, err)
		}
	}
	_, err = v.Verify(context.Background(), "dangling.test", "x")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "NXDOMAIN: gone.target.test (CNAME target of _spine-challenge.dangling.test) does not exist") {
		t.Errorf("dangling CNAME: %v", err)
	}
	_, err = v.Verify(context.Background(), "loop.test", "x")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("CNAME loop: %v", err)
	}
}

func TestDefaultResolver(t *testing.T) {
	r := (&Verifier{}).resolver()
	if _, _, err := net.SplitHostPort(r); err != nil {
		t.Errorf("default resolver %q is not host:port", r)
	}
	if got := (&Verifier{Resolver: "192.0.2.53"}).resolver(); got != "192.0.2.53:53" {
		t.Errorf("resolver without port = %q", got)
	}
	if got := (&Verifier{Resolver: "2001:db8::53"}).resolver(); got != "[2001:db8::53]:53" {
		t.Errorf("IPv6 resolver without port = %q", got)
	}
}
