package certs

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mholt/acmez/v3/acme"
	"github.com/miekg/dns"
	"github.com/spine-platform/spine/internal/hostname"
)

// caaTimeout bounds one CAA look-up.
const caaTimeout = 5 * time.Second

// checkCAA looks up the CAA records that govern each name (RFC 8659: the
// closest one up the tree that has any) and returns a CAA problem if they
// allow none of the CA's identities (its directory's caaIdentities). It
// runs before an order, so that the user reads "CAA forbids" at once and
// the CA is not asked for a certificate it must refuse; the CA checks
// again, and stays the authority. A look-up that fails lets the order
// go ahead: the CA decides then.
func checkCAA(ctx context.Context, resolver string, caIDs, names []string) error {
	if len(caIDs) == 0 {
		return nil
	}
	if resolver == "" {
		conf, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(conf.Servers) == 0 {
			return nil
		}
		resolver = net.JoinHostPort(conf.Servers[0], conf.Port)
	}
	for _, name := range names {
		wildcard := hostname.IsWildcard(name)
		owner, records := closestCAA(ctx, resolver, hostname.TrimWildcard(name))
		if records == nil {
			continue
		}
		if allowed, tags := caaAllows(records, caIDs, wildcard); !allowed {
			return acme.Problem{
				Type: acme.ProblemTypeCAA,
				Detail: fmt.Sprintf("CAA records at %s (%s) do not allow %s to issue for %s; add `%s. CAA 0 issue \"%s\"` or remove them",
					strings.TrimSuffix(owner, "."), strings.Join(tags, ", "), strings.Join(caIDs, " or "), name, strings.TrimSuffix(owner, "."), caIDs[0]),
			}
		}
	}
	return nil
}

// closestCAA returns the CAA records of name or of its closest ancestor
// that has any (nil if none, or if a look-up failed).
func closestCAA(ctx context.Context, resolver, name string) (string, []*dns.CAA) {
	labels := dns.SplitDomainName(name)
	for i := range labels {
		owner := dns.Fqdn(strings.Join(labels[i:], "."))
		records, err := lookupCAA(ctx, resolver, owner)
		if err != nil {
			return "", nil
		}
		if len(records) > 0 {
			return owner, records
		}
	}
	return "", nil
}

func lookupCAA(ctx context.Context, resolver, owner string) ([]*dns.CAA, error) {
	ctx, cancel := context.WithTimeout(ctx, caaTimeout)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(owner, dns.TypeCAA)
	m.RecursionDesired = true
	c := &dns.Client{Net: "udp", Timeout: caaTimeout}
	r, _, err := c.ExchangeContext(ctx, m, resolver)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, resolver)
	}
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, fmt.Errorf("CAA look-up for %s: %s", owner, dns.RcodeToString[r.Rcode])
	}
	var out []*dns.CAA
	for _, rr := range r.Answer {
		if caa, ok := rr.(*dns.CAA); ok { // after any CNAME the resolver followed
			out = append(out, caa)
		}
	}
	return out, nil
}

// caaAllows applies a CAA record set to a CA known by caIDs: "issuewild"
// governs wildcard names when present, else "issue"; a set with neither
// (only iodef, say) allows any CA. It also returns the governing records,
// to name them in an error.
func caaAllows(records []*dns.CAA, caIDs []string, wildcard bool) (bool, []string) {
	var issue, wild []string
	for _, r := range records {
		switch strings.ToLower(r.Tag) {
		case "issue":
			issue = append(issue, r.Value)
		case "issuewild":
			wild = append(wild, r.Value)
		}
	}
	governing, tag := issue, "issue"
	if wildcard && len(wild) > 0 {
		governing, tag = wild, "issuewild"
	}
	if len(governing) == 0 {
		return true, nil
	}
	var shown []string
	for _, v := range governing {
		shown = append(shown, fmt.Sprintf("%s %q", tag, v))
		domain, _, _ := strings.Cut(v, ";")
		domain = hostname.Fold(strings.TrimSpace(domain))
		for _, id := range caIDs {
			if domain != "" && domain == hostname.Fold(id) {
				return true, nil
			}
		}
	}
	return false, shown
}
