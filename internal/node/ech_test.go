package node

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/poll"
)

// echGet does an ECH handshake with the node for name and a GET on it,
// verifying certificates against the node's CA root.
func echGet(n *Node, name string, list []byte) (tls.ConnectionState, string, error) {
	roots := x509.NewCertPool()
	roots.AddCert(n.CA().Root())
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", n.HTTPSAddr(), &tls.Config{
		ServerName: name, RootCAs: roots, NextProtos: []string{"http/1.1"}, MinVersion: tls.VersionTLS13,
		EncryptedClientHelloConfigList: list,
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

// spine up's node does ECH with the public name ech.localhost: a client
// with the published configuration is accepted and reaches the service
// its inner SNI names; one with a stale configuration is answered as
// ech.localhost, with a certificate of that name from the internal CA, and
// retries with the configuration it got.
func TestECHOnTheNode(t *testing.T) {
	n := startNode(t, t.TempDir(), "")
	var list []byte
	poll.Until(t, "ECH keys", waitTimeout, func() error {
		var name string
		if name, list = n.ECH(); name != "ech.localhost" || list == nil {
			return fmt.Errorf("public name %q, %d bytes of configuration", name, len(list))
		}
		return nil
	})
	poll.Until(t, "the demo service over ECH", waitTimeout, func() error {
		cs, body, err := echGet(n, "hello.localhost", list)
		if err != nil {
			return err
		}
		if !cs.ECHAccepted || !strings.Contains(body, "Hello from Spine") {
			return fmt.Errorf("accepted %v, body %q", cs.ECHAccepted, body)
		}
		return nil
	})
	// A stale configuration: the same public name, a key the node never had.
	stale := append([]byte(nil), list...)
	stale[len(stale)-40] ^= 0xff // inside the X25519 public key (before 10 bytes of suites and the name)
	poll.Until(t, "a retry after a stale configuration", waitTimeout, func() error {
		_, _, err := echGet(n, "hello.localhost", stale)
		var rej *tls.ECHRejectionError
		if !errors.As(err, &rej) {
			return fmt.Errorf("stale configuration: %v, want an ECHRejectionError", err) // the public name's certificate may still be on its way
		}
		cs, body, err := echGet(n, "hello.localhost", rej.RetryConfigList)
		if err != nil || !cs.ECHAccepted || !strings.Contains(body, "Hello from Spine") {
			return fmt.Errorf("retry: %v, accepted %v, %q", err, cs.ECHAccepted, body)
		}
		return nil
	})
}
