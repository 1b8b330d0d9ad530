package inspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spine-platform/spine/client"
)

// Config configures an inspection. The zero value inspects with the
// system's trust store and resolver.
type Config struct {
	// Roots are trusted besides the system's store, and tried before it,
	// so that the report names the source that anchors the chain.
	Roots []RootSource
	// NoSystemRoots leaves the system's trust store out.
	NoSystemRoots bool
	// Resolver is the DNS server asked, "host:port". Default: the first
	// nameserver of ResolvConf, after HostsFile.
	Resolver string
	// ResolvConf and HostsFile are read as the system reads them.
	// Defaults "/etc/resolv.conf" and "/etc/hosts".
	ResolvConf, HostsFile string
	// Timeout bounds the whole inspection. Default 30 s.
	Timeout time.Duration
	// Now is the time the certificates are checked at. Default time.Now.
	Now func() time.Time
	// UserAgent is sent with the HTTP request. Default "spine-inspect".
	UserAgent string
	// NoAIA turns off the download of a missing issuer's certificate from
	// the URL a certificate names (Authority Information Access), which
	// tells a missing intermediate from an unknown issuer.
	NoAIA bool
	// Spine, if set, is asked what Spine knows of the name's certificate.
	// *client.Client satisfies it.
	Spine SpineAPI
}

// SpineAPI is the part of Spine's API an inspection reads.
type SpineAPI interface {
	Certificates(ctx context.Context) ([]client.Certificate, error)
}

