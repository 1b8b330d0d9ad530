package inspect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

var discardLog = log.New(io.Discard, "", 0)

// run inspects addr (HOST:PORT) as name, trusting roots alone.
func run(t *testing.T, addr, name string, cfg Config) *Report {
	t.Helper()
	target, err := ParseTarget(addr, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoSystemRoots = true
	if cfg.Timeout == 0 {
		cfg.Timeout = 20 * time.Second
	}
	r := Run(context.Background(), target, cfg)
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("spine inspect %s --servername %s:\n%s", addr, name, text.String())
	return r
}

// TestExplainsEachBrokenServer runs inspect against deliberately broken
// Go TLS servers and checks, for each, the exit status, the step and
// reason of the failure and the plain words that explain it; and against
// a sound one, that every step passes.
func TestExplainsEachBrokenServer(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "Test CA")
	other := newPKI(t, "Stranger CA")
	good := ca.leaf(t, certOpts{names: []string{"good.test"}})
	expired := ca.leaf(t, certOpts{names: []string{"expired.test"}, notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	notYet := ca.leaf(t, certOpts{names: []string{"future.test"}, notBefore: time.Now().Add(24 * time.Hour), notAfter: time.Now().Add(48 * time.Hour)})
	right := ca.leaf(t, certOpts{names: []string{"right.test", "www.right.test"}})
	alone := ca.leaf(t, certOpts{names: []string{"alone.test"}})
	self := newCert(t, certOpts{cn: "self.test", names: []string{"self.test"}}, nil)
	stranger := other.leaf(t, certOpts{names: []string{"stranger.test"}})

	// The issuer of this leaf is published at an AIA URL, as CAs do.
	aia, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aiaSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Write(ca.inter.cert.Raw)
	}), ReadHeaderTimeout: 5 * time.Second}
	go aiaSrv.Serve(aia)
	t.Cleanup(func() { aiaSrv.Close() })
	published := ca.leaf(t, certOpts{names: []string{"published.test"}, aia: "http://" + aia.Addr().String() + "/inter.der"})

	serve := func(conf *tls.Config) string { return serveTLS(t, conf, nil) }
	chain := func(leaf *issued, more ...*issued) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{tlsCert(leaf, more...)}}
	}

	// A plain-TCP server that is not TLS.
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"))
			c.Close()
		}
	}()
	t.Cleanup(func() { plain.Close() })
	// A port where nothing listens.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	cases := []struct {
		name       string
		addr, sni  string
		cfg        Config
		exit       int
		step       string
		reason     string
		words      []string // the failure message must say each
		failedStep string   // the verification step marked failed
	}{
		{name: "sound", addr: serve(chain(good, ca.inter)), sni: "good.test", cfg: Config{Roots: ca.roots("--ca test-ca.pem")}, exit: ExitOK,
			words: []string{"verified", "TLS 1.3", "X25519MLKEM768", "trusted from --ca test-ca.pem"}},
		{name: "expired", addr: serve(chain(expired, ca.inter)), sni: "expired.test", cfg: Config{Roots: ca.roots("--ca")}, exit: ExitNotTrusted,
			step: "verify", reason: "expired", words: []string{"expired: \"expired.test\" expired on", "24 hours ago", "Renew the certificate"}, failedStep: "validity"},
		{name: "not yet valid", addr: serve(chain(notYet, ca.inter)), sni: "future.test", cfg: Config{Roots: ca.roots("--ca")}, exit: ExitNotTrusted,
			step: "verify", reason: "not_yet_valid", words: []string{"not yet valid", "clock"}, failedStep: "validity"},
		{name: "wrong name", addr: serve(chain(right, ca.inter)), sni: "wrong.test", cfg: Config{Roots: ca.roots("--ca")}, exit: ExitNotTrusted,
			step: "verify", reason: "wrong_name", words: []string{"wrong name", "the certificate is for right.test, www.right.test, not for wrong.test"}, failedStep: "hostname"},
		{name: "missing intermediate", addr: serve(chain(alone)), sni: "alone.test", cfg: Config{Roots: ca.roots("--ca"), NoAIA: true}, exit: ExitNotTrusted,
			step: "verify", reason: "missing_intermediate", words: []string{"missing intermediate", "sent only its own certificate", `"Test CA Intermediate"`, "must send that intermediate"}, failedStep: "root"},
		{name: "missing intermediate published at its AIA URL", addr: serve(chain(published)), sni: "published.test", cfg: Config{Roots: ca.roots("--ca test-ca.pem")}, exit: ExitNotTrusted,
			step: "verify", reason: "missing_intermediate", words: []string{"missing intermediate", "published at http://" + aia.Addr().String(), `chains up to root "Test CA Root", trusted from --ca test-ca.pem`}, failedStep: "root"},
		{name: "self-signed", addr: serve(chain(self)), sni: "self.test", cfg: Config{Roots: ca.roots("--ca")}, exit: ExitNotTrusted,
			step: "verify", reason: "self_signed", words: []string{"self-signed", `"self.test" signed itself`}, failedStep: "root"},
		{name: "unknown issuer", addr: serve(chain(stranger, other.inter)), sni: "stranger.test", cfg: Config{Roots: ca.roots("--ca"), NoAIA: true}, exit: ExitNotTrusted,
			step: "verify", reason: "unknown_issuer", words: []string{"unknown issuer", `"Stranger CA Intermediate"`, `"Stranger CA Root"`, "not in --ca"}, failedStep: "root"},
		{name: "unknown root sent along", addr: serve(chain(stranger, other.inter, other.root)), sni: "stranger.test", cfg: Config{Roots: ca.roots("--ca")}, exit: ExitNotTrusted,
			step: "verify", reason: "unknown_issuer", words: []string{"unknown issuer", `ends at root "Stranger CA Root"`}, failedStep: "root"},
		{name: "TLS 1.0 only", addr: serve(&tls.Config{Certificates: []tls.Certificate{tlsCert(good, ca.inter)}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}),
			sni: "good.test", cfg: Config{Roots: ca.roots("--ca")}, exit: ExitNotTrusted,
			step: "tls", reason: "insecure_version", words: []string{"insecure", "speaks only TLS 1.0", "enable TLS 1.2 and 1.3"}},
		{name: "not TLS", addr: plain.Addr().String(), sni: "plain.test", exit: ExitConnect, step: "tls", reason: "handshake_failed", words: []string{"does not speak TLS"}},
		{name: "nothing listens", addr: closedAddr, sni: "closed.test", exit: ExitConnect, step: "tcp", reason: "connect_failed", words: []string{"connection refused", "nothing listens"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, tc.addr, tc.sni, tc.cfg)
			res := r.Result
			if res.ExitCode != tc.exit || res.Step != tc.step || res.Reason != tc.reason {
				t.Errorf("result %d %q %q, want exit %d, step %q, reason %q: %s", res.ExitCode, res.Step, res.Reason, tc.exit, tc.step, tc.reason, res.Message)
			}
			if res.OK != (tc.exit == ExitOK) {
				t.Errorf("result OK %v with exit status %d", res.OK, res.ExitCode)
			}
			for _, w := range tc.words {
				if !strings.Contains(res.Message, w) {
					t.Errorf("the explanation %q does not say %q", res.Message, w)
				}
			}
			if tc.failedStep != "" {
				v := r.Verification
				if v == nil || v.Failure == nil || v.Failure.Step != tc.failedStep {
					t.Fatalf("verification %+v, want a failure at %s", v, tc.failedStep)
				}
				for _, s := range v.Steps {
					if !s.OK && s.Step != tc.failedStep {
						t.Errorf("step %s failed too: %s", s.Step, s.Detail)
					}
				}
				if r.HTTP != nil || r.Resumption != nil {
					t.Errorf("a request was sent on a connection that failed verification: %+v %+v", r.HTTP, r.Resumption)
				}
			}
		})
	}
}

