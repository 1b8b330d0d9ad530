package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/poll"
)

// echGet does an ECH handshake with the node for name and a GET on it,
// verifying certificates against the node's CA root.
func echGet(n *Node, name string, list []byte) (tls.ConnectionState, string, error) {
	roots := x509.NewCertPool()
	roots.AddCert(n.CA().Root())
	return echGetWith(n, roots, name, list)
}

// echGetWith is echGet, verifying certificates against roots.
func echGetWith(n *Node, roots *x509.CertPool, name string, list []byte) (tls.ConnectionState, string, error) {
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

// A node restarted from its snapshot with the store away does ECH with the
// keys it had before the restart (a client holding the configuration
// published then is accepted, and the same configuration is published),
// and serves HTTP/3 with the fleet's QUIC keys, not keys of its own.
func TestSnapshotKeepsECHAndQUICKeys(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	var list []byte
	poll.Until(t, "ECH keys", waitTimeout, func() error {
		if _, list = n.ECH(); list == nil {
			return errors.New("no ECH configuration yet")
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
	roots := x509.NewCertPool()
	roots.AddCert(n.CA().Root())
	if n.fleet.QUIC == nil {
		t.Fatal("the node has no fleet QUIC keys")
	}
	quicKeys := *n.fleet.QUIC
	if err := fleet.NewSnapshotWriter(dir, n.fleet.Source, n.log).Write(); err != nil {
		t.Fatal(err)
	}
	raw := snapshotBytes(t, dir)
	for what, b := range map[string][]byte{"the QUIC stateless-reset key": quicKeys.StatelessReset[:], "the QUIC token key": quicKeys.Token[:]} {
		if bytes.Contains(raw, b) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(b))) {
			t.Errorf("the snapshot file holds %s in the clear", what)
		}
	}
	if !bytes.Contains(raw, []byte(`"sealed_ech_keys"`)) || !bytes.Contains(raw, []byte(`"sealed_quic_keys"`)) || bytes.Contains(raw, []byte("private_key")) {
		t.Error("the snapshot's ECH and QUIC keys are not sealed")
	}
	n.Close(context.Background())

	m := startFromSnapshot(t, dir, io.Discard, warmUpHook{})
	if !m.fleet.Static() {
		t.Fatal("the node did not start from its snapshot")
	}
	if l := m.fleet.Loaded; l.Services != nil || l.Certificates != nil {
		t.Errorf("the node holds the snapshot's %d services and %d certificates besides serving them", len(l.Services), len(l.Certificates))
	}
	if name, got := m.ECH(); name != "ech.localhost" || !bytes.Equal(got, list) {
		t.Errorf("published ECH: %q, %d bytes; want the configuration from before the restart", name, len(got))
	}
	if m.fleet.QUIC == nil || *m.fleet.QUIC != quicKeys {
		t.Error("the node started from its snapshot does not use the fleet's QUIC keys")
	}
	// The demo's upstream went with the first node: any answer will do,
	// the handshake is what counts.
	cs, _, err := echGetWith(m, roots, "hello.localhost", list)
	if err != nil {
		t.Fatalf("ECH with the configuration from before the restart: %v", err)
	}
	if !cs.ECHAccepted {
		t.Error("ECH not accepted by the node started from its snapshot")
	}
}
