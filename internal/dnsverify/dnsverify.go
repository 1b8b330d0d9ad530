// Package dnsverify checks that a tenant controls a domain: `spine domain
// add example.com` hands out a token, the tenant publishes
//
//	_spine-challenge.example.com. 300 IN TXT "spine-verify=<token>"
//
// and Verifier looks the record up through one configured resolver, telling
// apart a record that is missing, one with another value, and a resolver
// that failed, in words a user can act on.
//
// Imports: only the standard library, github.com/miekg/dns, internal/dnstxt,
// internal/hostname, golang.org/x/net/idna.
package dnsverify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/spine-platform/spine/internal/dnstxt"
	"github.com/spine-platform/spine/internal/hostname"
)

// The record a tenant publishes to prove control of a domain.
const (
	RecordLabel = "_spine-challenge" // RecordName(d) is RecordLabel + "." + d
	ValuePrefix = "spine-verify="    // RecordValue(t) is ValuePrefix + t
)

// RecordName returns the name of the verification record for domain,
// without a final dot. A leading "*." is dropped: a wildcard is verified by
// its base domain.
func RecordName(domain string) string {
	domain = hostname.Fold(hostname.TrimWildcard(domain))
	return RecordLabel + "." + domain
}

// RecordValue returns the TXT value that verifies token.
func RecordValue(token string) string { return ValuePrefix + token }

// What went wrong, for errors.Is: there is no such record (NXDOMAIN or no
// TXT at the name), the record has other values, or the resolver could not
// answer (timeout, SERVFAIL, REFUSED, network error): only the last is worth
// retrying without the user changing anything.
var (
	ErrNotFound = errors.New("no TXT record")
	ErrMismatch = errors.New("TXT value does not match")
	ErrResolver = errors.New("resolver failure")
)

// Error is the error of LookupTXT and Verify. errors.Is(err, ErrNotFound),
// ErrMismatch or ErrResolver tells its kind.
type Error struct {
	Kind   error  // ErrNotFound, ErrMismatch or ErrResolver
	Detail string // for the user, e.g. "no TXT record at _spine-challenge.example.com"
	Err    error  // the underlying network error, if any
}

func (e *Error) Error() string   { return "dnsverify: " + e.Detail }
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// Result is the outcome of Verify.
type Result struct {
	OK    bool
	Name  string   // the name looked up, e.g. "_spine-challenge.example.com"
	Want  string   // the expected value, "spine-verify=<token>"
	Found []string // the TXT values found at Name (after CNAMEs)
	// Detail says, for the user, what was found: "verified", or the Detail
	// of the error.
	Detail string
}

// Verifier looks up TXT records through one resolver. Its zero value uses
// the first name server of /etc/resolv.conf. Do not change the fields once
// it is in use; it is safe for concurrent use.
type Verifier struct {
	// Resolver is the host:port (or host, port 53) of a recursive
	// resolver. Default: the first nameserver of /etc/resolv.conf, else
	// 127.0.0.1:53.
	Resolver string
	// Timeout bounds one lookup, retries and CNAMEs included. Default: 5s.
	Timeout time.Duration
}

const (
	maxCNAMEs = 8
	udpSize   = 1232
)

func (v *Verifier) resolver() string {
	r := v.Resolver
	if r == "" {
		r = "127.0.0.1"
		if cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil && len(cfg.Servers) > 0 {
			r = net.JoinHostPort(cfg.Servers[0], cfg.Port)
		}
	}
	if _, _, err := net.SplitHostPort(r); err != nil {
		r = net.JoinHostPort(strings.Trim(r, "[]"), "53")
	}
	return r
}

func (v *Verifier) timeout() time.Duration {
	if v.Timeout > 0 {
		return v.Timeout
	}
	return 5 * time.Second
}

// Verify looks up RecordName(domain) and checks that one of its TXT values
// is RecordValue(token). It returns an *Error when not; Result describes
// what was found either way.
func (v *Verifier) Verify(ctx context.Context, domain, token string) (Result, error) {
	res := Result{Name: RecordName(domain), Want: RecordValue(token)}
	vals, err := v.LookupTXT(ctx, res.Name)
	res.Found = vals
	if err != nil {
		res.Detail = detail(err)
		return res, err
	}
	for _, val := range vals {
		if val == res.Want {
			res.OK, res.Detail = true, "verified"
			return res, nil
		}
	}
	quoted := make([]string, len(vals))
	for i, val := range vals {
		quoted[i] = strconv.Quote(val)
	}
	noun := "values"
	if len(vals) == 1 {
		noun = "value"
	}
	e := &Error{Kind: ErrMismatch, Detail: fmt.Sprintf("found %d TXT %s at %s: %s; none equals %q",
		len(vals), noun, res.Name, strings.Join(quoted, ", "), res.Want)}
	res.Detail = e.Detail
	return res, e
}