// TestSoundServerShowsEveryStep checks the values of a sound TLS 1.3
// connection as the report gives them: the ClientHello as sent, the
// ServerHello, the chain, each verification step, the key exchange, the
// HTTP answer and its headers.
func TestSoundServerShowsEveryStep(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "Test CA")
	leaf := ca.leaf(t, certOpts{names: []string{"good.test"}})
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(leaf, ca.inter)}},
		map[string]string{"Strict-Transport-Security": "max-age=63072000; includeSubDomains", "Alt-Svc": `h3=":443"; ma=3600, h2=":443"`})
	r := run(t, addr, "good.test", Config{Roots: ca.roots("--ca ca.pem")})
	if !r.Result.OK {
		t.Fatalf("result %+v", r.Result)
	}
	if r.DNS.Source != "literal" || !strings.Contains(r.DNS.Explanation, "no DNS query was needed") {
		t.Errorf("DNS %+v", r.DNS)
	}
	hs := r.Handshake
	ch := hs.ClientHello
	if ch.SNI != "good.test" || ch.Groups[0] != "X25519MLKEM768" || ch.KeyShares[0] != "X25519MLKEM768" ||
		strings.Join(ch.Versions, ",") != "TLS 1.3,TLS 1.2" || strings.Join(ch.ALPN, ",") != "h2,http/1.1" || ch.ECH {
		t.Errorf("ClientHello %+v", ch)
	}
	sh := hs.ServerHello
	if sh.Version != "TLS 1.3" || sh.Group != "X25519MLKEM768" || sh.CipherSuite == "" || sh.ALPN != "h2" || hs.HelloRetryRequest != nil {
		t.Errorf("ServerHello %+v, HRR %+v", sh, hs.HelloRetryRequest)
	}
	if len(r.Chain) != 2 || r.Chain[0].Names[0] != "good.test" || r.Chain[0].Key != "ECDSA P-256" || !r.Chain[1].CA || r.Chain[1].Subject != "CN=Test CA Intermediate" {
		t.Errorf("chain %+v", r.Chain)
	}
	var steps []string
	for _, s := range r.Verification.Steps {
		steps = append(steps, s.Step)
		if !s.OK {
			t.Errorf("step %s failed: %s", s.Step, s.Detail)
		}
	}
	if strings.Join(steps, ",") != "signature,signature,root,hostname,validity" {
		t.Errorf("steps %v", steps)
	}
	if r.Verification.Root != "CN=Test CA Root" || r.Verification.RootSource != "--ca ca.pem" {
		t.Errorf("root %q from %q", r.Verification.Root, r.Verification.RootSource)
	}
	k := r.KeyExchange
	if !k.Ephemeral || !k.ForwardSecret || !k.PostQuantum || k.Group != "X25519MLKEM768" || !strings.Contains(k.Explanation, "forward secrecy") {
		t.Errorf("key exchange %+v", k)
	}
	h := r.HTTP
	if h.Protocol != "h2" || h.Status != 200 || h.HSTS != "max-age=63072000; includeSubDomains" || !strings.Contains(h.HSTSWhat, "730 days, and for every name under it") {
		t.Errorf("HTTP %+v", h)
	}
	// Nothing listens on UDP 443 here: tried, and said so.
	if !h.H3.Advertised || h.H3.Authority != ":443" || h.H3.MaxAgeSeconds != 3600 || !h.H3.Tried || h.H3.Works ||
		h.H3.Address != "127.0.0.1:443" || !strings.Contains(h.H3.Error, "no answer over UDP") {
		t.Errorf("h3 %+v", h.H3)
	}
	for name, v := range map[string]*float64{"tcp": r.Timing.TCP, "tls": r.Timing.Handshake, "verify": r.Timing.Verify, "http": r.Timing.HTTP, "resumption": r.Timing.Resumption} {
		if v == nil {
			t.Errorf("no time for %s", name)
		}
	}
}

