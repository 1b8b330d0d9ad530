package dnsserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/spine-platform/spine/internal/dnstxt"
	"github.com/spine-platform/spine/internal/poll"
)

const (
	testZone    = "acme.spine.test."
	testKeyName = "spine-update."
	testSecret  = "c3BpbmUtdGVzdC1zZWNyZXQtMzItYnl0ZXMtbG9uZyE=" // base64 of 32 bytes
)

// startServer runs a Server on 127.0.0.1 (UDP and TCP, port 0) until the
// test ends and returns the two addresses.
func startServer(t *testing.T, cfg Config) (udpAddr, tcpAddr string) {
	t.Helper()
	if cfg.Zone == "" {
		cfg.Zone = testZone
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(pc, ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		select {
		case err := <-done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-ctx.Done():
			t.Error("Serve did not return after Shutdown")
		}
	})
	return pc.LocalAddr().String(), ln.Addr().String()
}

func exchange(t *testing.T, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 3 * time.Second, TsigSecret: map[string]string{testKeyName: testSecret, "other-key.": testSecret}}
	// The server may still be starting: retry on a refused connection or timeout.
	var r *dns.Msg
	poll.Until(t, "exchange over "+network+" with "+addr, time.Minute, func() error {
		var err error
		r, _, err = c.Exchange(m.Copy(), addr)
		return err
	})
	return r
}

func txtAnswers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, dnstxt.Value(t.Txt))
		}
	}
	slices.Sort(out)
	return out
}

func TestQueries(t *testing.T) {
	recs := &MemoryStore{}
	ctx := context.Background()
	recs.AddTXT(ctx, "abc."+testZone, "digest-one")
	recs.AddTXT(ctx, "abc."+testZone, "digest-two")
	udp, tcp := startServer(t, Config{
		Records: recs,
		NS:      []string{"ns1.acme.spine.test", "ns2.elsewhere.test."},
		Glue:    map[string][]netip.Addr{"ns1.acme.spine.test.": {netip.MustParseAddr("192.0.2.53")}},
		Mbox:    "dns-admin@spine.test",
		TTL:     30 * time.Second,
	})

	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		aa     bool
		answer func(t *testing.T, m *dns.Msg)
	}{
		{"SOA at apex", testZone, dns.TypeSOA, dns.RcodeSuccess, true, func(t *testing.T, m *dns.Msg) {
			soa, ok := m.Answer[0].(*dns.SOA)
			if len(m.Answer) != 1 || !ok {
				t.Fatalf("answer = %v, want one SOA", m.Answer)
			}
			if soa.Ns != "ns1.acme.spine.test." || soa.Mbox != "dns-admin.spine.test." || soa.Minttl != 30 {
				t.Errorf("SOA = %v, want MNAME ns1.acme.spine.test., RNAME dns-admin.spine.test., minimum 30", soa)
			}
		}},
		{"NS at apex with glue", testZone, dns.TypeNS, dns.RcodeSuccess, true, func(t *testing.T, m *dns.Msg) {
			var names []string
			for _, rr := range m.Answer {
				names = append(names, rr.(*dns.NS).Ns)
			}
			if !slices.Equal(names, []string{"ns1.acme.spine.test.", "ns2.elsewhere.test."}) {
				t.Errorf("NS = %v", names)
			}
			if len(m.Extra) < 1 || m.Extra[0].(*dns.A).A.String() != "192.0.2.53" {
				t.Errorf("additional = %v, want glue A 192.0.2.53", m.Extra)
			}
		}},
		{"A of in-zone name server", "ns1." + testZone, dns.TypeA, dns.RcodeSuccess, true, func(t *testing.T, m *dns.Msg) {
			if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.53" {
				t.Errorf("answer = %v", m.Answer)
			}
		}},
		{"TXT with two values", "abc." + testZone, dns.TypeTXT, dns.RcodeSuccess, true, func(t *testing.T, m *dns.Msg) {
			if got := txtAnswers(m); !slices.Equal(got, []string{"digest-one", "digest-two"}) {
				t.Errorf("TXT = %q", got)
			}
			if m.Answer[0].Header().Ttl != 30 {
				t.Errorf("TTL = %d, want 30", m.Answer[0].Header().Ttl)
			}
		}},
		{"TXT with mixed-case name", "ABC.Acme.Spine.Test.", dns.TypeTXT, dns.RcodeSuccess, true, func(t *testing.T, m *dns.Msg) {
			if got := txtAnswers(m); len(got) != 2 || m.Answer[0].Header().Name != "ABC.Acme.Spine.Test." {
				t.Errorf("answer = %v, want 2 TXT with the name as asked", m.Answer)
			}
		}},
		{"NXDOMAIN", "nothing." + testZone, dns.TypeTXT, dns.RcodeNameError, true, func(t *testing.T, m *dns.Msg) {
			if len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
				t.Errorf("answer %v authority %v, want none and the SOA", m.Answer, m.Ns)
			}
		}},
		{"NODATA: A where only TXT exists", "abc." + testZone, dns.TypeA, dns.RcodeSuccess, true, func(t *testing.T, m *dns.Msg) {
			if len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
				t.Errorf("answer %v authority %v, want none and the SOA", m.Answer, m.Ns)
			}
		}},
		{"NODATA at apex", testZone, dns.TypeAAAA, dns.RcodeSuccess, true, nil},
		{"escaped dot in a label is not a stored name", `abc\.x.` + testZone, dns.TypeTXT, dns.RcodeNameError, true, nil},
		{"outside the zone", "example.com.", dns.TypeTXT, dns.RcodeRefused, false, nil},
		{"parent of the zone", "spine.test.", dns.TypeSOA, dns.RcodeRefused, false, nil},
		{"zone as a suffix of another name", "xacme.spine.test.", dns.TypeTXT, dns.RcodeRefused, false, nil},
		{"AXFR unsigned", testZone, dns.TypeAXFR, dns.RcodeRefused, true, nil},
	}
	for _, network := range []string{"udp", "tcp"} {
		addr := udp
		if network == "tcp" {
			addr = tcp
		}
		for _, tc := range tests {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				if tc.qtype == dns.TypeAXFR && network == "udp" {
					t.Skip("AXFR is a TCP query")
				}
				m := new(dns.Msg).SetQuestion(tc.qname, tc.qtype)
				m.RecursionDesired = false
				r := exchange(t, network, addr, m)
				if r.Rcode != tc.rcode {
					t.Fatalf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if r.Authoritative != tc.aa {
					t.Errorf("AA = %v, want %v", r.Authoritative, tc.aa)
				}
				if tc.answer != nil {
					tc.answer(t, r)
				}
			})
		}
	}
}

