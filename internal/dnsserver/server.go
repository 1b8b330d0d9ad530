package dnsserver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"

	"github.com/spine-platform/spine/internal/dnstxt"
)

// Config configures a Server. It is not changed once handed to New.
type Config struct {
	// Zone the server is authoritative for, e.g. "acme.spine.example.net.".
	// Required.
	Zone string
	// NS are the names of the zone's name servers, answered for NS at the
	// apex; the first is the SOA MNAME. Default: ["ns1.<Zone>"].
	NS []string
	// Glue gives the addresses answered for A and AAAA queries of name
	// server names inside the zone. Optional.
	Glue map[string][]netip.Addr
	// Mbox is the zone's contact, as an email address or a DNS name (the
	// SOA RNAME). Default: "hostmaster.<Zone>".
	Mbox string
	// Serial is the SOA serial. Default: 1. The records change without a
	// zone serial, since nothing transfers this zone incrementally.
	Serial uint32
	// TTL of every answer, and the SOA minimum, which resolvers use to
	// cache NXDOMAIN and NODATA answers. Default: 60s.
	TTL time.Duration
	// Records holds the TXT records. Required.
	Records RecordStore
	// TSIG maps key names to base64 secrets of HMAC-SHA256 keys. With at
	// least one key, the server accepts dynamic updates (RFC 2136) of TXT
	// records signed with one of them, if Records implements RecordWriter,
	// and signed zone transfers (AXFR over TCP), if Records implements
	// TXTLister. Default: none; updates are REFUSED.
	TSIG map[string]string
	// QueryTimeout bounds the handling of one message, store reads included.
	// Default: 2s.
	QueryTimeout time.Duration
	// MaxInFlight bounds the messages handled at once; beyond it the server
	// answers SERVFAIL. Default: 256.
	MaxInFlight int
	// MaxTCPConns bounds open TCP connections. Default: 128.
	MaxTCPConns int
	// HTTPS, if not nil, gives the HTTPS record (RFC 9460, type 65) of a
	// name of the zone (without its trailing dot), or false when the name
	// has none. It is called for each HTTPS query and must be fast and
	// safe for concurrent use. Default: no HTTPS records.
	HTTPS func(name string) (HTTPSRecord, bool)
	// Logger receives update and error events. Default: discarded.
	Logger *slog.Logger
}

// HTTPSRecord is the HTTPS record of a name: service mode, priority 1, the
// name itself as target (".").
type HTTPSRecord struct {
	ALPN []string // e.g. h3, h2
	ECH  []byte   // an ECHConfigList; nil: none
}

// RR returns the record as DNS answers it for name (with its trailing dot),
// with ttl.
func (r HTTPSRecord) RR(name string, ttl uint32) *dns.HTTPS {
	rr := &dns.HTTPS{SVCB: dns.SVCB{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeHTTPS, Class: dns.ClassINET, Ttl: ttl}, Priority: 1, Target: "."}}
	if len(r.ALPN) > 0 {
		rr.Value = append(rr.Value, &dns.SVCBAlpn{Alpn: r.ALPN})
	}
	if len(r.ECH) > 0 {
		rr.Value = append(rr.Value, &dns.SVCBECHConfig{ECH: r.ECH})
	}
	return rr
}

const (
	maxUDPSize    = 1232 // the DNS flag day 2020 EDNS buffer size
	maxUpdateRRs  = 64
	maxReadSize   = 4096 // a UDP request larger than this is dropped
	tcpIdle       = 8 * time.Second
	maxTCPQueries = 128
)

