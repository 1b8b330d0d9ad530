// The last-known-good snapshot: what a node needs to serve without the
// store, kept in its data folder.

package fleet

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

// SnapshotDir is the folder of the snapshot in the data folder (0700): a
// manifest naming the parts it is made of, written last (snapshotfolder.go).
// SnapshotFile is the single file of the snapshot of older releases: read
// when the folder has no manifest, removed by the first write of the folder.
// Both hold private keys, sealed with the node's keyring; every file is
// written 0600, through a rename.
const (
	SnapshotDir  = "snapshot"
	SnapshotFile = "snapshot.json"
)

// snapshotVersion is the version of SnapshotFile; the folder's manifest
// has its own (folderVersion).
const snapshotVersion = 1

// Snapshot is what a node serves from while the store is away: the content
// of SnapshotDir (or of an older release's SnapshotFile).
type Snapshot struct {
	Version      int             `json:"version"`
	WrittenAt    time.Time       `json:"written_at"`
	Services     []store.Service `json:"services"`
	Certificates []SnapshotCert  `json:"certificates"`
	TicketKeys   [][]byte        `json:"ticket_keys,omitempty"` // newest first; in memory, and in a file written without a keyring
	// SealedTicketKeys are the ticket keys, concatenated and sealed with
	// the node's keyring (ticketKeysName): in the file, instead of TicketKeys.
	SealedTicketKeys string `json:"sealed_ticket_keys,omitempty"`
	// TokenHashes are the API token look-ups the node answered (hashes,
	// never tokens), so that a node started from the snapshot answers
	// reads, marked stale, while the store is away.
	TokenHashes []TokenLookup `json:"token_hashes,omitempty"`
	// TokensComplete: TokenHashes is every token of the store as of the
	// last sync, so a token it lacks is refused (401) while the store is
	// away.
	TokensComplete bool `json:"tokens_complete,omitempty"`
	// Suspended are the IDs of the suspended projects: their services are
	// routed to a 503 page.
	Suspended []string `json:"suspended_projects,omitempty"`
	// ECHKeys are the fleet's ECH keys as the node last had them (the
	// store's spine/tls/ech-keys value), and QUICKeys its QUIC keys (the
	// stateless-reset key, then the token key: 64 bytes), so that a node
	// started from the snapshot with the store away still does ECH with
	// the published configuration and answers as the fleet's other nodes
	// do. In memory, and in a file written without a keyring; in the file,
	// sealed with the node's keyring (echKeysName, quicKeysName) in
	// SealedECHKeys and SealedQUICKeys instead.
	ECHKeys        json.RawMessage `json:"ech_keys,omitempty"`
	SealedECHKeys  string          `json:"sealed_ech_keys,omitempty"`
	QUICKeys       []byte          `json:"quic_keys,omitempty"`
	SealedQUICKeys string          `json:"sealed_quic_keys,omitempty"`

	// For a snapshot read hot first (ReadSnapshotHotFirst) whose Services
	// are its hot ones only: count is the number of its services, and
	// rest reads them all (ReadServices).
	count int
	rest  func() ([]store.Service, error)
}

// TokenLookup is one API token: the SHA-256 hash of the token (as the
// store keeps it), the project it authenticates, and what it may do and
// until when. A snapshot of an older release has no Token: such a token
// has every project scope and no expiry until the store answers again.
type TokenLookup struct {
	Hash    string        `json:"hash"`
	Project store.Project `json:"project"`
	Token   *TokenMeta    `json:"token,omitempty"`
}

// TokenMeta is what authentication needs of a token besides its hash;
// never its value.
type TokenMeta struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Credential returns the token and project that l authenticates.
func (l TokenLookup) Credential() store.Credential {
	t := store.Token{ProjectID: l.Project.ID, Hash: l.Hash}
	if m := l.Token; m != nil {
		t.ID, t.Name, t.Scopes, t.CreatedAt, t.ExpiresAt = m.ID, m.Name, m.Scopes, m.CreatedAt, m.ExpiresAt
	}
	return store.Credential{Token: t, Project: l.Project}
}