// TestResumption checks the ticket each version's server sends, its
// lifetime as the server set it, and the second connection resuming.
func TestResumption(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "Test CA")
	leaf := ca.leaf(t, certOpts{names: []string{"resume.test"}})
	for _, tc := range []struct {
		name     string
		max      uint16
		lifetime int64
		words    string
	}{
		// crypto/tls's server gives TLS 1.3 tickets 7 days.
		{"TLS 1.3", tls.VersionTLS13, 7 * 24 * 3600, "psk_dhe_ke"},
		// and TLS 1.2 tickets no lifetime hint.
		{"TLS 1.2", tls.VersionTLS12, 0, "TLS 1.2 ticket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(leaf, ca.inter)}, MaxVersion: tc.max}, nil)
			r := run(t, addr, "resume.test", Config{Roots: ca.roots("--ca")})
			res := r.Resumption
			if res == nil || res.Tickets < 1 || res.TicketBytes == 0 || res.LifetimeSeconds != tc.lifetime {
				t.Fatalf("resumption %+v, want a ticket with lifetime %d s", res, tc.lifetime)
			}
			if !res.Attempted || !res.Resumed || !strings.Contains(res.Explanation, tc.words) {
				t.Errorf("second connection: %+v", res)
			}
			if tc.max == tls.VersionTLS13 && (!res.PreSharedKey || !res.KeyShare) {
				t.Errorf("TLS 1.3 resumption without pre_shared_key and key_share on the wire: %+v", res)
			}
		})
	}
	t.Run("no tickets", func(t *testing.T) {
		t.Parallel()
		addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(leaf, ca.inter)}, SessionTicketsDisabled: true}, nil)
		r := run(t, addr, "resume.test", Config{Roots: ca.roots("--ca")})
		if res := r.Resumption; res == nil || res.Tickets != 0 || res.Attempted || !strings.Contains(res.Explanation, "no session ticket") {
			t.Errorf("resumption %+v", res)
		}
	})
}