// Many values at one name do not fit a 512-byte UDP answer: the server sets
// TC and the full answer comes over TCP.
func TestTruncation(t *testing.T) {
	recs := &MemoryStore{}
	for i := range 20 {
		recs.AddTXT(context.Background(), "big."+testZone, strings.Repeat(string(rune('a'+i)), 100))
	}
	udp, tcp := startServer(t, Config{Records: recs})
	m := new(dns.Msg).SetQuestion("big."+testZone, dns.TypeTXT)
	r := exchange(t, "udp", udp, m)
	if !r.Truncated {
		t.Errorf("UDP answer of %d records not truncated", len(r.Answer))
	}
	r.Compress = true // as sent
	if r.Len() > dns.MinMsgSize {
		t.Errorf("UDP answer is %d bytes, more than 512", r.Len())
	}
	r = exchange(t, "tcp", tcp, m)
	if r.Truncated || len(r.Answer) != 20 {
		t.Errorf("TCP answer: TC=%v, %d records, want 20", r.Truncated, len(r.Answer))
	}
}

func updateMsg(rrs ...string) *dns.Msg {
	m := new(dns.Msg).SetUpdate(testZone)
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		m.Insert([]dns.RR{rr})
	}
	return m
}

func signed(m *dns.Msg, key string) *dns.Msg {
	m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
	return m
}