func (c *Config) setDefaults() {
	if c.ResolvConf == "" {
		c.ResolvConf = "/etc/resolv.conf"
	}
	if c.HostsFile == "" {
		c.HostsFile = "/etc/hosts"
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.UserAgent == "" {
		c.UserAgent = "spine-inspect"
	}
}

// dialTimeout bounds one TCP connect.
const dialTimeout = 10 * time.Second

type inspector struct {
	cfg     Config
	r       *Report
	clock   *clock
	tickets *ticketCache
	remote  string // the address that answered
	sources []trust
}

// Run inspects target: it resolves the name, connects, runs a TLS
// handshake that it records off the wire, verifies the certificate step by
// step, asks for target's path over HTTP, and resumes the session on a
// second connection. Every outcome is in the report, failures included;
// Result.ExitCode says how it ended.
func Run(ctx context.Context, target Target, cfg Config) *Report {
	cfg.setDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	clk := &clock{}
	in := &inspector{cfg: cfg, r: &Report{Target: target}, clock: clk, tickets: &ticketCache{clock: clk}}
	in.sources = in.trustSources() // before any timing: reading the system's store takes tens of ms
	start := time.Now()
	in.run(ctx)
	in.r.Timing.Total = *ms(time.Since(start))
	return in.r
}

func (in *inspector) fail(exit int, step, reason, msg string) {
	in.r.Result = Result{ExitCode: exit, Step: step, Reason: reason, Message: msg}
}

func (in *inspector) run(ctx context.Context) {
	r := in.r
	t0 := time.Now()
	res, err := in.resolve(ctx)
	r.Timing.DNS = ms(time.Since(t0))
	if err != nil {
		r.DNS.Error = err.Error()
		in.fail(ExitConnect, "dns", "dns_failed", "DNS: "+err.Error())
		return
	}

	r.TCP = &TCP{}
	raw, err := in.connect(ctx, res.addrs)
	if err != nil {
		in.fail(ExitConnect, "tcp", "connect_failed", err.Error())
		return
	}

	conf := in.tlsConfig(tls.VersionTLS12)
	echSource := ""
	if res.ech != nil {
		conf.EncryptedClientHelloConfigList = res.ech
		conf.MinVersion = tls.VersionTLS13
		echSource = "dns"
	}
	if echSource != "" {
		// A server that rejects ECH answers as its public name, whose
		// certificate crypto/tls then checks against RootCAs before it
		// trusts the retry configurations.
		conf.RootCAs = in.rootPool()
	}
	t0 = time.Now()
	hs, tc, f, err := in.handshake(ctx, raw, conf)
	took := time.Since(t0)
	hs.ECH.ConfigSource = echSource

	var rejErr *tls.ECHRejectionError
	if errors.As(err, &rejErr) {
		first := hs
		conf = conf.Clone()
		if len(rejErr.RetryConfigList) > 0 {
			conf.EncryptedClientHelloConfigList = rejErr.RetryConfigList
			echSource = "retry"
		} else {
			conf.EncryptedClientHelloConfigList = nil
			conf.MinVersion = tls.VersionTLS12
			echSource = ""
		}
		hs, tc, f, took, err = in.again(ctx, conf)
		hs.ECH.ConfigSource = echSource
		hs.ECH.Explanation = rejectionWords(first, rejErr)
	}
	r.Handshake = hs
	if hs.ECH.Explanation == "" {
		hs.ECH.Explanation = echWords(hs.ECH, r.DNS.Source)
	}
	if err != nil {
		if versionRefused(hs, err) {
			in.legacy(ctx)
			return
		}
		hs.Explanation = handshakeWords(hs, err, r.Target)
		in.fail(ExitConnect, "tls", "handshake_failed", hs.Explanation)
		return
	}
	defer tc.Close()
	r.Timing.Handshake = ms(took)
	r.Timing.ServerHello = &hs.ServerHelloMs
	cs := tc.ConnectionState()
	in.complete(hs, f, cs)
	switch {
	case hs.ECH.ConfigSource == "retry" && hs.ECH.Accepted:
		hs.ECH.Explanation += fmt.Sprintf(", and the server accepted them: an observer saw only %s", hs.ECH.OuterSNI)
	case hs.ECH.Offered && hs.ECH.ConfigSource != "retry":
		hs.ECH.Explanation = echWords(hs.ECH, r.DNS.Source)
	}

	if !in.check(ctx, cs) {
		return
	}

	t0 = time.Now()
	r.HTTP = in.get(ctx, tc)
	r.Timing.HTTP = ms(time.Since(t0))
	tc.Close()
	if r.HTTP.Error != "" {
		in.fail(ExitConnect, "http", "http_failed", "no HTTP answer on a verified connection: "+r.HTTP.Error)
		return
	}
	in.tryH3(ctx, &r.HTTP.H3) // a failure is reported, not fatal: browsers fall back to TCP

	in.resume(ctx, conf, cs.Version, f)
	if in.cfg.Spine != nil {
		r.Spine = in.spineView(ctx, cs.PeerCertificates[0])
	}
	r.Result = Result{OK: true, ExitCode: ExitOK, Message: okWords(r)}
}

// tlsConfig is the client's configuration: what a current browser offers
// (Go's defaults: TLS 1.3 and 1.2, X25519MLKEM768 first, AEAD suites, h2
// and http/1.1). The certificate is checked afterwards, step by step, so
// that a bad one is explained rather than only refused; nothing is sent on
// a connection that failed that check.
func (in *inspector) tlsConfig(minVersion uint16) *tls.Config {
	return &tls.Config{
		ServerName:         in.r.Target.ServerName,
		InsecureSkipVerify: true, // verified by verify.go before any request is sent
		NextProtos:         []string{"h2", "http/1.1"},
		MinVersion:         minVersion,
		ClientSessionCache: in.tickets,
		Time:               in.clock.now,
	}
}

// connect dials the addresses in order until one answers.
func (in *inspector) connect(ctx context.Context, addrs []string) (net.Conn, error) {
	var errs []string
	for _, a := range addrs {
		addr := hostPort(a, in.r.Target.Port)
		t0 := time.Now()
		c, err := (&net.Dialer{Timeout: dialTimeout}).DialContext(ctx, "tcp", addr)
		att := TCPAttempt{Address: addr, Ms: *ms(time.Since(t0))}
		if err != nil {
			att.Error = dialWords(err)
			in.r.TCP.Attempts = append(in.r.TCP.Attempts, att)
			errs = append(errs, addr+": "+att.Error)
			continue
		}
		in.r.TCP.Attempts = append(in.r.TCP.Attempts, att)
		in.r.TCP.Remote = c.RemoteAddr().String()
		in.r.TCP.Local = c.LocalAddr().String()
		in.r.Timing.TCP = &att.Ms
		in.remote = addr
		return c, nil
	}
	return nil, fmt.Errorf("could not connect: %s", strings.Join(errs, "; "))
}

func dialWords(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer (timed out): a firewall drops the packets, or nothing is there"
	case strings.Contains(err.Error(), "connection refused"):
		return "connection refused: the machine answered, but nothing listens on that port"
	case strings.Contains(err.Error(), "network is unreachable"), strings.Contains(err.Error(), "no route to host"):
		return "unreachable: this machine has no route to that address"
	}
	return err.Error()
}

