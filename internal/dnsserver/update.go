package dnsserver

import (
	"context"
	"maps"
	"slices"

	"github.com/miekg/dns"

	"github.com/spine-platform/spine/internal/dnstxt"
)

// updateOp is one change of a dynamic update, checked before any is applied.
type updateOp struct {
	name, value string
	add         bool
}

// update applies an RFC 2136 dynamic update of TXT records. Only signed
// requests get here with signed=true (the TSIG was checked in answer).
// Prerequisites are not supported (NOTIMP); records other than TXT are
// REFUSED; the zone's SOA and NS cannot be changed.
func (s *Server) update(ctx context.Context, req *dns.Msg, m *dns.Msg, signed bool) {
	w, ok := s.records.(RecordWriter)
	if !signed || !ok {
		m.Rcode = dns.RcodeRefused
		return
	}
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return
	}
	if z := req.Question[0]; z.Qtype != dns.TypeSOA || canonicalName(z.Name) != s.zone {
		m.Rcode = dns.RcodeNotAuth // not authoritative for that zone
		return
	}
	if len(req.Answer) > 0 {
		m.Rcode = dns.RcodeNotImplemented
		return
	}
	ops, rcode := s.checkUpdate(req.Ns)
	if rcode != dns.RcodeSuccess {
		m.Rcode = rcode
		return
	}
	for _, op := range ops {
		var err error
		if op.add {
			err = w.AddTXT(ctx, op.name, op.value)
		} else {
			err = w.DeleteTXT(ctx, op.name, op.value)
		}
		if err != nil {
			s.log.Error("dnsserver: applying update", "name", op.name, "add", op.add, "error", err)
			m.Rcode = dns.RcodeServerFailure
			return
		}
		s.log.Debug("dnsserver: dynamic update", "name", op.name, "add", op.add) // one a record: routine
	}
}

// checkUpdate turns the update section into operations, or says why not.
func (s *Server) checkUpdate(rrs []dns.RR) ([]updateOp, int) {
	if len(rrs) > maxUpdateRRs {
		return nil, dns.RcodeFormatError
	}
	var ops []updateOp
	for _, rr := range rrs {
		h := rr.Header()
		name := canonicalName(h.Name)
		if !inZone(name, s.zone) {
			return nil, dns.RcodeNotZone
		}
		if !validName(name) {
			return nil, dns.RcodeRefused
		}
		switch h.Class {
		case dns.ClassINET: // add to an RRset
			txt, ok := rr.(*dns.TXT)
			if !ok {
				return nil, dns.RcodeRefused
			}
			v := dnstxt.Value(txt.Txt)
			if checkRecord(name, v) != nil {
				return nil, dns.RcodeRefused
			}
			ops = append(ops, updateOp{name: name, value: v, add: true})
		case dns.ClassANY: // delete an RRset, or all RRsets at a name
			if h.Ttl != 0 || (h.Rrtype != dns.TypeTXT && h.Rrtype != dns.TypeANY) {
				return nil, dns.RcodeRefused
			}
			ops = append(ops, updateOp{name: name})
		case dns.ClassNONE: // delete one RR
			txt, ok := rr.(*dns.TXT)
			if !ok || h.Ttl != 0 {
				return nil, dns.RcodeRefused
			}
			ops = append(ops, updateOp{name: name, value: dnstxt.Value(txt.Txt)})
		default:
			return nil, dns.RcodeFormatError
		}
	}
	return ops, dns.RcodeSuccess
}

// transfer answers a zone transfer (AXFR) if it is signed with one of the
// server's keys and Records can list its names; it reports false, having
// written nothing, to leave the refusal to answer.
func (s *Server) transfer(ctx context.Context, w dns.ResponseWriter, req *dns.Msg) bool {
	t := req.IsTsig()
	lister, ok := s.records.(TXTLister)
	if t == nil || !s.tsigOK(t, w.TsigStatus()) || !ok || canonicalName(req.Question[0].Name) != s.zone {
		return false
	}
	all, err := lister.ListTXT(ctx)
	if err != nil {
		s.log.Error("dnsserver: listing records for AXFR", "error", err)
		m := new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, now())
		w.WriteMsg(m) //nolint:errcheck // the client sees the connection end
		return true
	}
	rrs := []dns.RR{s.soa}
	for _, ns := range s.ns {
		rrs = append(rrs, &dns.NS{Hdr: dns.RR_Header{Name: s.zone, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: s.ttl}, Ns: ns})
	}
	for _, name := range slices.Sorted(maps.Keys(s.glue)) {
		rrs = append(rrs, addrRRs(name, s.ttl, s.glue[name])...)
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		if !inZone(name, s.zone) {
			continue // another zone's records in a shared store
		}
		for _, v := range all[name] {
			rrs = append(rrs, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: s.ttl}, Txt: dnstxt.Strings(v)})
		}
	}
	rrs = append(rrs, s.soa)

	// At most 32 TXT values of 1 KiB per name: 50 records stay well under
	// the 64 KiB of one TCP message.
	ch := make(chan *dns.Envelope, len(rrs)/50+1)
	for chunk := range slices.Chunk(rrs, 50) {
		ch <- &dns.Envelope{RR: chunk}
	}
	close(ch)
	if err := new(dns.Transfer).Out(w, req, ch); err != nil {
		s.log.Debug("dnsserver: writing AXFR", "error", err)
	}
	return true
}
