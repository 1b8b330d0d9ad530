package dnsserver

import (
	"bytes"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

// HTTPS queries get the record Config.HTTPS gives (ALPN and ech), for
// names it knows; others get no HTTPS answer.
func TestHTTPSRecords(t *testing.T) {
	list := []byte{0x00, 0x04, 0xfe, 0x0d, 0x00, 0x00}
	udp, _ := startServer(t, Config{Records: &MemoryStore{}, HTTPS: func(name string) (HTTPSRecord, bool) {
		if name == "app."+testZone[:len(testZone)-1] {
			return HTTPSRecord{ALPN: []string{"h3", "h2"}, ECH: list}, true
		}
		return HTTPSRecord{}, false
	}})
	q := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		return exchange(t, "udp", udp, m)
	}
	r := q("app."+testZone, dns.TypeHTTPS)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("HTTPS for a served name: rcode %d, answer %v", r.Rcode, r.Answer)
	}
	h := r.Answer[0].(*dns.HTTPS)
	var alpn []string
	var ech []byte
	for _, kv := range h.Value {
		switch v := kv.(type) {
		case *dns.SVCBAlpn:
			alpn = v.Alpn
		case *dns.SVCBECHConfig:
			ech = v.ECH
		}
	}
	if h.Priority != 1 || h.Target != "." || !slices.Equal(alpn, []string{"h3", "h2"}) || !bytes.Equal(ech, list) {
		t.Errorf("record %v", h)
	}
	if r := q("other."+testZone, dns.TypeHTTPS); len(r.Answer) != 0 || r.Rcode != dns.RcodeNameError {
		t.Errorf("a name without a record: rcode %d, answer %v", r.Rcode, r.Answer)
	}
	if r := q("app."+testZone, dns.TypeTXT); len(r.Answer) != 0 || r.Rcode != dns.RcodeSuccess {
		t.Errorf("TXT of a name with only HTTPS: rcode %d (want NODATA), answer %v", r.Rcode, r.Answer)
	}
}
