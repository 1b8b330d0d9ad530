// Package rfc2136 is a libdns provider that changes records with DNS
// dynamic updates (RFC 2136) signed with TSIG (RFC 8945), so certmagic can
// solve ACME DNS-01 challenges on any server that accepts them: BIND, Knot,
// PowerDNS, and Spine's own dnsserver. It is written here because the
// libdns/rfc2136 module is not served by the module proxy Spine builds with.
//
// Use it with certmagic as
//
//	&certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{DNSProvider: &rfc2136.Provider{
//		Server: "ns1.example.com:53", KeyName: "spine.", Key: base64Secret,
//	}}}
//
// set as certmagic.ACMEIssuer.DNS01Solver.
//
// Every exchange goes over TCP (updates can exceed a UDP datagram) and is
// bounded by Timeout. GetRecords uses a zone transfer (AXFR); when the
// server refuses it, it falls back to asking for TXT records at the apex and
// at the names this Provider has added records to, which is what ACME needs.
// DeleteRecords asks the server for the records at each name first, to
// return what it deleted; records are matched by name, type and data: TTL is
// not part of an RFC 2136 delete and is ignored.
//
// Imports: only the standard library, github.com/libdns/libdns,
// github.com/miekg/dns, internal/dnstxt.
package rfc2136

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"

	"github.com/spine-platform/spine/internal/dnstxt"
)

// Provider changes the records of zones on one primary server. Set the
// fields before first use and do not change them after; it is safe for
// concurrent use.
type Provider struct {
	// Server is the host:port of the primary name server (port 53 if
	// omitted). Required.
	Server string `json:"server"`
	// KeyName is the TSIG key name, e.g. "spine-update.". Default: none,
	// updates are sent unsigned (most servers refuse them).
	KeyName string `json:"key_name,omitempty"`
	// KeyAlgorithm is the TSIG algorithm. Default: "hmac-sha256.".
	KeyAlgorithm string `json:"key_algorithm,omitempty"`
	// Key is the base64 TSIG secret.
	Key string `json:"key,omitempty"`
	// Timeout bounds each exchange with the server. Default: 10s.
	Timeout time.Duration `json:"timeout,omitempty"`

	mu sync.Mutex
	// names are, per zone, the names this Provider added records to (at
	// most maxRemembered), for GetRecords when the server refuses a zone
	// transfer: names another process added records to are not listed.
	// Never forgotten: the bound keeps it small.
	names map[string][]string
}

var (
	_ libdns.RecordGetter   = (*Provider)(nil)
	_ libdns.RecordAppender = (*Provider)(nil)
	_ libdns.RecordSetter   = (*Provider)(nil)
	_ libdns.RecordDeleter  = (*Provider)(nil)
)

// maxRemembered bounds the names remembered per zone for GetRecords.
const maxRemembered = 1024

// RcodeError is the error for an answer other than NOERROR, e.g. REFUSED or
// NOTAUTH (bad or unknown TSIG key).
type RcodeError struct {
	Op    string // "update", "query", "transfer"
	Zone  string
	Rcode int
}

func (e *RcodeError) Error() string {
	return fmt.Sprintf("rfc2136: %s in zone %s: server answered %s", e.Op, e.Zone, dns.RcodeToString[e.Rcode])
}

func (p *Provider) server() string {
	if _, _, err := net.SplitHostPort(p.Server); err != nil {
		return net.JoinHostPort(strings.Trim(p.Server, "[]"), "53")
	}
	return p.Server
}

func (p *Provider) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return 10 * time.Second
}

func (p *Provider) tsig() (name, alg string, secrets map[string]string) {
	if p.KeyName == "" {
		return "", "", nil
	}
	name = dns.CanonicalName(p.KeyName)
	alg = p.KeyAlgorithm
	if alg == "" {
		alg = dns.HmacSHA256
	}
	return name, dns.Fqdn(strings.ToLower(alg)), map[string]string{name: p.Key}
}