// redial opens a new connection to the address that answered first.
func (in *inspector) redial(ctx context.Context) (net.Conn, error) {
	return (&net.Dialer{Timeout: dialTimeout}).DialContext(ctx, "tcp", in.remote)
}

// handshake runs a TLS handshake on raw and reads it off the wire.
func (in *inspector) handshake(ctx context.Context, raw net.Conn, conf *tls.Config) (*Handshake, *tls.Conn, flights, error) {
	w := newWire(raw, time.Now)
	c := tls.Client(w, conf)
	err := c.HandshakeContext(ctx)
	w.stop()
	out, got, truncated := w.bytes()
	f := readFlights(out, got)
	hs := &Handshake{CaptureIncomplete: truncated}
	if len(f.clientHellos) > 0 {
		hs.ClientHello = clientHelloReport(f.clientHellos[0])
		hs.ECH.Offered = f.clientHellos[0].ech
		hs.ECH.OuterSNI = f.clientHellos[0].serverName
	}
	if len(f.clientHellos) > 1 {
		hs.SecondClientHello = clientHelloReport(f.clientHellos[1])
	}
	for _, sh := range f.serverHellos {
		if sh.retry {
			hs.HelloRetryRequest = &HelloRetry{
				Group: groupName(sh.group),
				Explanation: fmt.Sprintf("the server wants the key exchange on %s, for which the first ClientHello carried no key share: it asked for a second ClientHello with one (one more round trip)",
					groupName(sh.group)),
			}
			continue
		}
		hs.ServerHello = serverHelloReport(sh, f.group12)
	}
	if f.alert != nil {
		hs.Alert = alertName(f.alert.description)
	}
	if sent, answered := w.timing(); !sent.IsZero() && !answered.IsZero() {
		hs.ServerHelloMs = *ms(answered.Sub(sent))
	}
	if err != nil {
		hs.Error = err.Error()
		c.Close()
		return hs, nil, f, err
	}
	return hs, c, f, nil
}

// again connects anew and runs another handshake with conf.
func (in *inspector) again(ctx context.Context, conf *tls.Config) (*Handshake, *tls.Conn, flights, time.Duration, error) {
	raw, err := in.redial(ctx)
	if err != nil {
		return &Handshake{Error: err.Error()}, nil, flights{}, 0, fmt.Errorf("connecting again: %s", dialWords(err))
	}
	t0 := time.Now()
	hs, tc, f, err := in.handshake(ctx, raw, conf)
	return hs, tc, f, time.Since(t0), err
}

func clientHelloReport(h *clientHello) *ClientHello {
	versions := h.versions
	if len(versions) == 0 {
		versions = []uint16{h.legacyVersion}
	}
	offers := h.pskIdentities
	if h.sessionTicket > 0 {
		offers++
	}
	return &ClientHello{
		Bytes:            h.size,
		SNI:              h.serverName,
		Versions:         names(versions, versionName),
		Groups:           names(h.groups, groupName),
		KeyShares:        names(h.keyShares, groupName),
		CipherSuites:     names(h.cipherSuites, suiteName),
		SignatureSchemes: names(h.signatureSchemes, schemeName),
		ALPN:             h.alpn,
		ECH:              h.ech,
		ResumptionOffers: offers,
		Extensions:       names(h.extensions, extensionName),
	}
}

func serverHelloReport(h *serverHello, group12 uint16) *ServerHello {
	g := h.group
	if h.version < tls.VersionTLS13 {
		g = group12
	}
	out := &ServerHello{
		Version:              versionName(h.version),
		CipherSuite:          suiteName(h.cipherSuite),
		ALPN:                 h.alpn,
		PreSharedKey:         h.psk,
		ExtendedMasterSecret: h.ems,
		DowngradeSentinel:    h.downgrade,
		Extensions:           names(h.extensions, extensionName),
	}
	if g != 0 {
		out.Group = groupName(g)
	}
	return out
}

