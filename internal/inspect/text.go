package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for a person: each step, with the values of
// the connection and what they mean.
func (r *Report) WriteText(w io.Writer) error {
	p := &printer{w: w}
	t := r.Target
	p.line("spine inspect %s", t.Input)

	p.section("DNS", r.Timing.DNS)
	p.line("  %s", r.DNS.Explanation)
	for _, a := range r.DNS.Answers {
		p.line("  %-5s %s → %s (TTL %d s)", a.Type, a.Name, a.Value, a.TTL)
	}
	if len(r.DNS.Addresses) > 0 {
		p.line("  addresses: %s", strings.Join(r.DNS.Addresses, ", "))
	}
	if r.DNS.Error != "" {
		p.line("  ✗ %s", r.DNS.Error)
	}

	if r.TCP != nil {
		p.section("TCP connect", r.Timing.TCP)
		for _, a := range r.TCP.Attempts {
			if a.Error != "" {
				p.line("  ✗ %s: %s (%.1f ms)", a.Address, a.Error, a.Ms)
			} else {
				p.line("  ✓ connected to %s from %s", r.TCP.Remote, r.TCP.Local)
			}
		}
	}

	if hs := r.Handshake; hs != nil {
		p.handshake("TLS handshake", hs, r.Timing.ServerHello)
	}
	if hs := r.Legacy; hs != nil {
		p.handshake("TLS handshake, offering TLS 1.0 and 1.1 too (to say what the server speaks)", hs, nil)
	}

	if len(r.Chain) > 0 {
		p.section(fmt.Sprintf("Certificate chain (%d sent by the server)", len(r.Chain)), nil)
		for _, c := range r.Chain {
			p.line("  [%d] %s", c.Index, c.Subject)
			if len(c.Names) > 0 {
				p.line("      names     %s", strings.Join(c.Names, ", "))
			}
			p.line("      issuer    %s", c.Issuer)
			p.line("      key       %s, signed with %s", c.Key, c.SignatureAlgorithm)
			p.line("      valid     %s to %s", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
			kind := "leaf (the server's own)"
			switch {
			case c.SelfSigned:
				kind = "self-signed"
			case c.CA:
				kind = "certificate authority (intermediate)"
			}
			if c.SelfSigned && c.CA {
				kind = "self-signed certificate authority (a root)"
			}
			p.line("      kind      %s; SHA-256 %s", kind, c.SHA256)
		}
	}

	if v := r.Verification; v != nil {
		p.section("Verification", r.Timing.Verify)
		for _, s := range v.Steps {
			mark := "✓"
			if !s.OK {
				mark = "✗"
			}
			p.line("  %s %-9s %s", mark, s.Step, s.Detail)
		}
		if v.OK {
			p.line("  → trusted")
		} else {
			p.line("  → NOT trusted (%s): %s", v.Failure.Reason, v.Failure.Step)
		}
	}

	if k := r.KeyExchange; k != nil {
		p.section("Key exchange and session keys", nil)
		if k.Group != "" {
			p.line("  group          %s", k.Group)
		}
		p.line("  ephemeral      %s", yesNo(k.Ephemeral))
		p.line("  forward secret %s", yesNo(k.ForwardSecret))
		p.line("  post-quantum   %s", yesNo(k.PostQuantum))
		p.line("  session keys   %s", k.SessionKeys)
		p.line("  %s", k.Explanation)
	}

	if h := r.HTTP; h != nil {
		p.section("HTTP", r.Timing.HTTP)
		if h.Error != "" {
			p.line("  ✗ %s", h.Error)
		} else {
			p.line("  protocol  %s (chosen by ALPN in the handshake)", h.Protocol)
			p.line("  status    %d %s", h.Status, h.StatusText)
			if h.Server != "" {
				p.line("  server    %s", h.Server)
			}
			p.line("  HSTS      %s", orNone(h.HSTS))
			p.line("            %s", h.HSTSWhat)
			p.line("  Alt-Svc   %s", orNone(h.AltSvc))
			p.line("  HTTP/3    %s", h.H3.Explanation)
		}
	}

	if res := r.Resumption; res != nil {
		p.section("Session resumption", r.Timing.Resumption)
		if res.Tickets > 0 {
			life := "no lifetime given"
			if res.LifetimeSeconds > 0 {
				life = fmt.Sprintf("lifetime %d s (%s)", res.LifetimeSeconds, human(time.Duration(res.LifetimeSeconds)*time.Second))
			}
			p.line("  ticket    %d received on the first connection; the last: %d bytes, %s", res.Tickets, res.TicketBytes, life)
		}
		if res.Attempted {
			p.line("  resumed   %s (second connection, handshake %.1f ms)", yesNo(res.Resumed), res.HandshakeMs)
		}
		p.line("  %s", res.Explanation)
	}

	if s := r.Spine; s != nil {
		p.section("Spine's view", nil)
		if s.Status != "" {
			p.line("  status    %s (service %s)", s.Status, s.Service)
			if s.Issuer != "" {
				p.line("  issuer    %s", s.Issuer)
			}
			if s.NotAfter != nil {
				p.line("  expires   %s", s.NotAfter.UTC().Format(time.RFC3339))
			}
			if s.RenewAfter != nil {
				p.line("  renewal   due from %s", s.RenewAfter.UTC().Format(time.RFC3339))
			}
			if s.Error != "" {
				p.line("  error     %s", s.Error)
			}
		}
		p.line("  %s", s.Explanation)
	}

	p.section("Timing", nil)
	p.line("  %s", timingLine(r.Timing))

	res := r.Result
	if res.OK {
		p.line("\nResult: OK, %s", res.Message)
	} else {
		p.line("\nResult: FAILED at %s (%s, exit status %d): %s", res.Step, res.Reason, res.ExitCode, res.Message)
	}
	return p.err
}

func (p *printer) handshake(title string, hs *Handshake, serverHello *float64) {
	p.section(title, nil)
	if ch := hs.ClientHello; ch != nil {
		p.line("  ClientHello (%d bytes, as sent)", ch.Bytes)
		p.clientHello(ch)
	}
	if hrr := hs.HelloRetryRequest; hrr != nil {
		p.line("  HelloRetryRequest: the server asked for %s", hrr.Group)
		p.line("    %s", hrr.Explanation)
	}
	if ch := hs.SecondClientHello; ch != nil {
		p.line("  second ClientHello (%d bytes)", ch.Bytes)
		p.line("    key shares    %s", strings.Join(ch.KeyShares, ", "))
	}
	if sh := hs.ServerHello; sh != nil {
		if serverHello != nil {
			p.line("  ServerHello (answered %s after the ClientHello left)", msText(*serverHello))
		} else {
			p.line("  ServerHello")
		}
		p.line("    version       %s", sh.Version)
		p.line("    cipher suite  %s", sh.CipherSuite)
		if sh.Group != "" {
			p.line("    group         %s", sh.Group)
		}
		p.line("    ALPN          %s", orNone(sh.ALPN))
		if hs.HelloRetryRequest == nil {
			p.line("    no HelloRetryRequest: a key share of the first ClientHello suited the server")
		}
		if sh.DowngradeSentinel != "" {
			p.line("    downgrade sentinel: the server supports a newer version than the %s it chose", sh.DowngradeSentinel)
		}
	}
	p.line("  ECH           %s", hs.ECH.Explanation)
	if hs.Alert != "" {
		p.line("  ✗ the server sent the alert %q", hs.Alert)
	}
	if hs.Explanation != "" {
		p.line("  %s", hs.Explanation)
	}
}

func (p *printer) clientHello(ch *ClientHello) {
	p.line("    SNI           %s", orNone(ch.SNI))
	p.line("    versions      %s", strings.Join(ch.Versions, ", "))
	p.line("    groups        %s", strings.Join(ch.Groups, ", "))
	p.line("    key shares    %s", strings.Join(ch.KeyShares, ", "))
	p.line("    cipher suites %s", strings.Join(ch.CipherSuites, ", "))
	p.line("    ALPN          %s", strings.Join(ch.ALPN, ", "))
	if ch.ResumptionOffers > 0 {
		p.line("    resumption    %d ticket(s) offered", ch.ResumptionOffers)
	}
}

func timingLine(t Timing) string {
	var parts []string
	add := func(name string, v *float64) {
		if v != nil {
			parts = append(parts, name+" "+msText(*v))
		}
	}
	add("DNS", t.DNS)
	add("TCP", t.TCP)
	add("first answer", t.ServerHello)
	add("TLS handshake", t.Handshake)
	add("verification", t.Verify)
	add("HTTP", t.HTTP)
	add("resumption", t.Resumption)
	parts = append(parts, "total "+msText(t.Total))
	return strings.Join(parts, ", ")
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func (p *printer) section(title string, took *float64) {
	if took != nil {
		p.line("\n%s (%s)", title, msText(*took))
		return
	}
	p.line("\n%s", title)
}

// msText writes milliseconds with the precision that shows them: a
// loopback answer can take a few tens of microseconds.
func msText(v float64) string {
	if v < 1 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.1f ms", v)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
