package inspect

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"golang.org/x/crypto/cryptobyte"
)

// testDNS is an authoritative DNS server on 127.0.0.1 for the tests: A
// records and HTTPS records with an ECH configuration list.
type testDNS struct {
	mu    sync.Mutex
	a     map[string]string
	ech   map[string][]byte
	addr  string
	asked []string
}

func startDNS(t *testing.T) *testDNS {
	t.Helper()
	d := &testDNS{a: map[string]string{}, ech: map[string][]byte{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: d}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

// set publishes an A record, and an HTTPS record with ech if it is not nil.
func (d *testDNS) set(name, ip string, ech []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.a[name] = ip
	if ech != nil {
		d.ech[name] = ech
	}
}

func (d *testDNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	q := req.Question[0]
	name := strings.TrimSuffix(q.Name, ".")
	d.asked = append(d.asked, dns.TypeToString[q.Qtype]+" "+name)
	ip, known := d.a[name]
	if !known {
		m.Rcode = dns.RcodeNameError
		w.WriteMsg(m)
		return
	}
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 300}
	switch q.Qtype {
	case dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.ParseIP(ip)})
	case dns.TypeHTTPS:
		if list, ok := d.ech[name]; ok {
			m.Answer = append(m.Answer, &dns.HTTPS{SVCB: dns.SVCB{Hdr: hdr, Priority: 1, Target: ".",
				Value: []dns.SVCBKeyValue{&dns.SVCBAlpn{Alpn: []string{"h2"}}, &dns.SVCBECHConfig{ECH: list}}}})
		}
	}
	w.WriteMsg(m)
}

// echKey makes an ECH key for publicName: the ECHConfig (the server's)
// and the ECHConfigList with it alone (what DNS publishes).
func echKey(t *testing.T, id uint8, publicName string) (tls.EncryptedClientHelloKey, []byte) {
	t.Helper()
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddUint16(0xfe0d)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(id)
		b.AddUint16(0x0020) // DHKEM(X25519, HKDF-SHA256)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(priv.PublicKey().Bytes()) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16(0x0001) // HKDF-SHA256
			b.AddUint16(0x0001) // AES-128-GCM
		})
		b.AddUint8(0) // maximum_name_length
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(publicName)) })
		b.AddUint16(0) // no extensions
	})
	config := b.BytesOrPanic()
	var l cryptobyte.Builder
	l.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(config) })
	return tls.EncryptedClientHelloKey{Config: config, PrivateKey: priv.Bytes(), SendAsRetry: true}, l.BytesOrPanic()
}

// TestDNSAndECH resolves names through a DNS server of the test's: the A
// and HTTPS records are shown as answered; the ECH configuration the HTTPS
// record carries is offered, and a Go server that holds its key accepts
// it (the outer ClientHello on the wire names only the public name); a
// stale configuration is rejected and the retry configuration the server
// sends then succeeds; a name DNS does not know fails at the DNS step.
func TestDNSAndECH(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "Test CA")
	key, list := echKey(t, 1, "public.test")
	_, staleList := echKey(t, 2, "public.test")
	addr := serveTLS(t, &tls.Config{
		Certificates: []tls.Certificate{
			tlsCert(ca.leaf(t, certOpts{names: []string{"ech.test", "stale.test"}}), ca.inter),
			tlsCert(ca.leaf(t, certOpts{names: []string{"public.test"}}), ca.inter),
		},
		EncryptedClientHelloKeys: []tls.EncryptedClientHelloKey{key},
	}, nil)
	_, port, _ := net.SplitHostPort(addr)
	d := startDNS(t)
	d.set("ech.test", "127.0.0.1", list)
	d.set("stale.test", "127.0.0.1", staleList)
	cfg := Config{Roots: ca.roots("--ca"), Resolver: d.addr}

	t.Run("accepted", func(t *testing.T) {
		r := run(t, "ech.test:"+port, "", cfg)
		if !r.Result.OK {
			t.Fatalf("result %+v", r.Result)
		}
		if r.DNS.Source != "dns" || r.DNS.Resolver != d.addr || len(r.DNS.HTTPS) != 1 || !strings.Contains(r.DNS.HTTPS[0], "ech=") {
			t.Errorf("DNS %+v", r.DNS)
		}
		var types []string
		for _, a := range r.DNS.Answers {
			types = append(types, a.Type)
		}
		if !strings.Contains(strings.Join(types, ","), "A") || !strings.Contains(strings.Join(types, ","), "HTTPS") || r.DNS.Addresses[0] != "127.0.0.1" {
			t.Errorf("DNS answers %+v", r.DNS.Answers)
		}
		e := r.Handshake.ECH
		if !e.Offered || !e.Accepted || e.ConfigSource != "dns" || e.OuterSNI != "public.test" || !strings.Contains(e.Explanation, "an observer saw only public.test") {
			t.Errorf("ECH %+v", e)
		}
		if r.Handshake.ClientHello.SNI != "public.test" || !r.Handshake.ClientHello.ECH {
			t.Errorf("the ClientHello on the wire: %+v", r.Handshake.ClientHello)
		}
		if r.Chain[0].Names[0] != "ech.test" || r.Verification.Steps[3].Detail != "ech.test matches the certificate's name ech.test" {
			t.Errorf("the inner name's certificate was not the one served: %+v %+v", r.Chain[0], r.Verification.Steps)
		}
	})
	t.Run("stale configuration, retried", func(t *testing.T) {
		r := run(t, "stale.test:"+port, "", cfg)
		if !r.Result.OK {
			t.Fatalf("result %+v", r.Result)
		}
		e := r.Handshake.ECH
		if !e.Offered || !e.Accepted || e.ConfigSource != "retry" || !strings.Contains(e.Explanation, "rejected the ECH configuration from DNS") {
			t.Errorf("ECH %+v", e)
		}
	})
	t.Run("server without ECH", func(t *testing.T) {
		// DNS says ECH, but this server has no ECH key: it answers as the
		// public name and sends no retry configuration, so the client
		// goes on without ECH, as a browser does.
		plain := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{
			tlsCert(ca.leaf(t, certOpts{names: []string{"noech.test"}}), ca.inter),
			tlsCert(ca.leaf(t, certOpts{names: []string{"public.test"}}), ca.inter),
		}}, nil)
		_, plainPort, _ := net.SplitHostPort(plain)
		d.set("noech.test", "127.0.0.1", list)
		r := run(t, "noech.test:"+plainPort, "", cfg)
		if !r.Result.OK {
			t.Fatalf("result %+v", r.Result)
		}
		e := r.Handshake.ECH
		if e.Offered || e.Accepted || e.ConfigSource != "" || !strings.Contains(e.Explanation, "does not do ECH for this name (it answered as public.test)") {
			t.Errorf("ECH %+v", e)
		}
		if r.Handshake.ClientHello.SNI != "noech.test" {
			t.Errorf("the ClientHello without ECH names %q", r.Handshake.ClientHello.SNI)
		}
	})
	t.Run("unknown name", func(t *testing.T) {
		r := run(t, "missing.test:"+port, "", cfg)
		if r.Result.ExitCode != ExitConnect || r.Result.Step != "dns" || !strings.Contains(r.Result.Message, "missing.test does not exist") {
			t.Errorf("result %+v", r.Result)
		}
	})
}
