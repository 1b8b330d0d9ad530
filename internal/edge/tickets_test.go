package edge

import (
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// A session established on one edge resumes on another that shares its
// ticket keys, also after the keys rotate (the old key still decrypts); an
// edge with other keys does a full handshake.
func TestSessionTicketKeysShared(t *testing.T) {
	up := namedUpstream(t, "up")
	route := Route{Host: "a.test", Project: "p", Service: "s", Upstreams: []string{up.URL}}
	first := startEdge(t, Config{}, route)
	same := startEdge(t, Config{GetCertificate: first.pki.GetCertificate}, route)
	rotated := startEdge(t, Config{GetCertificate: first.pki.GetCertificate}, route)
	other := startEdge(t, Config{GetCertificate: first.pki.GetCertificate}, route)

	oldKey, newKey, otherKey := randomKey(t), randomKey(t), randomKey(t)
	for _, e := range []struct {
		h    *harness
		keys [][32]byte
	}{
		{first, [][32]byte{oldKey}},
		{same, [][32]byte{oldKey}},
		{rotated, [][32]byte{newKey, oldKey}},
		{other, [][32]byte{otherKey}},
	} {
		if err := e.h.s.SetSessionTicketKeys(e.keys); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.s.SetSessionTicketKeys(nil); err == nil {
		t.Error("SetSessionTicketKeys(nil) succeeded")
	}

	for _, tc := range []struct {
		name   string
		to     *harness
		resume bool
	}{
		{"same keys", same, true},
		{"rotated keys", rotated, true},
		{"other keys", other, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cache := tls.NewLRUClientSessionCache(8)
			if resumed := get(t, first, first, cache); resumed {
				t.Fatal("the first connection resumed a session")
			}
			if resumed := get(t, tc.to, first, cache); resumed != tc.resume {
				t.Errorf("resumed on the second edge = %v, want %v", resumed, tc.resume)
			}
		})
	}
}

func randomKey(t *testing.T) [32]byte {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return k
}

// get makes one HTTPS request to a.test on h over a new connection, trusting
// pki's CA, and reports whether its handshake resumed a session from cache.
func get(t *testing.T, h, pki *harness, cache tls.ClientSessionCache) bool {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", h.tlsAddr, &tls.Config{
		ServerName:         "a.test",
		RootCAs:            pki.pki.pool,
		NextProtos:         []string{"http/1.1"},
		ClientSessionCache: cache,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Reading the answer also reads the session ticket that follows a TLS 1.3 handshake.
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatal(err)
	}
	return conn.ConnectionState().DidResume
}