// TestHelloRetryRequest: a server that wants P-256, for which the first
// ClientHello has no key share, answers with a HelloRetryRequest, which
// the report reads off the wire.
func TestHelloRetryRequest(t *testing.T) {
	t.Parallel()
	ca := newPKI(t, "Test CA")
	leaf := ca.leaf(t, certOpts{names: []string{"hrr.test"}})
	addr := serveTLS(t, &tls.Config{Certificates: []tls.Certificate{tlsCert(leaf, ca.inter)}, CurvePreferences: []tls.CurveID{tls.CurveP256}}, nil)
	r := run(t, addr, "hrr.test", Config{Roots: ca.roots("--ca")})
	hs := r.Handshake
	if hs.HelloRetryRequest == nil || hs.HelloRetryRequest.Group != "P-256" {
		t.Fatalf("HelloRetryRequest %+v", hs.HelloRetryRequest)
	}
	if hs.SecondClientHello == nil || strings.Join(hs.SecondClientHello.KeyShares, ",") != "P-256" {
		t.Errorf("second ClientHello %+v", hs.SecondClientHello)
	}
	if hs.ServerHello.Group != "P-256" || r.KeyExchange.PostQuantum || !r.Result.OK {
		t.Errorf("ServerHello %+v, key exchange %+v, result %+v", hs.ServerHello, r.KeyExchange, r.Result)
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in, sni string
		want    Target
		err     string
	}{
		{in: "example.com", want: Target{Host: "example.com", Port: 443, ServerName: "example.com", Path: "/"}},
		{in: "https://Example.COM:8443/a/b?c=d", want: Target{Host: "example.com", Port: 8443, ServerName: "example.com", Path: "/a/b?c=d"}},
		{in: "127.0.0.1:8443", sni: "hello.localhost", want: Target{Host: "127.0.0.1", Port: 8443, ServerName: "hello.localhost", Path: "/"}},
		{in: "[::1]:8443", want: Target{Host: "::1", Port: 8443, ServerName: "", Path: "/"}},
		{in: "::1", want: Target{Host: "::1", Port: 443, Path: "/"}},
		{in: "", err: "no target"},
		{in: "http://example.com", err: "must start with https://"},
		{in: "https://user:pw@example.com", err: "holds credentials"},
		{in: "example.com:08443", want: Target{Host: "example.com", Port: 8443, ServerName: "example.com", Path: "/"}},
		{in: "example.com:+443", err: "is not a number from 1 to 65535"},
		{in: "example.com:0", err: "port \"0\" is not a number from 1 to 65535"},
		{in: "example.com:99999", err: "from 1 to 65535"},
		{in: "example.com:https", err: "from 1 to 65535"},
		{in: "example.com:", err: "is empty"},
		{in: "bad..name", err: "empty label"},
		{in: "example.com/path", err: "neither a URL nor HOST[:PORT]"},
		{in: "example.com", sni: "*.example.com", err: "--servername"},
	} {
		got, err := ParseTarget(tc.in, tc.sni)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTarget(%q, %q) = %v, want an error saying %q", tc.in, tc.sni, err, tc.err)
			}
			continue
		}
		tc.want.Input = tc.in
		if err != nil || got != tc.want {
			t.Errorf("ParseTarget(%q, %q) = %+v, %v; want %+v", tc.in, tc.sni, got, err, tc.want)
		}
	}
}

// The name step says which of the certificate's names matched: a wildcard
// covers one label, so a.b.example.com is not its.
func TestHostnameStepNamesTheMatch(t *testing.T) {
	leaf := &x509.Certificate{DNSNames: []string{"other.test", "*.example.com", "example.com"}}
	for name, want := range map[string]string{
		"api.example.com": "api.example.com matches the certificate's name *.example.com",
		"example.com":     "example.com matches the certificate's name example.com",
		"a.b.example.com": "wrong name: the certificate is for other.test, *.example.com, example.com, not for a.b.example.com",
	} {
		vf := &verifier{chain: []*x509.Certificate{leaf}, name: name, v: &Verification{}}
		vf.hostnameStep()
		if got := vf.v.Steps[0].Detail; !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
}