// Server is an authoritative DNS server for one zone.
type Server struct {
	zone    string
	ns      []string
	glue    map[string][]netip.Addr
	soa     *dns.SOA
	ttl     uint32
	records RecordStore
	tsig    map[string]string
	timeout time.Duration
	https   func(string) (HTTPSRecord, bool)
	sem     chan struct{}
	maxTCP  int
	log     *slog.Logger

	mu      sync.Mutex
	closed  bool
	servers []*dns.Server
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("dnsserver: server closed")

// New checks cfg and returns a Server for it.
func New(cfg Config) (*Server, error) {
	zone := canonicalName(cfg.Zone)
	if cfg.Zone == "" || !validName(zone) {
		return nil, fmt.Errorf("dnsserver: invalid zone %q", cfg.Zone)
	}
	if cfg.Records == nil {
		return nil, errors.New("dnsserver: Config.Records is required")
	}
	s := &Server{
		zone:    zone,
		records: cfg.Records,
		glue:    make(map[string][]netip.Addr),
		tsig:    make(map[string]string),
		timeout: cfg.QueryTimeout,
		https:   cfg.HTTPS,
		maxTCP:  cfg.MaxTCPConns,
		log:     cfg.Logger,
	}
	if s.timeout <= 0 {
		s.timeout = 2 * time.Second
	}
	if s.maxTCP <= 0 {
		s.maxTCP = 128
	}
	maxInFlight := cfg.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = 256
	}
	s.sem = make(chan struct{}, maxInFlight)
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ttl := cfg.TTL
	if ttl <= 0 {
		ttl = 60 * time.Second
	}
	s.ttl = uint32(ttl / time.Second)

	s.ns = []string{"ns1." + zone}
	if len(cfg.NS) > 0 {
		s.ns = nil
		for _, n := range cfg.NS {
			n = canonicalName(n)
			if _, ok := dns.IsDomainName(n); !ok {
				return nil, fmt.Errorf("dnsserver: invalid name server name %q", n)
			}
			s.ns = append(s.ns, n)
		}
	}
	for name, addrs := range cfg.Glue {
		name = canonicalName(name)
		if !inZone(name, zone) {
			return nil, fmt.Errorf("dnsserver: glue for %s, which is outside zone %s", name, zone)
		}
		s.glue[name] = slices.Clone(addrs)
	}
	mbox := cfg.Mbox
	if mbox == "" {
		mbox = "hostmaster." + zone
	}
	if local, domain, ok := strings.Cut(mbox, "@"); ok {
		mbox = strings.ReplaceAll(local, ".", `\.`) + "." + domain
	}
	mbox = canonicalName(mbox)
	if _, ok := dns.IsDomainName(mbox); !ok {
		return nil, fmt.Errorf("dnsserver: invalid SOA contact %q", cfg.Mbox)
	}
	serial := cfg.Serial
	if serial == 0 {
		serial = 1
	}
	s.soa = &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: s.ttl},
		Ns:      s.ns[0],
		Mbox:    mbox,
		Serial:  serial,
		Refresh: 3600,
		Retry:   600,
		Expire:  604800,
		Minttl:  s.ttl,
	}
	for name, secret := range cfg.TSIG {
		if _, err := base64.StdEncoding.DecodeString(secret); err != nil || secret == "" {
			return nil, fmt.Errorf("dnsserver: TSIG key %s: secret is not base64", name) // never the secret itself
		}
		s.tsig[canonicalName(name)] = secret
	}
	return s, nil
}

// Zone returns the canonical name of the zone the server answers for.
func (s *Server) Zone() string { return s.zone }

// Serve answers on udp and tcp (either may be nil, not both) until Shutdown
// or until one of them fails, and then returns. After Shutdown it returns
// ErrServerClosed.
func (s *Server) Serve(udp net.PacketConn, tcp net.Listener) error {
	if udp == nil && tcp == nil {
		return errors.New("dnsserver: Serve needs a UDP socket or a TCP listener")
	}
	var servers []*dns.Server
	base := func() *dns.Server {
		srv := &dns.Server{
			Handler:       s,
			MsgAcceptFunc: accept,
			ReadTimeout:   s.timeout,
			WriteTimeout:  s.timeout,
		}
		if len(s.tsig) > 0 {
			srv.TsigSecret = s.tsig
		}
		return srv
	}
	if udp != nil {
		srv := base()
		srv.PacketConn = udp
		srv.UDPSize = maxReadSize
		servers = append(servers, srv)
	}
	if tcp != nil {
		srv := base()
		srv.Listener = netutil.LimitListener(tcp, s.maxTCP)
		srv.IdleTimeout = func() time.Duration { return tcpIdle }
		srv.MaxTCPQueries = maxTCPQueries
		servers = append(servers, srv)
	}

	errc := make(chan error, len(servers))
	for _, srv := range servers {
		srv.NotifyStartedFunc = func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.closed {
				go srv.Shutdown() //nolint:errcheck // already stopping
				return
			}
			s.servers = append(s.servers, srv)
		}
		go func() { errc <- srv.ActivateAndServe() }()
	}
	var first error
	for range servers {
		err := <-errc
		if first == nil {
			first = err
			// One half failing (or stopping) stops the other.
			for _, srv := range servers {
				srv.Shutdown() //nolint:errcheck // "not started" when it is the one that failed
			}
		}
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	if first == nil {
		first = errors.New("stopped")
	}
	return fmt.Errorf("dnsserver: serving: %w", first)
}

// Shutdown stops the server: it closes the sockets and waits, until ctx is
// done, for the messages being handled.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	servers := s.servers
	s.servers = nil
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// accept screens a message's header before it is parsed further.
func accept(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	switch int(dh.Bits>>11) & 0xF {
	case dns.OpcodeQuery:
		if dh.Qdcount != 1 || dh.Ancount > 0 || dh.Nscount > 0 || dh.Arcount > 2 {
			return dns.MsgReject
		}
	case dns.OpcodeUpdate:
		if dh.Qdcount != 1 || int(dh.Ancount)+int(dh.Nscount) > maxUpdateRRs || dh.Arcount > 2 {
			return dns.MsgReject
		}
	default:
		return dns.MsgRejectNotImplemented
	}
	return dns.MsgAccept
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	tcp := w.LocalAddr().Network() == "tcp"
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		m := new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
		w.WriteMsg(m) //nolint:errcheck // the client retries
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()

	if tcp && req.Opcode == dns.OpcodeQuery && len(req.Question) == 1 && req.Question[0].Qtype == dns.TypeAXFR {
		if s.transfer(ctx, w, req) {
			return
		}
	}
	m := s.answer(ctx, req, tcp, w.TsigStatus())
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("dnsserver: writing answer", "remote", w.RemoteAddr().String(), "error", err)
	}
}

