package fleet

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

func testKeyring(t testing.TB) (*secrets.Keyring, []byte) {
	t.Helper()
	content, err := secrets.Generate()
	if err != nil {
		t.Fatal(err)
	}
	k, raw, err := secrets.Parse(content)
	if err != nil {
		t.Fatal(err)
	}
	return k, raw[0]
}

// With a keyring the snapshot file holds no private key, in PEM or raw,
// nor the ticket, ECH or QUIC keys; it reads back with the keyring, after a rotation
// with the ring of both keys, and never with another key.
func TestSnapshotSealed(t *testing.T) {
	dir := t.TempDir()
	cert := selfSigned(t, "a.d.test")
	ticket := [32]byte{}
	copy(ticket[:], "ticket-key-0123456789abcdef-0123")
	k, oldRaw := testKeyring(t)
	ech := []byte(`{"keys":[{"private_key":"ech-private-key-0123456789"}]}`)
	quic := &QUICKeys{StatelessReset: [32]byte{0: 7, 31: 7}, Token: [32]byte{0: 9, 31: 9}}
	copy(quic.StatelessReset[1:], "stateless-reset-key-0123456789")
	copy(quic.Token[1:], "quic-token-key-0123456789abcdef")
	src := &SnapshotSource{
		Services:    []store.Service{{ID: "a", ProjectID: "p", Name: "a", Domain: "d.test", Hostnames: []string{"a.d.test"}, Upstreams: []string{"http://127.0.0.1:9"}}},
		Sum:         [32]byte{1},
		Certificate: func(string) *tls.Certificate { return cert },
		TicketKeys:  [][32]byte{ticket},
		ECHKeys:     ech,
		QUICKeys:    quic,
		Keyring:     k,
	}
	w := NewSnapshotWriter(dir, func() *SnapshotSource { return src }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	file := snapshotBytes(t, dir)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	scalar := cert.PrivateKey.(*ecdsa.PrivateKey).D.Bytes()
	for what, b := range map[string][]byte{"a PEM key block": []byte("PRIVATE KEY"), "the key's DER": pkcs8, "the key's scalar": scalar, "the ticket key": ticket[:],
		"the ECH key": []byte("ech-private-key"), "the QUIC reset key": quic.StatelessReset[1:31], "the QUIC token key": quic.Token[1:31]} {
		if bytes.Contains(file, b) {
			t.Errorf("the snapshot file holds %s", what)
		}
	}
	read := func(k *secrets.Keyring) (*Snapshot, error) {
		t.Helper()
		return ReadSnapshot(dir, k)
	}
	s, err := read(k)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CertificatesByName(slog.New(slog.NewTextHandler(io.Discard, nil)))["a.d.test"]; got == nil ||
		!got.PrivateKey.(*ecdsa.PrivateKey).Equal(cert.PrivateKey) {
		t.Errorf("certificate read back: %v", got)
	}
	if keys := s.Keys(); len(keys) != 1 || keys[0] != ticket {
		t.Errorf("ticket keys read back: %x", keys)
	}
	if !bytes.Equal(s.ECHKeys, ech) {
		t.Errorf("ECH keys read back: %d bytes", len(s.ECHKeys))
	}
	if got, ok := s.QUIC(); !ok || got != *quic {
		t.Error("QUIC keys not read back")
	}
	other, _ := testKeyring(t)
	if _, err := read(other); !errors.Is(err, secrets.ErrUnknownKey) {
		t.Errorf("read with another key: %v, want ErrUnknownKey", err)
	}
	if _, err := read(nil); !errors.Is(err, secrets.ErrUnknownKey) {
		t.Errorf("read without a keyring: %v, want ErrUnknownKey", err)
	}

	// A rotation: the ring of both keys reseals every entry with the new key.
	_, newRaw := testKeyring(t)
	both, _ := secrets.New(newRaw, oldRaw)
	src = &SnapshotSource{Services: src.Services, Sum: src.Sum, Certificate: src.Certificate, TicketKeys: src.TicketKeys,
		ECHKeys: ech, QUICKeys: quic, Keyring: both}
	if err := w.Write(); err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := secrets.New(newRaw)
	if _, err := read(onlyNew); err != nil {
		t.Errorf("after the rotation, the new key alone does not read the snapshot: %v", err)
	}
}