// exchange sends m over TCP, signed if a key is set, and returns the answer
// if its rcode is NOERROR.
func (p *Provider) exchange(ctx context.Context, op, zone string, m *dns.Msg) (*dns.Msg, error) {
	if p.Server == "" {
		return nil, errors.New("rfc2136: Provider.Server is not set")
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	name, alg, secrets := p.tsig()
	if secrets != nil {
		m.SetTsig(name, alg, 300, time.Now().Unix())
	}
	c := &dns.Client{Net: "tcp", Timeout: p.timeout(), TsigSecret: secrets}
	r, _, err := c.ExchangeContext(ctx, m, p.server())
	if err != nil {
		return nil, fmt.Errorf("rfc2136: %s in zone %s with %s: %w", op, zone, p.server(), err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return r, &RcodeError{Op: op, Zone: zone, Rcode: r.Rcode}
	}
	return r, nil
}

// AppendRecords implements libdns.RecordAppender with one update message.
func (p *Provider) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	zone = dns.CanonicalName(zone)
	rrs, err := toRRs(zone, recs)
	if err != nil || len(rrs) == 0 {
		return nil, err
	}
	m := new(dns.Msg).SetUpdate(zone)
	m.Insert(rrs)
	if _, err := p.exchange(ctx, "update", zone, m); err != nil {
		return nil, err
	}
	p.remember(zone, rrs)
	return fromRRs(zone, rrs)
}

// SetRecords implements libdns.RecordSetter: one update message replaces
// each (name, type) RRset of the input. Servers apply an update message
// whole or not at all, so a failed SetRecords returns a libdns.AtomicErr.
func (p *Provider) SetRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	zone = dns.CanonicalName(zone)
	rrs, err := toRRs(zone, recs)
	if err != nil || len(rrs) == 0 {
		return nil, err
	}
	m := new(dns.Msg).SetUpdate(zone)
	type rrset struct {
		name string
		typ  uint16
	}
	var sets []rrset
	for _, rr := range rrs {
		s := rrset{dns.CanonicalName(rr.Header().Name), rr.Header().Rrtype}
		if !slices.Contains(sets, s) {
			sets = append(sets, s)
			m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: s.name, Rrtype: s.typ}}})
		}
	}
	m.Insert(rrs)
	if _, err := p.exchange(ctx, "update", zone, m); err != nil {
		return nil, libdns.AtomicErr(err)
	}
	p.remember(zone, rrs)
	return fromRRs(zone, rrs)
}

// DeleteRecords implements libdns.RecordDeleter. Empty Type and Data match
// any; TTL is ignored. It returns the records that were there and deleted.
func (p *Provider) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	zone = dns.CanonicalName(zone)
	var del []dns.RR
	for _, rec := range recs {
		want := rec.RR()
		if want.Name == "" {
			return nil, fmt.Errorf("rfc2136: deleting from zone %s: a record without a name", zone)
		}
		name := dns.CanonicalName(libdns.AbsoluteName(want.Name, zone))
		qtype := dns.TypeANY
		if want.Type != "" {
			t, ok := dns.StringToType[strings.ToUpper(want.Type)]
			if !ok {
				return nil, fmt.Errorf("rfc2136: deleting from zone %s: unknown record type %q", zone, want.Type)
			}
			qtype = t
		}
		have, err := p.query(ctx, zone, name, qtype)
		if err != nil {
			return nil, err
		}
		for _, rr := range have {
			got, err := fromRR(zone, rr)
			if err != nil {
				continue
			}
			g := got.RR()
			if (want.Type == "" || strings.EqualFold(g.Type, want.Type)) && (want.Data == "" || g.Data == want.Data) &&
				!slices.ContainsFunc(del, func(d dns.RR) bool { return dns.IsDuplicate(d, rr) }) {
				del = append(del, rr)
			}
		}
	}
	if len(del) == 0 {
		return nil, nil
	}
	deleted, err := fromRRs(zone, del) // before Remove, which sets class NONE and TTL 0 on them
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg).SetUpdate(zone)
	m.Remove(del)
	if _, err := p.exchange(ctx, "update", zone, m); err != nil {
		return nil, err
	}
	return deleted, nil
}