// complete adds to hs what only the finished connection knows.
func (in *inspector) complete(hs *Handshake, f flights, cs tls.ConnectionState) {
	hs.ECH.Accepted = cs.ECHAccepted
	if hs.ServerHello == nil {
		// Not captured (over the limit): the connection still knows.
		hs.ServerHello = &ServerHello{Version: versionName(cs.Version), CipherSuite: suiteName(cs.CipherSuite), ALPN: cs.NegotiatedProtocol}
	}
	if hs.ServerHello.ALPN == "" {
		hs.ServerHello.ALPN = cs.NegotiatedProtocol // TLS 1.3 sends it encrypted, in EncryptedExtensions
	}
	if hs.ServerHello.Group == "" && cs.CurveID != 0 {
		hs.ServerHello.Group = groupName(uint16(cs.CurveID))
	}
	if cs.HelloRetryRequest && hs.HelloRetryRequest == nil {
		hs.HelloRetryRequest = &HelloRetry{Group: groupName(uint16(cs.CurveID)), Explanation: "crypto/tls reports a HelloRetryRequest that the capture did not hold"}
	}
	in.r.Chain = describe(cs.PeerCertificates)
	in.r.KeyExchange = keyExchange(cs, hs.ServerHello)
}

// check verifies the certificate; false: the inspection stops there.
func (in *inspector) check(ctx context.Context, cs tls.ConnectionState) bool {
	t0 := time.Now()
	name := in.r.Target.ServerName
	if name == "" {
		name = in.r.Target.Host
	}
	var fetch func(context.Context, string) ([]byte, error)
	if !in.cfg.NoAIA {
		fetch = fetchAIA
	}
	v := verify(ctx, cs.PeerCertificates, name, in.cfg.Now(), in.sources, fetch)
	in.r.Verification = v
	in.r.Timing.Verify = ms(time.Since(t0))
	if !v.OK {
		in.fail(ExitNotTrusted, "verify", v.Failure.Reason, v.Failure.Message+". No request was sent on this connection.")
		return false
	}
	return true
}

// versionRefused reports whether a handshake failed because the server
// speaks none of the versions offered.
func versionRefused(hs *Handshake, err error) bool {
	if hs.Alert == alertName(70) { // protocol_version
		return true
	}
	if hs.ServerHello != nil && (hs.ServerHello.Version == "TLS 1.0" || hs.ServerHello.Version == "TLS 1.1" || hs.ServerHello.Version == "SSL 3.0") {
		return true
	}
	return strings.Contains(err.Error(), "unsupported protocol version") || strings.Contains(err.Error(), "protocol version not supported")
}

// legacy handshakes again offering TLS 1.0 and 1.1 and the old cipher
// suites too, only to say what the server speaks; the connection is then
// insecure whatever its certificate, and no request is sent on it.
func (in *inspector) legacy(ctx context.Context) {
	r := in.r
	conf := in.tlsConfig(tls.VersionTLS10)
	conf.ClientSessionCache = nil
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		conf.CipherSuites = append(conf.CipherSuites, s.ID)
	}
	hs, tc, f, took, err := in.again(ctx, conf)
	r.Legacy = hs
	if err != nil {
		r.Handshake.Explanation = fmt.Sprintf("the server refused TLS 1.3 and 1.2; offered TLS 1.0 to 1.3 and every cipher suite, it still refused: %s", handshakeWords(hs, err, r.Target))
		in.fail(ExitConnect, "tls", "handshake_failed", r.Handshake.Explanation)
		return
	}
	defer tc.Close()
	r.Timing.Handshake = ms(took)
	r.Timing.ServerHello = &hs.ServerHelloMs
	cs := tc.ConnectionState()
	in.complete(hs, f, cs)
	hs.ECH.Explanation = "not offered: ECH needs TLS 1.3"
	v := tls.VersionName(cs.Version)
	r.Handshake.Explanation = fmt.Sprintf("the server refused TLS 1.3 and 1.2 (alert %q); a second handshake offering older versions shows it speaks %s", r.Handshake.Alert, v)
	hs.Explanation = fmt.Sprintf("%s was negotiated only because this handshake allowed it, to find out what the server speaks: browsers, curl and Go refuse %s (RFC 8996 deprecated TLS 1.0 and 1.1 in 2021)", v, v)
	in.check(ctx, cs)
	in.fail(ExitNotTrusted, "tls", "insecure_version", fmt.Sprintf("insecure: the server speaks only %s, which browsers and current clients refuse (RFC 8996): enable TLS 1.2 and 1.3 on the server. No request was sent on this connection.", v))
}

