package dnsverify

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/spine-platform/spine/internal/dnstxt"
)

// FuzzFromAnswer feeds DNS messages as a resolver might send them (parsed
// by dns.Msg.Unpack) to fromAnswer and lastName, asking for the message's
// own question name, or the verification name of example.com when it has
// none. It checks that neither panics and that what they return comes from
// the CNAME chain that starts at the asked name:
//
//   - the values are those of the TXT records at one name of the chain, the
//     first that has any, all of them and in order; none when that name is
//     more than maxCNAMEs hops away, or no name has any (a CNAME loop);
//   - an unresolved name is the target of the chain's last CNAME, when no
//     record in the answer owns it, and only then;
//   - lastName is the asked name or a CNAME target on the chain.
func FuzzFromAnswer(f *testing.F) {
	msg := func(rrs ...string) []byte {
		m := new(dns.Msg).SetQuestion("_spine-challenge.example.com.", dns.TypeTXT)
		m.Response = true
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(msg(`_spine-challenge.example.com. 300 IN TXT "spine-verify=abc"`))
	f.Add(msg(`_spine-challenge.example.com. 300 IN CNAME b.example.net.`, `B.Example.NET. 300 IN TXT "spine-verify=" "abc"`))
	f.Add(msg(`_spine-challenge.example.com. 300 IN CNAME b.example.net.`))

	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		name := "_spine-challenge.example.com."
		if len(m.Question) > 0 {
			name = m.Question[0].Name
		}
		vals, unresolved := fromAnswer(m.Answer, name)
		last := lastName(m.Answer, name)

		// The chain as fromAnswer may walk it: name and up to maxCNAMEs+1
		// CNAME targets. Each name before the first with TXT records has a
		// CNAME, so fromAnswer must reach that one if it is within
		// maxCNAMEs hops, and return all its values.
		full := cnameChain(m.Answer, name)
		chain := full
		var want []string
		for i, owner := range full {
			if txt := txtAt(m.Answer, owner); txt != nil {
				if i <= maxCNAMEs {
					want = txt
				}
				chain = full[:i+1] // a name with TXT records ends the walk
				break
			}
		}
		if !slices.Equal(vals, want) {
			t.Fatalf("asked for %s: values %q; the first TXT records on the chain %q hold %q", name, vals, chain, want)
		}
		wantUnresolved := ""
		if end := chain[len(chain)-1]; len(chain) > 1 && !hasOwner(m.Answer, end) {
			wantUnresolved = end
		}
		if !strings.EqualFold(unresolved, wantUnresolved) {
			t.Fatalf("asked for %s: unresolved %q, want %q (chain %q)", name, unresolved, wantUnresolved, chain)
		}
		if !slices.Contains(full, strings.ToLower(last)) {
			t.Fatalf("lastName %q is not on the chain %q", last, full)
		}
	})
}

// cnameChain is name and the CNAME targets that follow from it in answer
// (the last CNAME at a name wins, as in fromAnswer), lower case, at most
// maxCNAMEs+1 hops, without repeats.
func cnameChain(answer []dns.RR, name string) []string {
	chain := []string{strings.ToLower(name)}
	cur := name
	for range maxCNAMEs + 1 {
		next := ""
		for _, rr := range answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, cur) {
				next = c.Target
			}
		}
		if next == "" || slices.Contains(chain, strings.ToLower(next)) {
			break
		}
		chain = append(chain, strings.ToLower(next))
		cur = next
	}
	return chain
}

// txtAt is the values of the TXT records at owner, in answer order.
func txtAt(answer []dns.RR, owner string) []string {
	var vals []string
	for _, rr := range answer {
		if t, ok := rr.(*dns.TXT); ok && strings.EqualFold(t.Hdr.Name, owner) {
			vals = append(vals, dnstxt.Value(t.Txt))
		}
	}
	return vals
}
