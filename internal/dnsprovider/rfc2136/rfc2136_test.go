package rfc2136

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/libdns/libdns"
	"github.com/mholt/acmez/v3/acme"
	"github.com/miekg/dns"
	"github.com/spine-platform/spine/internal/dnsserver"
)

const (
	zone    = "example.com."
	keyName = "spine-update."
	secret  = "c3BpbmUtdGVzdC1zZWNyZXQtMzItYnl0ZXMtbG9uZyE="
)

var _ certmagic.DNSProvider = (*Provider)(nil)

// startServer runs Spine's dnsserver for example.com with a TSIG key, on
// one 127.0.0.1 port for UDP and TCP, and returns the address.
func startServer(t *testing.T, recs dnsserver.RecordStore) string {
	t.Helper()
	srv, err := dnsserver.New(dnsserver.Config{Zone: zone, Records: recs, TSIG: map[string]string{keyName: secret}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		pc net.PacketConn
		ln net.Listener
	)
	for range 20 {
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if ln == nil {
		t.Fatal("no free UDP+TCP port pair")
	}
	go srv.Serve(pc, ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return pc.LocalAddr().String()
}

func texts(recs []libdns.Record) []string {
	var out []string
	for _, r := range recs {
		if t, ok := r.(libdns.TXT); ok {
			out = append(out, t.Name+"="+t.Text)
		}
	}
	slices.Sort(out)
	return out
}

// served asks the server, as a resolver would, for the TXT records at name.
func served(t *testing.T, addr, name string) []string {
	t.Helper()
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(new(dns.Msg).SetQuestion(name, dns.TypeTXT), addr)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range r.Answer {
		out = append(out, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	slices.Sort(out)
	return out
}

func TestAppendGetSetDelete(t *testing.T) {
	addr := startServer(t, &dnsserver.MemoryStore{})
	p := &Provider{Server: addr, KeyName: keyName, Key: secret, Timeout: 3 * time.Second}
	ctx := context.Background()

	added, err := p.AppendRecords(ctx, "example.com", []libdns.Record{
		libdns.TXT{Name: "_acme-challenge", Text: "digest-apex", TTL: time.Minute},
		libdns.RR{Name: "_acme-challenge", Type: "TXT", Data: "digest-wildcard"},
	})
	if err != nil {
		t.Fatalf("AppendRecords: %v", err)
	}
	if got := texts(added); !slices.Equal(got, []string{"_acme-challenge=digest-apex", "_acme-challenge=digest-wildcard"}) {
		t.Errorf("AppendRecords returned %q (want libdns.TXT values)", got)
	}
	if got := served(t, addr, "_acme-challenge.example.com."); !slices.Equal(got, []string{"digest-apex", "digest-wildcard"}) {
		t.Fatalf("server answers %q", got)
	}

	all, err := p.GetRecords(ctx, zone)
	if err != nil {
		t.Fatalf("GetRecords: %v", err)
	}
	if got := texts(all); !slices.Equal(got, []string{"_acme-challenge=digest-apex", "_acme-challenge=digest-wildcard"}) {
		t.Errorf("GetRecords TXT = %q", got)
	}
	if !slices.ContainsFunc(all, func(r libdns.Record) bool { ns, ok := r.(libdns.NS); return ok && ns.Name == "@" }) {
		t.Errorf("GetRecords (AXFR) has no NS at @: %v", all)
	}

	deleted, err := p.DeleteRecords(ctx, zone, []libdns.Record{libdns.TXT{Name: "_acme-challenge", Text: "digest-apex", TTL: time.Hour}})
	if err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
	if got := texts(deleted); !slices.Equal(got, []string{"_acme-challenge=digest-apex"}) {
		t.Errorf("DeleteRecords returned %q", got)
	}
	if got := served(t, addr, "_acme-challenge.example.com."); !slices.Equal(got, []string{"digest-wildcard"}) {
		t.Errorf("after deleting one value the server answers %q", got)
	}
	if deleted, err := p.DeleteRecords(ctx, zone, []libdns.Record{libdns.TXT{Name: "_acme-challenge", Text: "never-there"}}); err != nil || len(deleted) != 0 {
		t.Errorf("deleting a missing record: %v, %v", deleted, err)
	}

	set, err := p.SetRecords(ctx, zone, []libdns.Record{libdns.TXT{Name: "_acme-challenge", Text: `new "value"`}})
	if err != nil || len(set) != 1 {
		t.Fatalf("SetRecords: %v, %v", set, err)
	}
	if got := served(t, addr, "_acme-challenge.example.com."); !slices.Equal(got, []string{`new \"value\"`}) {
		t.Errorf("after SetRecords the server answers %q", got)
	}

	// Type and data left empty: everything at the name.
	deleted, err = p.DeleteRecords(ctx, zone, []libdns.Record{libdns.RR{Name: "_acme-challenge"}})
	if err != nil || !slices.Equal(texts(deleted), []string{`_acme-challenge=new "value"`}) {
		t.Errorf("DeleteRecords by name: %q, %v", texts(deleted), err)
	}
	if got := served(t, addr, "_acme-challenge.example.com."); len(got) != 0 {
		t.Errorf("after deleting all the server answers %q", got)
	}
}

// A server that refuses zone transfers: GetRecords still lists the TXT
// records at the names this provider wrote.
func TestGetRecordsWithoutAXFR(t *testing.T) {
	recs := &dnsserver.MemoryStore{}
	addr := startServer(t, struct {
		dnsserver.RecordStore
		dnsserver.RecordWriter
	}{recs, recs}) // no TXTLister: AXFR refused
	p := &Provider{Server: addr, KeyName: keyName, Key: secret}
	ctx := context.Background()
	if _, err := p.AppendRecords(ctx, zone, []libdns.Record{libdns.TXT{Name: "_acme-challenge.www", Text: "v1"}}); err != nil {
		t.Fatal(err)
	}
	all, err := p.GetRecords(ctx, zone)
	if err != nil {
		t.Fatalf("GetRecords: %v", err)
	}
	if got := texts(all); !slices.Equal(got, []string{"_acme-challenge.www=v1"}) {
		t.Errorf("GetRecords = %q", got)
	}
}

func TestRefused(t *testing.T) {
	recs := &dnsserver.MemoryStore{}
	addr := startServer(t, recs)
	ctx := context.Background()
	rec := []libdns.Record{libdns.TXT{Name: "_acme-challenge", Text: "x"}}
	for _, tc := range []struct {
		name  string
		p     *Provider
		rcode int
	}{
		{"wrong secret", &Provider{Server: addr, KeyName: keyName, Key: "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZyE="}, dns.RcodeNotAuth},
		{"unknown key", &Provider{Server: addr, KeyName: "someone-else.", Key: secret}, dns.RcodeNotAuth},
		{"unsigned", &Provider{Server: addr}, dns.RcodeRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.p.AppendRecords(ctx, zone, rec)
			rc, ok := errors.AsType[*RcodeError](err)
			if !ok || rc.Rcode != tc.rcode {
				t.Fatalf("AppendRecords error %v, want rcode %s", err, dns.RcodeToString[tc.rcode])
			}
			if want := "server answered " + dns.RcodeToString[tc.rcode]; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if v, _ := recs.TXT(ctx, "_acme-challenge."+zone); len(v) != 0 {
				t.Errorf("record added: %q", v)
			}
		})
	}
	if _, err := (&Provider{Server: addr, KeyName: keyName, Key: secret}).AppendRecords(ctx, zone,
		[]libdns.Record{libdns.TXT{Name: "x.example.org.", Text: "x"}}); err == nil || !strings.Contains(err.Error(), "outside zone") {
		t.Errorf("record outside the zone: %v", err)
	}
}

// A server that accepts the connection and never answers.
func TestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p := &Provider{Server: ln.Addr().String(), KeyName: keyName, Key: secret, Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, err = p.AppendRecords(context.Background(), zone, []libdns.Record{libdns.TXT{Name: "a", Text: "b"}})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v, want a timeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s with a 300ms timeout", d)
	}
}

// certmagic's DNS-01 solver with this provider: the TXT record appears at
// _acme-challenge.<domain> on the server, passes certmagic's own
// propagation check, and is gone after CleanUp.
func TestCertmagicDNS01Solver(t *testing.T) {
	if testing.Short() {
		t.Skip("certmagic polls propagation every 2s")
	}
	addr := startServer(t, &dnsserver.MemoryStore{})
	solver := &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
		DNSProvider:        &Provider{Server: addr, KeyName: keyName, Key: secret, Timeout: 3 * time.Second},
		Resolvers:          []string{addr},
		PropagationTimeout: 10 * time.Second,
	}}
	chal := acme.Challenge{
		Type:             acme.ChallengeTypeDNS01,
		Identifier:       acme.Identifier{Type: "dns", Value: "www.example.com"},
		KeyAuthorization: "token.thumbprint",
	}
	ctx := context.Background()
	if err := solver.Present(ctx, chal); err != nil {
		t.Fatalf("Present: %v", err)
	}
	if got := served(t, addr, "_acme-challenge.www.example.com."); !slices.Equal(got, []string{chal.DNS01KeyAuthorization()}) {
		t.Fatalf("server answers %q, want the key authorization digest", got)
	}
	if err := solver.Wait(ctx, chal); err != nil {
		t.Fatalf("Wait (propagation check): %v", err)
	}
	if err := solver.CleanUp(ctx, chal); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	if got := served(t, addr, "_acme-challenge.www.example.com."); len(got) != 0 {
		t.Errorf("after CleanUp the server answers %q", got)
	}
}
