package inspect

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

var errStop = errors.New("stop after the ClientHello")

// clientHelloOf returns the body of the first ClientHello crypto/tls's
// client sends with conf.
func clientHelloOf(tb testing.TB, conf *tls.Config) []byte {
	tb.Helper()
	c, s := net.Pipe()
	defer c.Close()
	defer s.Close()
	go tls.Client(c, conf).Handshake()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(s, hdr); err != nil {
		tb.Fatal(err)
	}
	payload := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(s, payload); err != nil {
		tb.Fatal(err)
	}
	msgs := messages(payload)
	if len(msgs) == 0 || msgs[0].typ != msgClientHello {
		tb.Fatalf("the first record holds no ClientHello")
	}
	return msgs[0].body
}

// serverView feeds a ClientHello body to crypto/tls's server and returns
// what it parsed, or nil if it refused the message.
func serverView(body []byte) *tls.ClientHelloInfo {
	var msg cryptobyte.Builder
	msg.AddUint8(msgClientHello)
	msg.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(body) })
	raw := msg.BytesOrPanic()
	var rec []byte
	for len(raw) > 0 {
		n := min(len(raw), 1<<14)
		rec = append(rec, recordHandshake, 3, 1, byte(n>>8), byte(n))
		rec = append(rec, raw[:n]...)
		raw = raw[n:]
	}
	c, s := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	c.SetDeadline(deadline)
	s.SetDeadline(deadline)
	var got *tls.ClientHelloInfo
	done := make(chan struct{})
	srv := tls.Server(s, &tls.Config{GetConfigForClient: func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		got = chi
		return nil, errStop
	}})
	go func() {
		srv.Handshake()
		s.Close()
		close(done)
	}()
	go io.Copy(io.Discard, c)
	c.Write(rec)
	<-done
	c.Close()
	return got
}

// FuzzClientHello checks parseClientHello against crypto/tls's server:
// every ClientHello that server accepts, this parser accepts too, and
// reads the same name, versions, groups, cipher suites, signature
// schemes, ALPN protocols and extensions. The seeds are ClientHellos of
// crypto/tls's client in several configurations.
func FuzzClientHello(f *testing.F) {
	for _, conf := range []*tls.Config{
		{ServerName: "example.test"},
		{ServerName: "example.test", NextProtos: []string{"h2", "http/1.1"}},
		{InsecureSkipVerify: true},
		{ServerName: "legacy.test", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}},
		{ServerName: "p256.test", CurvePreferences: []tls.CurveID{tls.CurveP256}, MinVersion: tls.VersionTLS13},
	} {
		f.Add(clientHelloOf(f, conf))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ours, err := parseClientHello(body)
		chi := serverView(body)
		if chi == nil {
			return // crypto/tls refused it; this parser may be more lenient
		}
		if err != nil {
			t.Fatalf("crypto/tls accepts a ClientHello that parseClientHello refuses: %v", err)
		}
		if ours.serverName != chi.ServerName {
			t.Errorf("server name %q, crypto/tls %q", ours.serverName, chi.ServerName)
		}
		if len(ours.versions) > 0 && !slices.Equal(ours.versions, chi.SupportedVersions) {
			t.Errorf("versions %v, crypto/tls %v", ours.versions, chi.SupportedVersions)
		}
		curves := make([]uint16, 0, len(chi.SupportedCurves))
		for _, c := range chi.SupportedCurves {
			curves = append(curves, uint16(c))
		}
		if !slices.Equal(ours.groups, curves) && len(ours.groups)+len(curves) > 0 {
			t.Errorf("groups %v, crypto/tls %v", ours.groups, curves)
		}
		if !slices.Equal(ours.cipherSuites, chi.CipherSuites) && len(ours.cipherSuites)+len(chi.CipherSuites) > 0 {
			t.Errorf("cipher suites %v, crypto/tls %v", ours.cipherSuites, chi.CipherSuites)
		}
		schemes := make([]uint16, 0, len(chi.SignatureSchemes))
		for _, s := range chi.SignatureSchemes {
			schemes = append(schemes, uint16(s))
		}
		if !slices.Equal(ours.signatureSchemes, schemes) && len(ours.signatureSchemes)+len(schemes) > 0 {
			t.Errorf("signature schemes %v, crypto/tls %v", ours.signatureSchemes, schemes)
		}
		if !slices.Equal(ours.alpn, chi.SupportedProtos) && len(ours.alpn)+len(chi.SupportedProtos) > 0 {
			t.Errorf("ALPN %q, crypto/tls %q", ours.alpn, chi.SupportedProtos)
		}
		if !slices.Equal(ours.extensions, chi.Extensions) && len(ours.extensions)+len(chi.Extensions) > 0 {
			t.Errorf("extensions %v, crypto/tls %v", ours.extensions, chi.Extensions)
		}
	})
}