// Credentials are the snapshot's token look-ups by token hash.
func (s *Snapshot) Credentials() map[string]store.Credential {
	tokens := make(map[string]store.Credential, len(s.TokenHashes))
	for _, t := range s.TokenHashes {
		tokens[t.Hash] = t.Credential()
	}
	return tokens
}

// SuspendedProjects is the set of Suspended.
func (s *Snapshot) SuspendedProjects() map[string]bool {
	suspended := make(map[string]bool, len(s.Suspended))
	for _, id := range s.Suspended {
		suspended[id] = true
	}
	return suspended
}

// SnapshotCert is the certificate a node served for Names.
type SnapshotCert struct {
	Names    []string `json:"names"`
	ChainPEM string   `json:"chain_pem"`
	// KeyPEM is the private key in PEM; in the file, sealed with the node's
	// keyring under certKeyName (a file written without a keyring, or by a
	// release before sealing, holds the PEM).
	KeyPEM string `json:"key_pem"`
}

// ticketKeysName is the name the snapshot's ticket keys are sealed under.
const ticketKeysName = "snapshot/ticket-keys"

// echKeysName and quicKeysName are the names the snapshot's ECH and QUIC
// keys are sealed under.
const (
	echKeysName  = "snapshot/ech-keys"
	quicKeysName = "snapshot/quic-keys"
)

// certKeyName is the name a certificate's key is sealed under in the
// snapshot: bound to the certificate (the SHA-256 of its leaf), so that a
// key cannot be moved to another certificate's entry.
func certKeyName(leaf []byte) string {
	sum := sha256.Sum256(leaf)
	return "snapshot/cert/" + hex.EncodeToString(sum[:])
}

// ReadSnapshot reads dir's snapshot, SnapshotDir (or, when that has no
// manifest, the SnapshotFile of an older release), and opens its sealed
// keys with k (nil: a snapshot written without a keyring). A snapshot that
// k cannot open is an error that names the key it was sealed with; without
// either, the error satisfies errors.Is(err, fs.ErrNotExist).
func ReadSnapshot(dir string, k *secrets.Keyring) (*Snapshot, error) {
	return readSnapshot(dir, k, false)
}

// ReadSnapshotHotFirst is ReadSnapshot for a node that serves the snapshot
// as soon as it can: if the folder has a hot part (the services with a
// certificate in the snapshot: the names that can be served with the
// store away), Services holds only those until ReadServices reads them
// all. At a million services the read of every one took 4.3 s of one
// processor, most of a start from the snapshot (BENCHMARKS.md).
func ReadSnapshotHotFirst(dir string, k *secrets.Keyring) (*Snapshot, error) {
	return readSnapshot(dir, k, true)
}

func readSnapshot(dir string, k *secrets.Keyring, hotFirst bool) (*Snapshot, error) {
	s, err := readFolder(filepath.Join(dir, SnapshotDir), hotFirst)
	if errors.Is(err, fs.ErrNotExist) {
		s, err = readFile(filepath.Join(dir, SnapshotFile))
	}
	if err != nil {
		return nil, err
	}
	if err := s.open(k); err != nil {
		return nil, fmt.Errorf("fleet: reading the snapshot: %w", err)
	}
	return s, nil
}

// readFile reads the SnapshotFile of an older release, its keys sealed.
func readFile(path string) (*Snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("fleet: reading %s: %w", SnapshotFile, err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("fleet: %s has version %d; this program reads %d", SnapshotFile, s.Version, snapshotVersion)
	}
	return &s, nil
}

