package edge

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// newECHKey makes an ECH key for publicName and the ECHConfigList that
// publishes it.
func newECHKey(t testing.TB, id uint8, publicName string) (tls.EncryptedClientHelloKey, []byte) {
	t.Helper()
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddUint16(0xfe0d)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint8(id)
		b.AddUint16(0x0020) // DHKEM(X25519, HKDF-SHA256)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(priv.PublicKey().Bytes()) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16(0x0001) // HKDF-SHA256
			b.AddUint16(0x0001) // AES-128-GCM
		})
		b.AddUint8(0)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(publicName)) })
		b.AddUint16(0)
	})
	config := b.BytesOrPanic()
	var l cryptobyte.Builder
	l.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(config) })
	return tls.EncryptedClientHelloKey{Config: config, PrivateKey: priv.Bytes(), SendAsRetry: true}, l.BytesOrPanic()
}

// helloTap is a TCP proxy in front of the edge that keeps the first TLS
// record each client sends: its ClientHello, as an observer on the
// network sees it.
type helloTap struct {
	addr   string
	mu     sync.Mutex
	hellos [][]byte
}

func newHelloTap(t testing.TB, target string) *helloTap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	tap := &helloTap{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go tap.relay(c, target)
		}
	}()
	return tap
}

func (tap *helloTap) relay(c net.Conn, target string) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	br := bufio.NewReader(c)
	hdr, err := br.Peek(5)
	if err != nil {
		return
	}
	rec, err := br.Peek(5 + (int(hdr[3])<<8 | int(hdr[4])))
	if err != nil {
		return
	}
	tap.mu.Lock()
	tap.hellos = append(tap.hellos, bytes.Clone(rec))
	tap.mu.Unlock()
	go io.Copy(c, up)
	io.Copy(up, br)
}

// lastOuterSNI returns the SNI of the last ClientHello seen on the wire,
// as a server holding no ECH key reads it, and the record's bytes.
func (tap *helloTap) lastOuterSNI(t testing.TB) (string, []byte) {
	tap.mu.Lock()
	rec := tap.hellos[len(tap.hellos)-1]
	tap.mu.Unlock()
	var sni string
	stop := errors.New("read")
	srv := tls.Server(&replayConn{r: bytes.NewReader(rec)}, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sni = h.ServerName
		return nil, stop
	}})
	if err := srv.Handshake(); !errors.Is(err, stop) {
		t.Fatalf("reading the captured ClientHello: %v", err)
	}
	return sni, rec
}

// replayConn is a net.Conn that reads recorded bytes and drops writes.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *replayConn) Close() error                     { return nil }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }
func (c *replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }

// echGet does an ECH handshake for name through the tap with list and a
// GET on it; it returns the connection state and the answer's body.
func echGet(t testing.TB, h *harness, tap *helloTap, name string, list []byte) (tls.ConnectionState, string, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", tap.addr, &tls.Config{
		ServerName: name, RootCAs: h.pki.pool, NextProtos: []string{"http/1.1"},
		MinVersion: tls.VersionTLS13, EncryptedClientHelloConfigList: list,
	})
	if err != nil {
		return tls.ConnectionState{}, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+name+"\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return c.ConnectionState(), "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return c.ConnectionState(), string(b), nil
}

func TestECH(t *testing.T) {
	a, b := namedUpstream(t, "upstream-a"), namedUpstream(t, "upstream-b")
	h := startEdge(t, Config{},
		Route{Host: "a.test", Service: "a", Upstreams: []string{a.URL}},
		Route{Host: "b.test", Service: "b", Upstreams: []string{b.URL}},
	)
	tap := newHelloTap(t, h.tlsAddr)
	k1, list1 := newECHKey(t, 1, "ech.test")
	if err := h.s.SetECHKeys([]tls.EncryptedClientHelloKey{k1}, "ech.test"); err != nil {
		t.Fatal(err)
	}
	accepted := func(t *testing.T, name string, list []byte) {
		t.Helper()
		cs, body, err := echGet(t, h, tap, name, list)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !cs.ECHAccepted {
			t.Errorf("%s: ECH not accepted", name)
		}
		if want := "upstream-" + name[:1]; body != want || cs.PeerCertificates[0].Subject.CommonName != name {
			t.Errorf("%s: answered %q with the certificate of %s, want %q", name, body, cs.PeerCertificates[0].Subject.CommonName, want)
		}
		outer, rec := tap.lastOuterSNI(t)
		if outer != "ech.test" {
			t.Errorf("%s: outer SNI on the wire %q, want the public name", name, outer)
		}
		if bytes.Contains(rec, []byte(name)) {
			t.Errorf("%s: the inner name is readable in the ClientHello on the wire", name)
		}
	}

	t.Run("accepted, inner SNI routes", func(t *testing.T) {
		accepted(t, "a.test", list1)
		accepted(t, "b.test", list1)
	})

	t.Run("stale configuration retried", func(t *testing.T) {
		_, stale := newECHKey(t, 9, "ech.test")
		_, _, err := echGet(t, h, tap, "a.test", stale)
		var rej *tls.ECHRejectionError
		if !errors.As(err, &rej) {
			t.Fatalf("stale configuration: %v, want an ECHRejectionError", err)
		}
		if !bytes.Equal(rej.RetryConfigList, list1) {
			t.Fatalf("retry configurations %x, want the current one", rej.RetryConfigList)
		}
		if outer, _ := tap.lastOuterSNI(t); outer != "ech.test" {
			t.Errorf("outer SNI %q", outer)
		}
		accepted(t, "a.test", rej.RetryConfigList)
	})

	t.Run("rotation keeps clients working", func(t *testing.T) {
		k2, list2 := newECHKey(t, 2, "ech.test")
		k1.SendAsRetry = false
		if err := h.s.SetECHKeys([]tls.EncryptedClientHelloKey{k2, k1}, "ech.test"); err != nil {
			t.Fatal(err)
		}
		accepted(t, "a.test", list1) // the replaced key, in its grace period
		accepted(t, "b.test", list2)
		// After the grace period: the old configuration is retried with the new one.
		if err := h.s.SetECHKeys([]tls.EncryptedClientHelloKey{k2}, "ech.test"); err != nil {
			t.Fatal(err)
		}
		_, _, err := echGet(t, h, tap, "a.test", list1)
		var rej *tls.ECHRejectionError
		if !errors.As(err, &rej) || !bytes.Equal(rej.RetryConfigList, list2) {
			t.Fatalf("old configuration after the grace period: %v", err)
		}
		accepted(t, "a.test", rej.RetryConfigList)
	})

	t.Run("public name serves nothing", func(t *testing.T) {
		c, err := h.dialTLS("ech.test", "http/1.1")
		if err != nil {
			t.Fatalf("handshake on the public name: %v", err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: ech.test\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d on the public name, want 404", resp.StatusCode)
		}
	})
}