func TestUpdate(t *testing.T) {
	recs := &MemoryStore{}
	udp, tcp := startServer(t, Config{Records: recs, TSIG: map[string]string{testKeyName: testSecret}})
	ctx := context.Background()
	name := "_acme-challenge.www." + testZone

	values := func() []string {
		v, _ := recs.TXT(ctx, name)
		return v
	}

	// Good TSIG, over TCP and UDP: add two values, then delete one.
	r := exchange(t, "tcp", tcp, signed(updateMsg(name+` 60 IN TXT "first value"`, name+` 60 IN TXT "second \"quoted\""`), testKeyName))
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("signed add: rcode %s", dns.RcodeToString[r.Rcode])
	}
	if r.IsTsig() == nil {
		t.Error("reply to a signed update is not signed")
	}
	if got := values(); !slices.Equal(got, []string{"first value", `second "quoted"`}) {
		t.Fatalf("after add: %q", got)
	}
	q := new(dns.Msg).SetQuestion(name, dns.TypeTXT)
	if got := txtAnswers(exchange(t, "udp", udp, q)); !slices.Equal(got, []string{"first value", `second "quoted"`}) {
		t.Errorf("query after add: %q", got)
	}

	del := new(dns.Msg).SetUpdate(testZone)
	rr, _ := dns.NewRR(name + ` 0 IN TXT "first value"`)
	del.Remove([]dns.RR{rr})
	if r := exchange(t, "udp", udp, signed(del, testKeyName)); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("signed delete: rcode %s", dns.RcodeToString[r.Rcode])
	}
	if got := values(); !slices.Equal(got, []string{`second "quoted"`}) {
		t.Fatalf("after delete: %q", got)
	}

	refused := []struct {
		name  string
		msg   func() *dns.Msg
		net   string
		rcode int
	}{
		{"unsigned", func() *dns.Msg { return updateMsg(name + ` 60 IN TXT "x"`) }, "tcp", dns.RcodeRefused},
		{"unknown key", func() *dns.Msg { return signed(updateMsg(name+` 60 IN TXT "x"`), "other-key.") }, "tcp", dns.RcodeNotAuth},
		{"wrong secret", func() *dns.Msg { return signed(updateMsg(name+` 60 IN TXT "x"`), testKeyName) }, "wrong", dns.RcodeNotAuth},
		{"name outside the zone", func() *dns.Msg { return signed(updateMsg(`_acme-challenge.example.com. 60 IN TXT "x"`), testKeyName) }, "tcp", dns.RcodeNotZone},
		{"A record", func() *dns.Msg { return signed(updateMsg("www."+testZone+" 60 IN A 192.0.2.1"), testKeyName) }, "udp", dns.RcodeRefused},
		{"other zone", func() *dns.Msg {
			m := new(dns.Msg).SetUpdate("example.com.")
			rr, _ := dns.NewRR(`x.example.com. 60 IN TXT "x"`)
			m.Insert([]dns.RR{rr})
			return signed(m, testKeyName)
		}, "tcp", dns.RcodeNotAuth},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			var r *dns.Msg
			if tc.net == "wrong" {
				// Signed with another secret under our key's name.
				c := &dns.Client{Net: "tcp", Timeout: 3 * time.Second, TsigSecret: map[string]string{testKeyName: "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE="}}
				var err error
				r, _, err = c.Exchange(tc.msg(), tcp)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				addr := tcp
				if tc.net == "udp" {
					addr = udp
				}
				r = exchange(t, tc.net, addr, tc.msg())
			}
			if r.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if got := values(); !slices.Equal(got, []string{`second "quoted"`}) {
				t.Errorf("records changed to %q", got)
			}
		})
	}
}

func TestAXFR(t *testing.T) {
	recs := &MemoryStore{}
	ctx := context.Background()
	recs.AddTXT(ctx, "a."+testZone, "one")
	recs.AddTXT(ctx, "b."+testZone, "two")
	recs.AddTXT(ctx, "other.example.", "not ours")
	_, tcp := startServer(t, Config{Records: recs, TSIG: map[string]string{testKeyName: testSecret}})

	m := new(dns.Msg).SetAxfr(testZone)
	m.SetTsig(testKeyName, dns.HmacSHA256, 300, time.Now().Unix())
	tr := &dns.Transfer{TsigSecret: map[string]string{testKeyName: testSecret}}
	ch, err := tr.In(m, tcp)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("AXFR: %v", env.Error)
		}
		for _, rr := range env.RR {
			got = append(got, dns.TypeToString[rr.Header().Rrtype]+" "+rr.Header().Name)
		}
	}
	want := []string{"SOA " + testZone, "NS " + testZone, "TXT a." + testZone, "TXT b." + testZone, "SOA " + testZone}
	if !slices.Equal(got, want) {
		t.Errorf("AXFR = %q, want %q", got, want)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Zone: "", Records: &MemoryStore{}},
		{Zone: "bad zone.", Records: &MemoryStore{}},
		{Zone: testZone},
		{Zone: testZone, Records: &MemoryStore{}, TSIG: map[string]string{"k.": "not base64!"}},
		{Zone: testZone, Records: &MemoryStore{}, Glue: map[string][]netip.Addr{"ns.example.com.": nil}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		} else if strings.Contains(err.Error(), "not base64!") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}