// open replaces the snapshot's sealed keys with their plaintext.
func (s *Snapshot) open(k *secrets.Keyring) error {
	if s.SealedTicketKeys != "" {
		b, err := k.Open(ticketKeysName, []byte(s.SealedTicketKeys))
		if err != nil {
			return fmt.Errorf("ticket keys: %w", err)
		}
		s.TicketKeys, s.SealedTicketKeys = nil, ""
		for len(b) >= 32 {
			s.TicketKeys = append(s.TicketKeys, b[:32])
			b = b[32:]
		}
	}
	if s.SealedECHKeys != "" {
		b, err := k.Open(echKeysName, []byte(s.SealedECHKeys))
		if err != nil {
			return fmt.Errorf("ECH keys: %w", err)
		}
		s.ECHKeys, s.SealedECHKeys = b, ""
	}
	if s.SealedQUICKeys != "" {
		b, err := k.Open(quicKeysName, []byte(s.SealedQUICKeys))
		if err != nil {
			return fmt.Errorf("QUIC keys: %w", err)
		}
		s.QUICKeys, s.SealedQUICKeys = b, ""
	}
	for i := range s.Certificates {
		c := &s.Certificates[i]
		if !secrets.IsSealed([]byte(c.KeyPEM)) {
			continue
		}
		block, _ := pem.Decode([]byte(c.ChainPEM))
		if block == nil {
			return fmt.Errorf("the certificate of %v has no PEM chain", c.Names)
		}
		key, err := k.Open(certKeyName(block.Bytes), []byte(c.KeyPEM))
		if err != nil {
			return fmt.Errorf("the key of %v: %w", c.Names, err)
		}
		c.KeyPEM = string(key)
	}
	return nil
}

// CertificatesByName returns the snapshot's certificates by hostname,
// without (and logging) those that do not load; nil for a nil snapshot.
func (s *Snapshot) CertificatesByName(log *slog.Logger) map[string]*tls.Certificate {
	if s == nil {
		return nil
	}
	out := map[string]*tls.Certificate{}
	for _, c := range s.Certificates {
		pair, err := tls.X509KeyPair([]byte(c.ChainPEM), []byte(c.KeyPEM))
		if err != nil {
			log.Warn("skipping a certificate of the snapshot", "names", c.Names, "err", err)
			continue
		}
		for _, name := range c.Names {
			out[name] = &pair
		}
	}
	return out
}

// Served drops what a node serving the snapshot has taken over: its
// services (the edge's routes have them, and the API's reads until the
// store's first sync seeds them anew) and its certificates
// (CertificatesByName parsed them). The keys and tokens stay for the
// keepers that read them later. At a million services the list is about
// 400 MB, which a node started from its snapshot held for its life.
func (s *Snapshot) Served() { s.Services, s.Certificates, s.rest = nil, nil, nil }

// Len returns the number of services of the snapshot, read or not.
func (s *Snapshot) Len() int {
	if s.rest == nil {
		return len(s.Services)
	}
	return s.count
}

// Partial reports whether Services holds the snapshot's hot services only
// (ReadSnapshotHotFirst), not every service yet.
func (s *Snapshot) Partial() bool { return s.rest != nil }

// ReadServices makes Services every service of the snapshot, read from
// the folder if Partial, in the order of a sync (by project, then name).
// On error Services is left as it was. Not safe for use with other
// methods at the same time.
func (s *Snapshot) ReadServices() error {
	if s.rest == nil {
		return nil
	}
	svcs, err := s.rest()
	if err != nil {
		return err
	}
	s.Services, s.rest = svcs, nil
	return nil
}

// Keys returns the snapshot's session-ticket keys, newest first.
func (s *Snapshot) Keys() [][32]byte {
	var out [][32]byte
	for _, k := range s.TicketKeys {
		if len(k) == 32 {
			out = append(out, [32]byte(k))
		}
	}
	return out
}

// QUIC returns the snapshot's QUIC keys, and false if it has none (a
// snapshot of an older release, or of a node with HTTP/3 off).
func (s *Snapshot) QUIC() (QUICKeys, bool) {
	if len(s.QUICKeys) != 64 {
		return QUICKeys{}, false
	}
	return QUICKeys{StatelessReset: [32]byte(s.QUICKeys[:32]), Token: [32]byte(s.QUICKeys[32:])}, true
}
