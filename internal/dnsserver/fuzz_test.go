package dnsserver

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// FuzzAnswer feeds arbitrary messages (as they come off the wire) to the
// server's handler: it must not panic, must answer with the request's ID,
// must refuse names outside the zone, and a UDP answer must fit 512 bytes
// (no EDNS) or the advertised size.
func FuzzAnswer(f *testing.F) {
	seed := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(new(dns.Msg).SetQuestion("abc."+testZone, dns.TypeTXT))
	seed(new(dns.Msg).SetQuestion(testZone, dns.TypeANY))
	seed(new(dns.Msg).SetQuestion(`a\.b\/c.`+testZone, dns.TypeTXT))
	seed(new(dns.Msg).SetQuestion("example.com.", dns.TypeSOA))
	seed(new(dns.Msg).SetQuestion(testZone, dns.TypeNS).SetEdns0(4096, true))
	seed(updateMsg(`x.` + testZone + ` 60 IN TXT "v"`))

	recs := &MemoryStore{}
	for i := range 10 {
		recs.AddTXT(context.Background(), "abc."+testZone, strings.Repeat("v", 200)+string(rune('a'+i)))
	}
	srv, err := New(Config{Zone: testZone, Records: recs, Glue: nil})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if len(b) < 12 || accept(wireHeader(b)) != dns.MsgAccept || req.Unpack(b) != nil {
			return
		}
		r := srv.answer(context.Background(), req, false, nil)
		if r.Id != req.Id || !r.Response {
			t.Fatalf("reply id %d response %v to request id %d", r.Id, r.Response, req.Id)
		}
		if req.Opcode == dns.OpcodeQuery && len(req.Question) == 1 && !inZone(canonicalName(req.Question[0].Name), testZone) &&
			req.IsTsig() == nil && r.Rcode != dns.RcodeRefused && r.Rcode != dns.RcodeBadVers {
			t.Fatalf("name %q outside the zone answered %s", req.Question[0].Name, dns.RcodeToString[r.Rcode])
		}
		out, err := r.Pack()
		if err != nil {
			t.Fatalf("reply does not pack: %v\n%v", err, r)
		}
		limit := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			limit = max(limit, min(int(opt.UDPSize()), maxUDPSize))
		}
		if len(out) > limit {
			t.Fatalf("UDP reply of %d bytes, limit %d", len(out), limit)
		}
	})
}

// FuzzValidName checks that a name the stores accept can never escape its
// key directory or alias another name.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"abc." + testZone, "A.B.", `a\.b.`, "a/b.", "..", "_acme-challenge.x.", strings.Repeat("a", 64) + "."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c := canonicalName(name)
		if !validName(c) {
			return
		}
		if strings.ContainsAny(c, `/\ *`) || strings.Contains(c, "..") || c != strings.ToLower(c) || !strings.HasSuffix(c, ".") {
			t.Fatalf("validName accepted %q", c)
		}
		if _, ok := dns.IsDomainName(c); !ok {
			t.Fatalf("validName accepted %q, which is not a domain name", c)
		}
	})
}

// wireHeader reads the 12-byte header the way the server screens it.
func wireHeader(b []byte) dns.Header {
	u := func(i int) uint16 { return binary.BigEndian.Uint16(b[i:]) }
	return dns.Header{Id: u(0), Bits: u(2), Qdcount: u(4), Ancount: u(6), Nscount: u(8), Arcount: u(10)}
}