// answer builds the reply to req. tsigErr is the result of verifying req's
// TSIG record, if it has one.
func (s *Server) answer(ctx context.Context, req *dns.Msg, tcp bool, tsigErr error) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Compress = true
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		if opt.Version() != 0 {
			m.SetEdns0(maxUDPSize, false)
			m.Rcode = dns.RcodeBadVers
			return m
		}
		size = max(size, min(int(opt.UDPSize()), maxUDPSize))
		m.SetEdns0(maxUDPSize, false)
	}

	t := req.IsTsig()
	if t != nil && !s.tsigOK(t, tsigErr) {
		m.Rcode = dns.RcodeNotAuth
		return m
	}

	switch req.Opcode {
	case dns.OpcodeQuery:
		s.query(ctx, req, m)
	case dns.OpcodeUpdate:
		s.update(ctx, req, m, t != nil)
	default:
		m.Rcode = dns.RcodeNotImplemented
	}
	if t != nil {
		size -= tsigRoom
	}
	if !tcp {
		m.Truncate(size)
	}
	// The server signs the reply on the way out, with the request's MAC. Not
	// a NOTAUTH one: miekg/dns clients read a signed NOTAUTH as a TSIG failure.
	if t != nil && m.Rcode != dns.RcodeNotAuth {
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, now())
	}
	return m
}

// tsigRoom is what a TSIG record for an HMAC-SHA256 key with a name of up to
// 64 bytes takes in a message.
const tsigRoom = 160

// tsigOK reports whether a request's TSIG verified with one of our keys and
// uses HMAC-SHA256.
func (s *Server) tsigOK(t *dns.TSIG, tsigErr error) bool {
	_, known := s.tsig[canonicalName(t.Hdr.Name)]
	return known && tsigErr == nil && strings.EqualFold(t.Algorithm, dns.HmacSHA256)
}

func (s *Server) query(ctx context.Context, req *dns.Msg, m *dns.Msg) {
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return
	}
	q := req.Question[0]
	name := canonicalName(q.Name)
	if q.Qclass != dns.ClassINET || !inZone(name, s.zone) {
		m.Rcode = dns.RcodeRefused
		return
	}
	m.Authoritative = true
	switch q.Qtype {
	case dns.TypeAXFR, dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused // transfers: signed, over TCP, in transfer
		return
	}

	var vals []string
	if validName(name) {
		var err error
		if vals, err = s.records.TXT(ctx, name); err != nil {
			s.log.Error("dnsserver: reading records", "name", name, "error", err)
			m.Rcode = dns.RcodeServerFailure
			m.Authoritative = false
			return
		}
	}
	glue, isGlue := s.glue[name]
	var https HTTPSRecord
	hasHTTPS := false
	if s.https != nil && validName(name) {
		https, hasHTTPS = s.https(strings.TrimSuffix(name, "."))
	}
	exists := name == s.zone || isGlue || len(vals) > 0 || hasHTTPS

	hdr := func(t uint16) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: s.ttl}
	}
	if name == s.zone && (q.Qtype == dns.TypeSOA || q.Qtype == dns.TypeANY) {
		soa := *s.soa
		soa.Hdr.Name = q.Name
		m.Answer = append(m.Answer, &soa)
	}
	if name == s.zone && (q.Qtype == dns.TypeNS || q.Qtype == dns.TypeANY) {
		for _, ns := range s.ns {
			m.Answer = append(m.Answer, &dns.NS{Hdr: hdr(dns.TypeNS), Ns: ns})
			m.Extra = append(m.Extra, s.glueRRs(ns)...)
		}
	}
	if q.Qtype == dns.TypeTXT || q.Qtype == dns.TypeANY {
		for _, v := range vals {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: dnstxt.Strings(v)})
		}
	}
	if hasHTTPS && (q.Qtype == dns.TypeHTTPS || q.Qtype == dns.TypeANY) {
		m.Answer = append(m.Answer, https.RR(q.Name, s.ttl))
	}
	if isGlue && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY) {
		for _, rr := range addrRRs(q.Name, s.ttl, glue) {
			if q.Qtype == dns.TypeANY || rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, s.soa)
		if !exists {
			m.Rcode = dns.RcodeNameError
		}
	}
}

func (s *Server) glueRRs(ns string) []dns.RR {
	return addrRRs(ns, s.ttl, s.glue[ns])
}

func addrRRs(name string, ttl uint32, addrs []netip.Addr) []dns.RR {
	var out []dns.RR
	for _, a := range addrs {
		if a.Is4() {
			out = append(out, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: a.AsSlice()})
		} else {
			out = append(out, &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()})
		}
	}
	return out
}

func now() int64 { return time.Now().Unix() }