// handshakeWords explains a failed handshake.
func handshakeWords(hs *Handshake, err error, t Target) string {
	name := t.ServerName
	if name == "" {
		name = t.Host
	}
	var alertErr tls.AlertError
	alert := hs.Alert
	if alert == "" && errors.As(err, &alertErr) {
		alert = alertName(uint8(alertErr))
	}
	switch {
	case alert == alertName(112):
		return fmt.Sprintf("the server has no certificate for %s: it ended the handshake with the alert %q", name, alert)
	case alert == alertName(40):
		return fmt.Sprintf("the server ended the handshake with the alert %q: it found nothing it accepts in the ClientHello (versions, cipher suites, groups), or it serves nothing under the name %s", alert, name)
	case alert == alertName(80):
		return fmt.Sprintf("the server ended the handshake with the alert %q: it failed on its side, or (Spine does this) it serves nothing under the name %s", alert, name)
	case alert != "":
		return fmt.Sprintf("the server ended the handshake with the alert %q", alert)
	case errors.Is(err, context.DeadlineExceeded):
		return "the handshake did not finish in time: the server accepted the connection but does not answer TLS"
	case hs.ServerHello == nil && strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		return "the server does not speak TLS on this port (its first bytes are not a TLS record; plain HTTP?)"
	case strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset by peer"):
		return fmt.Sprintf("the server closed the connection during the handshake without an alert (%v)", err)
	}
	return "the handshake failed: " + err.Error()
}

func rejectionWords(first *Handshake, rej *tls.ECHRejectionError) string {
	pub := first.ECH.OuterSNI
	if len(rej.RetryConfigList) > 0 {
		return fmt.Sprintf("the server rejected the ECH configuration from DNS (stale, or not its own) and answered as %s with new configurations; this handshake offered those (the retry a browser makes)", pub)
	}
	return fmt.Sprintf("the server rejected ECH and sent no new configuration, so it does not do ECH for this name (it answered as %s): this handshake went without ECH, as a browser would", pub)
}

// rootPool is every trusted root in one pool.
func (in *inspector) rootPool() *x509.CertPool {
	pool := x509.NewCertPool()
	if !in.cfg.NoSystemRoots {
		if p, err := x509.SystemCertPool(); err == nil {
			pool = p
		}
	}
	for _, src := range in.cfg.Roots {
		for _, c := range src.Certs {
			pool.AddCert(c)
		}
	}
	return pool
}

func echWords(e ECH, dnsSource string) string {
	switch {
	case e.Accepted:
		return fmt.Sprintf("offered and accepted: the real name travelled encrypted; an observer saw only %s", e.OuterSNI)
	case e.Offered:
		return "offered, but the server did not decrypt it: it answered the outer ClientHello, as its public name " + e.OuterSNI
	case dnsSource != "dns":
		return "not offered: the name was not looked up in DNS, so there is no HTTPS record with an ECH configuration"
	}
	return "not offered: the name publishes no ECH configuration (no HTTPS record with ech=)"
}

func okWords(r *Report) string {
	hs := r.Handshake
	s := fmt.Sprintf("verified: %s with %s, certificate valid for %s and trusted from %s", hs.ServerHello.Version, r.KeyExchange.Group, r.Target.ServerName, r.Verification.RootSource)
	if r.Target.ServerName == "" {
		s = fmt.Sprintf("verified: %s with %s, certificate valid for %s and trusted from %s", hs.ServerHello.Version, r.KeyExchange.Group, r.Target.Host, r.Verification.RootSource)
	}
	return s
}