// Owns is Verify in the shape of platform.Ownership (which this package
// does not import): value is RecordValue(token). A missing or different
// record is no error, only not ok; a failed resolver is (ErrResolver), so
// that the caller can tell "not proven" from "could not look".
func (v *Verifier) Owns(ctx context.Context, domain, value string) (ok bool, detail string, err error) {
	res, err := v.Verify(ctx, domain, strings.TrimPrefix(value, ValuePrefix))
	if res.OK {
		return true, res.Detail, nil
	}
	if errors.Is(err, ErrResolver) {
		return false, res.Detail, err
	}
	return false, res.Detail, nil
}

func detail(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Detail
	}
	return err.Error()
}

// LookupTXT returns the TXT values at name, each record's strings joined,
// following CNAMEs (those in the answer, then asking again for the target
// if the resolver did not). No TXT record, or NXDOMAIN, is an error of kind
// ErrNotFound.
func (v *Verifier) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout())
	defer cancel()
	shown := strings.TrimSuffix(name, ".")
	qname := dns.Fqdn(name)
	if _, ok := dns.IsDomainName(qname); !ok {
		return nil, &Error{Kind: ErrNotFound, Detail: fmt.Sprintf("%q is not a valid DNS name", shown)}
	}
	via := ""
	for range maxCNAMEs {
		r, err := v.exchange(ctx, qname)
		if err != nil {
			return nil, err
		}
		vals, next := fromAnswer(r.Answer, qname)
		if len(vals) > 0 {
			return vals, nil
		}
		switch r.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			if last := lastName(r.Answer, qname); last != qname || via != "" {
				return nil, &Error{Kind: ErrNotFound, Detail: fmt.Sprintf("NXDOMAIN: %s (CNAME target of %s) does not exist", strings.TrimSuffix(last, "."), shown)}
			}
			return nil, &Error{Kind: ErrNotFound, Detail: fmt.Sprintf("NXDOMAIN: %s does not exist", shown)}
		default:
			return nil, &Error{Kind: ErrResolver, Detail: fmt.Sprintf("resolver %s answered %s for %s", v.resolver(), dns.RcodeToString[r.Rcode], strings.TrimSuffix(qname, "."))}
		}
		if next == "" {
			if via != "" || lastName(r.Answer, qname) != qname {
				return nil, &Error{Kind: ErrNotFound, Detail: fmt.Sprintf("no TXT record at %s (CNAME to %s)", shown, strings.TrimSuffix(lastName(r.Answer, qname), "."))}
			}
			return nil, &Error{Kind: ErrNotFound, Detail: "no TXT record at " + shown}
		}
		via, qname = qname, next
	}
	return nil, &Error{Kind: ErrNotFound, Detail: fmt.Sprintf("no TXT record at %s: more than %d CNAMEs", shown, maxCNAMEs)}
}

// fromAnswer follows the CNAME chain from name through the answer section
// and returns the TXT values at its end, or, if the chain ends in a CNAME
// whose target the answer does not cover, that target.
func fromAnswer(answer []dns.RR, name string) (vals []string, unresolved string) {
	cur := name
	for range maxCNAMEs + 1 {
		var cname string
		for _, rr := range answer {
			if !strings.EqualFold(rr.Header().Name, cur) {
				continue
			}
			switch rr := rr.(type) {
			case *dns.TXT:
				vals = append(vals, dnstxt.Value(rr.Txt))
			case *dns.CNAME:
				cname = rr.Target
			}
		}
		if len(vals) > 0 || cname == "" {
			return vals, ""
		}
		if !hasOwner(answer, cname) {
			return nil, cname
		}
		cur = cname
	}
	return nil, ""
}

// lastName is the name the CNAME chain from name in answer ends at.
func lastName(answer []dns.RR, name string) string {
	cur := name
	for range maxCNAMEs + 1 {
		next := ""
		for _, rr := range answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, cur) {
				next = c.Target
			}
		}
		if next == "" {
			return cur
		}
		cur = next
	}
	return cur
}

func hasOwner(answer []dns.RR, name string) bool {
	for _, rr := range answer {
		if strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// exchange asks the resolver for the TXT records at qname: over UDP, tried
// twice, then over TCP if the answer was truncated.
func (v *Verifier) exchange(ctx context.Context, qname string) (*dns.Msg, error) {
	addr := v.resolver()
	m := new(dns.Msg).SetQuestion(qname, dns.TypeTXT)
	m.SetEdns0(udpSize, false)
	half := v.timeout() / 2
	var (
		r   *dns.Msg
		err error
	)
	for range 2 {
		c := &dns.Client{Net: "udp", UDPSize: udpSize, Timeout: half}
		r, _, err = c.ExchangeContext(ctx, m, addr)
		if err == nil || !isTimeout(err) || ctx.Err() != nil {
			break
		}
	}
	if err == nil && r.Truncated {
		c := &dns.Client{Net: "tcp", Timeout: v.timeout()}
		r, _, err = c.ExchangeContext(ctx, m, addr)
	}
	if err != nil {
		if isTimeout(err) || ctx.Err() != nil {
			return nil, &Error{Kind: ErrResolver, Detail: fmt.Sprintf("resolver %s timed out after %s", addr, v.timeout()), Err: err}
		}
		return nil, &Error{Kind: ErrResolver, Detail: fmt.Sprintf("resolver %s: %v", addr, err), Err: err}
	}
	return r, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
