package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

const (
	snapshotInterval = 5 * time.Second // how often new certificates are looked for
	snapshotSettle   = 3 * time.Second // from start to the first write
)

// SnapshotSource is what a snapshot is written from: the node's state at
// the time of a write.
type SnapshotSource struct {
	// Services are the services of the last successful sync, and Sum
	// their fingerprint (a change of Sum is a change of Services).
	Services []store.Service
	Sum      [sha256.Size]byte
	// Certificate returns the certificate in memory for a hostname, or
	// nil. It must never read the store: a write then holds at most what
	// the certificate cache holds, and never loads the others.
	Certificate func(host string) *tls.Certificate
	// TicketKeys are the session-ticket keys, newest first.
	TicketKeys [][32]byte
	// Tokens returns the API tokens (token hash -> token and project) to
	// keep; TokensVersion changes whenever its answer does.
	Tokens        func() map[string]store.Credential
	TokensVersion uint64
	// TokensComplete: Tokens is every token of the store (as of the last
	// sync), not only those looked up.
	TokensComplete bool
	// Suspended are the IDs of the suspended projects (a change of them is
	// a change of Sum).
	Suspended []string
	// ECHKeys are the fleet's ECH keys (ECHKeys.SnapshotKeys; nil: ECH
	// off or not read yet), and QUICKeys its QUIC keys (nil: HTTP/3 off,
	// or keys of the node's own).
	ECHKeys  []byte
	QUICKeys *QUICKeys
	// Keyring seals the private keys, ticket, ECH and QUIC keys in the file; nil:
	// they are written in the clear (tests of other parts; a node always
	// has one). A change of its newest key re-seals every entry.
	Keyring *secrets.Keyring
}

// SnapshotWriter writes SnapshotFile and keeps, between writes, the
// encoded entry of each certificate it wrote, so that a write encodes only
// the certificates that are new since the last one. While the certificate
// cache warms up after a restart a write comes every snapshotInterval with a
// few hundred more certificates; encoding all of them each time cost
// hundreds of milliseconds of CPU and tens of megabytes of garbage per write
// at 10k names, and the garbage collections that followed held the
// processor for ~10 ms at a time, which handshakes waited for.
//
// The entries are bounded by the certificates of one write; they are
// replaced whole by each write.
type SnapshotWriter struct {
	path   string
	source func() *SnapshotSource
	log    *slog.Logger
	due    chan struct{} // capacity 1: write now

	last    [sha256.Size]byte               // digest of what was last written
	entries map[[sha256.Size]byte]snapEntry // by the digest of the leaf
}

// snapEntry is one certificate's encoded SnapshotCert, and the names it
// was encoded with.
type snapEntry struct {
	names []string
	keyID string // the key that sealed it; "" without a keyring
	json  []byte
}

// NewSnapshotWriter returns a writer of dir's SnapshotFile. source returns
// what to write, or nil while there is nothing to write yet (no sync
// succeeded).
func NewSnapshotWriter(dir string, source func() *SnapshotSource, log *slog.Logger) *SnapshotWriter {
	return &SnapshotWriter{path: filepath.Join(dir, SnapshotFile), source: source, log: log, due: make(chan struct{}, 1)}
}

// Due asks Run for a write now (after a sync that changed something).
func (w *SnapshotWriter) Due() {
	select {
	case w.due <- struct{}{}:
	default:
	}
}