// resume connects again with the ticket the first connection received.
func (in *inspector) resume(ctx context.Context, conf *tls.Config, version uint16, f flights) {
	res := &Resumption{}
	in.r.Resumption = res
	got := in.tickets.tickets()
	res.Tickets = len(got)
	if len(got) == 0 {
		res.Explanation = "the server sent no session ticket: every new connection pays a full handshake (certificate and signature again)"
		return
	}
	t := got[len(got)-1]
	res.TicketBytes = t.size
	res.ReceivedAt = t.receivedAt.UTC()
	res.LifetimeSeconds = t.lifetime
	if version < tls.VersionTLS13 && f.ticket12 != nil {
		res.LifetimeSeconds = int64(f.ticket12.lifetimeHint)
	}
	res.Attempted = true
	t0 := time.Now()
	hs, tc, f2, took, err := in.again(ctx, conf)
	in.r.Timing.Resumption = ms(time.Since(t0))
	res.HandshakeMs = *ms(took)
	if err != nil {
		res.Error = err.Error()
		res.Explanation = "the second connection failed: " + handshakeWords(hs, err, in.r.Target)
		return
	}
	defer tc.Close()
	cs := tc.ConnectionState()
	res.Resumed = cs.DidResume
	for _, sh := range f2.serverHellos {
		if !sh.retry {
			res.PreSharedKey = sh.psk
			res.KeyShare = sh.group != 0
		}
	}
	first := 0.0
	if in.r.Timing.Handshake != nil {
		first = *in.r.Timing.Handshake
	}
	switch {
	case !res.Resumed:
		res.Explanation = "the server did not accept the ticket: it ran a full handshake again (it may not keep its ticket keys, or its machines do not share them)"
	case version >= tls.VersionTLS13 && res.KeyShare:
		res.Explanation = fmt.Sprintf("resumed: the server accepted the ticket (pre_shared_key), so it sent no certificate and made no signature, and a fresh key exchange (psk_dhe_ke) kept the new session forward secret; handshake %.1f ms, against %.1f ms for the first", res.HandshakeMs, first)
	case version >= tls.VersionTLS13:
		res.Explanation = fmt.Sprintf("resumed with the ticket alone (psk_ke, no fresh key exchange: not forward secret with respect to the ticket key); handshake %.1f ms, against %.1f ms for the first", res.HandshakeMs, first)
	default:
		res.Explanation = fmt.Sprintf("resumed: the server accepted the TLS 1.2 ticket and skipped its certificate and key exchange; the new session's keys come from the old master secret, so a leak of the ticket key exposes both; handshake %.1f ms, against %.1f ms for the first", res.HandshakeMs, first)
	}
}

// spineView asks Spine's API about the name's certificate.
func (in *inspector) spineView(ctx context.Context, leaf *x509.Certificate) *SpineView {
	name := in.r.Target.ServerName
	v := &SpineView{Hostname: name}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	certs, err := in.cfg.Spine.Certificates(ctx)
	if err != nil {
		v.Explanation = fmt.Sprintf("Spine's API did not answer: %v", err)
		return v
	}
	for _, c := range certs {
		if c.Hostname != name {
			continue
		}
		v.Service, v.Status, v.Issuer, v.Error = c.Service, c.Status, c.Issuer, c.Error
		v.NotBefore, v.NotAfter, v.RenewAfter = c.NotBefore, c.NotAfter, c.RenewAfter
		v.Explanation = fmt.Sprintf("Spine serves %s for service %s; its certificate is %s", name, c.Service, c.Status)
		if c.NotAfter != nil {
			same := c.NotAfter.Unix() == leaf.NotAfter.Unix()
			v.Served = &same
			if same {
				v.Explanation += ", and the one served is the one Spine records"
			} else {
				v.Explanation += fmt.Sprintf(", but the one served expires %s while Spine records %s: another server answered, or a renewal is being rolled out", leaf.NotAfter.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
			}
		}
		if c.RenewAfter != nil {
			v.Explanation += fmt.Sprintf("; renewal is due from %s", c.RenewAfter.UTC().Format(time.RFC3339))
		}
		return v
	}
	v.Explanation = fmt.Sprintf("%s is not a name of the project of this API token", name)
	return v
}
