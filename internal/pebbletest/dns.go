package pebbletest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spine-platform/spine/internal/dnsserver"
	"github.com/spine-platform/spine/internal/hostname"
)

// DNS answers A, AAAA, TXT, CNAME and CAA queries over UDP and TCP on
// 127.0.0.1, the way a recursive resolver would: it follows CNAMEs, and
// names under a forwarded zone are asked of that zone's authoritative
// server. Every name without an A record of its own resolves to 127.0.0.1
// (so an ACME CA's validation reaches the test's edge) and has no AAAA.
// It is safe for concurrent use.
type DNS struct {
	// Addr is the host:port of the server, for UDP and TCP.
	Addr string

	udp, tcp *dns.Server

	mu       sync.Mutex
	a        map[string][]string
	txt      map[string][]string
	cname    map[string]string
	caa      map[string][]*dns.CAA
	forwards map[string]string // zone -> server address
}

// StartDNS starts a DNS server; it stops when the test ends.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	d := &DNS{
		a:        map[string][]string{},
		txt:      map[string][]string{},
		cname:    map[string]string{},
		caa:      map[string][]*dns.CAA{},
		forwards: map[string]string{},
	}
	pc, ln := listenPair(t)
	d.Addr = pc.LocalAddr().String()
	mux := dns.NewServeMux()
	mux.HandleFunc(".", d.serve)
	d.udp = &dns.Server{PacketConn: pc, Handler: mux}
	d.tcp = &dns.Server{Listener: ln, Handler: mux}
	started := make(chan struct{}, 2)
	d.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	d.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go d.udp.ActivateAndServe()
	go d.tcp.ActivateAndServe()
	<-started
	<-started
	t.Cleanup(func() {
		d.udp.Shutdown()
		d.tcp.Shutdown()
	})
	return d
}

// listenPair listens for UDP and TCP on one free port of 127.0.0.1.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	pc, ln, err := dnsserver.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatalf("pebbletest: %v", err)
	}
	return pc, ln
}

func fqdn(name string) string { return dns.CanonicalName(name) }

// SetA makes name resolve to ips (IPv4) instead of 127.0.0.1.
func (d *DNS) SetA(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.a[fqdn(name)] = ips
}

// SetTXT replaces the TXT values at name; no values removes them.
func (d *DNS) SetTXT(name string, values ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(values) == 0 {
		delete(d.txt, fqdn(name))
		return
	}
	d.txt[fqdn(name)] = values
}

// SetCNAME makes name an alias of target; an empty target removes it.
func (d *DNS) SetCNAME(name, target string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if target == "" {
		delete(d.cname, fqdn(name))
		return
	}
	d.cname[fqdn(name)] = fqdn(target)
}

// SetCAA sets an "issue" CAA record at name allowing only issuer.
func (d *DNS) SetCAA(name, issuer string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.caa[fqdn(name)] = []*dns.CAA{{Hdr: dns.RR_Header{Name: fqdn(name), Rrtype: dns.TypeCAA, Class: dns.ClassINET, Ttl: 60}, Tag: "issue", Value: issuer}}
}

// Forward sends queries for names under zone to the authoritative server
// at addr (UDP, then TCP if truncated).
func (d *DNS) Forward(zone, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forwards[fqdn(zone)] = addr
}

func (d *DNS) forwardFor(name string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for zone, addr := range d.forwards {
		if hostname.InDomain(name, zone) {
			return addr
		}
	}
	return ""
}

func (d *DNS) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := fqdn(q.Name)
	for range 8 { // follow at most 8 CNAMEs
		if addr := d.forwardFor(name); addr != "" {
			d.forward(m, addr, name, q.Qtype)
			break
		}
		d.mu.Lock()
		target, isAlias := d.cname[name]
		d.mu.Unlock()
		if isAlias && q.Qtype != dns.TypeCNAME {
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: target})
			name = target
			continue
		}
		m.Answer = append(m.Answer, d.local(name, q.Qtype)...)
		break
	}
	w.WriteMsg(m)
}

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 60}
}

func (d *DNS) local(name string, qtype uint16) []dns.RR {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []dns.RR
	switch qtype {
	case dns.TypeA:
		ips, ok := d.a[name]
		if !ok {
			ips = []string{"127.0.0.1"}
		}
		for _, ip := range ips {
			out = append(out, &dns.A{Hdr: hdr(name, dns.TypeA), A: net.ParseIP(ip)})
		}
	case dns.TypeTXT:
		for _, v := range d.txt[name] {
			out = append(out, &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: splitTXT(v)})
		}
	case dns.TypeCNAME:
		if t, ok := d.cname[name]; ok {
			out = append(out, &dns.CNAME{Hdr: hdr(name, dns.TypeCNAME), Target: t})
		}
	case dns.TypeCAA:
		for _, c := range d.caa[name] {
			out = append(out, c)
		}
	}
	return out
}

func splitTXT(v string) []string {
	var out []string
	for len(v) > 255 {
		out = append(out, v[:255])
		v = v[255:]
	}
	return append(out, v)
}

// forward asks the authoritative server at addr and copies its answers.
func (d *DNS) forward(m *dns.Msg, addr, name string, qtype uint16) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	c := &dns.Client{Timeout: 2 * time.Second}
	in, _, err := c.Exchange(q, addr)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.Exchange(q, addr)
	}
	if err != nil {
		m.Rcode = dns.RcodeServerFailure
		return
	}
	m.Answer = append(m.Answer, in.Answer...)
	if len(m.Answer) == 0 {
		m.Rcode = in.Rcode
	}
}
