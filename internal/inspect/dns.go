package inspect

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/spine-platform/spine/internal/hostname"
)

// dnsTimeout bounds each DNS query (and its retry over TCP).
const dnsTimeout = 5 * time.Second

// resolved is what resolve found: addresses to connect to and, from an
// HTTPS record, an ECH configuration list.
type resolved struct {
	addrs []string
	ech   []byte
}

// resolve turns the target's host into addresses, the way the system would
// (an IP address needs nothing, names under localhost are loopback,
// /etc/hosts comes first), but asks DNS itself, with miekg/dns, so that
// the answers, their TTLs and the HTTPS record can be shown.
func (in *inspector) resolve(ctx context.Context) (resolved, error) {
	d := &in.r.DNS
	host := in.r.Target.Host
	if a, err := netip.ParseAddr(host); err == nil {
		d.Source = "literal"
		d.Addresses = []string{a.String()}
		d.Explanation = fmt.Sprintf("%s is an IP address: no DNS query was needed", host)
		return resolved{addrs: d.Addresses}, nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		d.Source = "localhost"
		d.Addresses = []string{"127.0.0.1", "::1"}
		d.Explanation = fmt.Sprintf("%s is under localhost, which always means this machine (RFC 6761): no DNS query was needed", host)
		return resolved{addrs: d.Addresses}, nil
	}
	if in.cfg.Resolver == "" {
		if addrs := hostsLookup(in.cfg.HostsFile, host); len(addrs) > 0 {
			d.Source = "hosts"
			d.Addresses = addrs
			d.Explanation = fmt.Sprintf("%s is listed in %s, which the system reads before DNS: no DNS query was needed", host, in.cfg.HostsFile)
			return resolved{addrs: addrs}, nil
		}
	}
	d.Source = "dns"
	server := in.cfg.Resolver
	if server == "" {
		conf, err := dns.ClientConfigFromFile(in.cfg.ResolvConf)
		if err != nil || len(conf.Servers) == 0 {
			return resolved{}, fmt.Errorf("no DNS server: %s lists none (give one with --resolver HOST:PORT)", in.cfg.ResolvConf)
		}
		server = net.JoinHostPort(conf.Servers[0], conf.Port)
	}
	d.Resolver = server
	d.Explanation = fmt.Sprintf("asked %s for A, AAAA and HTTPS records", server)

	type answer struct {
		msg *dns.Msg
		err error
	}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS}
	answers := make([]answer, len(qtypes))
	var wg sync.WaitGroup
	for i, qt := range qtypes {
		wg.Go(func() {
			answers[i].msg, answers[i].err = query(ctx, server, host, qt)
		})
	}
	wg.Wait()

	var res resolved
	var errs []string
	nxdomain := false
	for i, a := range answers {
		if a.err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", dns.TypeToString[qtypes[i]], a.err))
			continue
		}
		if a.msg.Rcode == dns.RcodeNameError {
			nxdomain = true
		} else if a.msg.Rcode != dns.RcodeSuccess {
			errs = append(errs, fmt.Sprintf("%s: the server answered %s", dns.TypeToString[qtypes[i]], dns.RcodeToString[a.msg.Rcode]))
		}
		for _, rr := range a.msg.Answer {
			h := rr.Header()
			ans := DNSAnswer{Type: dns.TypeToString[h.Rrtype], Name: h.Name, TTL: h.Ttl}
			switch v := rr.(type) {
			case *dns.A:
				ans.Value = v.A.String()
				res.addrs = append(res.addrs, ans.Value)
			case *dns.AAAA:
				ans.Value = v.AAAA.String()
				res.addrs = append(res.addrs, ans.Value)
			case *dns.CNAME:
				ans.Value = v.Target
			case *dns.HTTPS:
				ans.Value = strings.TrimPrefix(v.String(), h.String())
				d.HTTPS = append(d.HTTPS, v.String())
				for _, kv := range v.Value {
					if e, ok := kv.(*dns.SVCBECHConfig); ok && res.ech == nil && v.Priority > 0 {
						res.ech = e.ECH
					}
				}
			default:
				continue
			}
			if !containsAnswer(d.Answers, ans) {
				d.Answers = append(d.Answers, ans)
			}
		}
	}
	d.Addresses = res.addrs
	switch {
	case len(res.addrs) > 0:
		https := "no HTTPS record"
		if len(d.HTTPS) > 0 {
			https = fmt.Sprintf("%d HTTPS record(s)", len(d.HTTPS))
			if res.ech != nil {
				https += " with an ECH configuration"
			}
		}
		d.Explanation += fmt.Sprintf(": %d address(es), %s", len(res.addrs), https)
		return res, nil
	case nxdomain:
		return res, fmt.Errorf("%s does not exist: %s answered NXDOMAIN", host, server)
	case len(errs) > 0:
		return res, fmt.Errorf("no address for %s from %s: %s", host, server, strings.Join(errs, "; "))
	}
	return res, fmt.Errorf("%s has no A or AAAA record at %s", host, server)
}

func containsAnswer(list []DNSAnswer, a DNSAnswer) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// query asks server one question over UDP, and again over TCP if the
// answer was truncated.
func query(ctx context.Context, server, host string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(host), qtype)
	m.SetEdns0(1232, false)
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	c := &dns.Client{Timeout: dnsTimeout}
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, server)
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("no answer within %s", dnsTimeout)
		}
		return nil, err
	}
	return r, nil
}

// hostsLookup returns the addresses path gives host, in file order.
func hostsLookup(path, host string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		a, err := netip.ParseAddr(fields[0])
		if err != nil {
			continue
		}
		for _, name := range fields[1:] {
			if hostname.Fold(name) == host {
				out = append(out, a.WithZone("").String())
				break
			}
		}
	}
	return out
}