// Run writes the snapshot when Due is called, and every few seconds when a
// certificate was obtained or loaded meanwhile, until ctx ends. The first
// write waits snapshotSettle after start: a restart is when every client
// reconnects at once, and the file from before the restart still holds a
// good snapshot meanwhile.
func (w *SnapshotWriter) Run(ctx context.Context) {
	settle := time.NewTimer(snapshotSettle)
	defer settle.Stop()
	select {
	case <-ctx.Done():
		return
	case <-settle.C:
	}
	t := time.NewTicker(snapshotInterval)
	defer t.Stop()
	for {
		if err := w.Write(); err != nil {
			w.log.Warn("writing the snapshot", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.due:
		}
	}
}

// Write writes the services, the certificates in memory for their
// hostnames (a hostname whose certificate is only in the store is routed
// but not served while the store is away), the ticket keys and the token
// look-ups. It writes nothing if there is nothing to write yet or if none
// of that changed since the last write: the look-ups are cheap, the
// encoding is done only when something changed. Write is not safe for
// concurrent use.
func (w *SnapshotWriter) Write() error {
	src := w.source()
	if src == nil {
		return nil
	}
	var hosts []string // every 5 s: the hostnames only, not a route each
	for _, sv := range src.Services {
		hosts = append(hosts, sv.Hostnames...)
	}
	slices.Sort(hosts)
	type named struct {
		cert *tls.Certificate
		leaf [sha256.Size]byte
	}
	certs := make([]named, len(hosts))
	var y sched.Yielder
	digest := sha256.New()
	digest.Write(src.Sum[:])
	for i, h := range hosts {
		y.Maybe()
		cert := src.Certificate(h)
		if cert == nil || len(cert.Certificate) == 0 {
			continue
		}
		certs[i] = named{cert, sha256.Sum256(cert.Certificate[0])}
		digest.Write([]byte(h))
		digest.Write(certs[i].leaf[:])
	}
	for _, k := range src.TicketKeys {
		digest.Write(k[:])
	}
	digest.Write(binary.AppendUvarint(nil, src.TokensVersion))
	digest.Write(binary.AppendUvarint(nil, uint64(len(src.ECHKeys))))
	digest.Write(src.ECHKeys)
	if q := src.QUICKeys; q != nil {
		digest.Write(q.StatelessReset[:])
		digest.Write(q.Token[:])
	}
	keyID := ""
	if !src.Keyring.Empty() {
		keyID = src.Keyring.IDs()[0]
	}
	digest.Write([]byte(keyID))
	if src.TokensComplete {
		digest.Write([]byte{1})
	}
	var sum [sha256.Size]byte
	digest.Sum(sum[:0])
	if sum == w.last {
		return nil
	}

	// The names of each certificate, in the order of its first name.
	var order [][sha256.Size]byte
	names := map[[sha256.Size]byte][]string{}
	byLeaf := map[[sha256.Size]byte]*tls.Certificate{}
	for i, c := range certs {
		if c.cert == nil {
			continue
		}
		if _, ok := names[c.leaf]; !ok {
			order = append(order, c.leaf)
			byLeaf[c.leaf] = c.cert
		}
		names[c.leaf] = append(names[c.leaf], hosts[i])
	}
	entries := make(map[[sha256.Size]byte]snapEntry, len(order))
	for _, leaf := range order {
		y.Maybe()
		e, ok := w.entries[leaf]
		if !ok || !slices.Equal(e.names, names[leaf]) || e.keyID != keyID {
			b, err := encodeSnapshotCert(byLeaf[leaf], names[leaf], src.Keyring)
			if err != nil {
				return err
			}
			e = snapEntry{names: names[leaf], keyID: keyID, json: b}
		}
		entries[leaf] = e
	}

	head := Snapshot{Version: snapshotVersion, WrittenAt: time.Now().UTC(), Services: src.Services, TokenHashes: tokenLookups(src.Tokens),
		TokensComplete: src.TokensComplete, Suspended: src.Suspended}
	if keyID == "" {
		for _, k := range src.TicketKeys {
			head.TicketKeys = append(head.TicketKeys, k[:])
		}
	} else if len(src.TicketKeys) > 0 {
		all := make([]byte, 0, 32*len(src.TicketKeys))
		for _, k := range src.TicketKeys {
			all = append(all, k[:]...)
		}
		sealed, err := src.Keyring.Seal(ticketKeysName, all)
		if err != nil {
			return err
		}
		head.SealedTicketKeys = string(sealed)
	}
	var quic []byte
	if q := src.QUICKeys; q != nil {
		quic = append(append(quic, q.StatelessReset[:]...), q.Token[:]...)
	}
	if keyID == "" {
		head.ECHKeys, head.QUICKeys = src.ECHKeys, quic
	} else {
		if len(src.ECHKeys) > 0 {
			sealed, err := src.Keyring.Seal(echKeysName, src.ECHKeys)
			if err != nil {
				return err
			}
			head.SealedECHKeys = string(sealed)
		}
		if quic != nil {
			sealed, err := src.Keyring.Seal(quicKeysName, quic)
			if err != nil {
				return err
			}
			head.SealedQUICKeys = string(sealed)
		}
	}
	err := platform.WriteSecretFileFrom(w.path, func(f io.Writer) error {
		return encodeSnapshot(f, &head, func(yield func([]byte) error) error {
			for _, leaf := range order {
				if err := yield(entries[leaf].json); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	w.last, w.entries = sum, entries
	return nil
}

// tokenLookups returns the look-ups of tokens, by hash.
func tokenLookups(tokens func() map[string]store.Credential) []TokenLookup {
	if tokens == nil {
		return nil
	}
	m := tokens()
	out := make([]TokenLookup, 0, len(m))
	for h, p := range m {
		out = append(out, TokenLookup{Hash: h, Project: p.Project, Token: &TokenMeta{
			ID: p.Token.ID, Name: p.Token.Name, Scopes: p.Token.Scopes, CreatedAt: p.Token.CreatedAt, ExpiresAt: p.Token.ExpiresAt}})
	}
	slices.SortFunc(out, func(a, b TokenLookup) int { return strings.Compare(a.Hash, b.Hash) })
	return out
}

// encodeSnapshotCert encodes cert, served for names, as a SnapshotCert,
// its key sealed with k (unless k is nil).
func encodeSnapshotCert(cert *tls.Certificate, names []string, k *secrets.Keyring) ([]byte, error) {
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("fleet: encoding the key of %s: %w", names[0], err)
	}
	var chain bytes.Buffer
	for _, der := range cert.Certificate {
		pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})
	if !k.Empty() {
		if keyPEM, err = k.Seal(certKeyName(cert.Certificate[0]), keyPEM); err != nil {
			return nil, fmt.Errorf("fleet: sealing the key of %s: %w", names[0], err)
		}
	}
	return json.Marshal(SnapshotCert{
		Names:    names,
		ChainPEM: chain.String(),
		KeyPEM:   string(keyPEM),
	})
}