// query returns the records of type qtype at name (following no CNAME),
// asking the primary itself.
func (p *Provider) query(ctx context.Context, zone, name string, qtype uint16) ([]dns.RR, error) {
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.RecursionDesired = false
	r, err := p.exchange(ctx, "query", zone, m)
	if rc, ok := errors.AsType[*RcodeError](err); ok && rc.Rcode == dns.RcodeNameError {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []dns.RR
	for _, rr := range r.Answer {
		if h := rr.Header(); strings.EqualFold(h.Name, name) && (qtype == dns.TypeANY || h.Rrtype == qtype) {
			out = append(out, rr)
		}
	}
	return out, nil
}

// GetRecords implements libdns.RecordGetter: every record of the zone but
// its SOA, by zone transfer; if the server refuses the transfer, the TXT
// records at the apex and at the names this Provider added records to.
func (p *Provider) GetRecords(ctx context.Context, zone string) ([]libdns.Record, error) {
	zone = dns.CanonicalName(zone)
	rrs, err := p.transfer(ctx, zone)
	if err != nil {
		names := append([]string{zone}, p.remembered(zone)...)
		rrs = nil
		for _, n := range names {
			got, qerr := p.query(ctx, zone, n, dns.TypeTXT)
			if qerr != nil {
				return nil, fmt.Errorf("%w (and the zone transfer failed: %v)", qerr, err)
			}
			rrs = append(rrs, got...)
		}
	}
	return fromRRs(zone, rrs)
}

func (p *Provider) transfer(ctx context.Context, zone string) ([]dns.RR, error) {
	if p.Server == "" {
		return nil, errors.New("rfc2136: Provider.Server is not set")
	}
	name, alg, secrets := p.tsig()
	m := new(dns.Msg).SetAxfr(zone)
	if secrets != nil {
		m.SetTsig(name, alg, 300, time.Now().Unix())
	}
	tr := &dns.Transfer{DialTimeout: p.timeout(), ReadTimeout: p.timeout(), WriteTimeout: p.timeout(), TsigSecret: secrets}
	ch, err := tr.In(m, p.server())
	if err != nil {
		return nil, fmt.Errorf("rfc2136: transfer of zone %s: %w", zone, err)
	}
	var (
		out      []dns.RR
		firstErr error
	)
	for env := range ch { // drained to the end so the reader goroutine exits
		if ctx.Err() != nil && firstErr == nil {
			firstErr = ctx.Err()
		}
		if env.Error != nil && firstErr == nil {
			firstErr = env.Error
		}
		for _, rr := range env.RR {
			if rr.Header().Rrtype != dns.TypeSOA {
				out = append(out, rr)
			}
		}
	}
	if firstErr != nil {
		return nil, fmt.Errorf("rfc2136: transfer of zone %s: %w", zone, firstErr)
	}
	return out, nil
}

func (p *Provider) remember(zone string, rrs []dns.RR) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.names == nil {
		p.names = make(map[string][]string)
	}
	for _, rr := range rrs {
		n := dns.CanonicalName(rr.Header().Name)
		if n != zone && !slices.Contains(p.names[zone], n) && len(p.names[zone]) < maxRemembered {
			p.names[zone] = append(p.names[zone], n)
		}
	}
}

func (p *Provider) remembered(zone string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.names[zone])
}

func toRRs(zone string, recs []libdns.Record) ([]dns.RR, error) {
	var out []dns.RR
	for _, rec := range recs {
		rr, err := toRR(zone, rec.RR())
		if err != nil {
			return nil, err
		}
		out = append(out, rr)
	}
	return out, nil
}

func toRR(zone string, r libdns.RR) (dns.RR, error) {
	if r.Name == "" {
		return nil, fmt.Errorf("rfc2136: record without a name in zone %s", zone)
	}
	name := dns.CanonicalName(libdns.AbsoluteName(r.Name, zone))
	if !dns.IsSubDomain(zone, name) {
		return nil, fmt.Errorf("rfc2136: record %s is outside zone %s", name, zone)
	}
	ttl := uint32(r.TTL / time.Second)
	if strings.EqualFold(r.Type, "TXT") {
		return &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl}, Txt: dnstxt.Strings(r.Data)}, nil
	}
	rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", name, ttl, strings.ToUpper(r.Type), r.Data))
	if err != nil || rr == nil {
		return nil, fmt.Errorf("rfc2136: record %s %s %q: %v", name, r.Type, r.Data, err)
	}
	return rr, nil
}

func fromRRs(zone string, rrs []dns.RR) ([]libdns.Record, error) {
	out := make([]libdns.Record, 0, len(rrs))
	for _, rr := range rrs {
		rec, err := fromRR(zone, rr)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// fromRR returns the libdns type for rr (libdns.TXT, libdns.Address, ...),
// named relative to zone.
func fromRR(zone string, rr dns.RR) (libdns.Record, error) {
	h := rr.Header()
	data := strings.TrimPrefix(rr.String(), h.String())
	if t, ok := rr.(*dns.TXT); ok {
		data = dnstxt.Value(t.Txt)
	}
	r := libdns.RR{
		Name: libdns.RelativeName(dns.CanonicalName(h.Name), zone),
		TTL:  time.Duration(h.Ttl) * time.Second,
		Type: dns.TypeToString[h.Rrtype],
		Data: data,
	}
	rec, err := r.Parse()
	if err != nil {
		return nil, fmt.Errorf("rfc2136: record %s %s from the server: %w", h.Name, r.Type, err)
	}
	return rec, nil
}
