// Package keyfile keeps a node's keyring in step with its secret key file
// (--secret-key-file): it creates the file on a store that holds nothing
// sealed yet, checks it against the store at start, reads it again every
// 10 s so that a rotation's new key is taken up without a restart, records
// the IDs of the keys each node holds, and runs `spine secrets rotate`
// (Rotate), which reseals the store's secrets under a new key while the
// fleet keeps serving.
//
// Package secrets seals and opens; this package is its upkeep against the
// store, kept apart so that secrets imports only the standard library.
//
// Imports: never internal/node, internal/api, internal/edge, internal/certs.
package keyfile

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

// interval is how often a running node reads its secret key file again.
const interval = 10 * time.Second

// NodeKeysPrefix is where each node records the IDs of the keys it holds
// (KV NodeKeysPrefix+<node ID>, JSON NodeKeys): `spine secrets rotate`
// waits for every connected node to hold the new key before using it.
const NodeKeysPrefix = "spine/secrets/nodes/"

// NodeKeys is what a node records of its keyring: key IDs, never keys.
type NodeKeys struct {
	Keys []string  `json:"keys"` // newest (sealing) first
	At   time.Time `json:"at"`
}

// Read reads the secret key file at path, and the SHA-256 of its content
// (what Watcher compares to notice a change): nil and no error if it does
// not exist yet.
func Read(path string) (*secrets.Keyring, [sha256.Size]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, [sha256.Size]byte{}, nil
	}
	k, _, err := secrets.ReadFile(path)
	if err != nil {
		return nil, [sha256.Size]byte{}, err
	}
	return k, sha256.Sum256(b), nil
}

// Config is what a Watcher needs. Every field is required unless its
// comment says otherwise.
type Config struct {
	// Path is the secret key file.
	Path string
	// Store is the node's store; its keyring is the one kept in step.
	Store *store.DB
	// NodeID is the node's ID, under which it records its key IDs.
	NodeID string
	// Sum is the SHA-256 Read returned for the keys the store was given
	// before the watcher was made (zero if none).
	Sum [sha256.Size]byte
	// Prepared reports whether the node is ready for the watcher's work:
	// its start-up work is done (Ensure succeeded) and, for `spine serve`,
	// its first sync applied; until then Run neither migrates nor reads
	// the file again.
	Prepared func() bool
	// Changed is called after a changed key file was taken up (the node
	// reseals its snapshot with the newest key). May be nil.
	Changed func()
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Watcher keeps the store's keyring in step with the secret key file.
// Ensure must return before Run starts; Run is its only user after that.
type Watcher struct {
	cfg Config
	log *slog.Logger
	sum [sha256.Size]byte // of the key file as last taken up; under Run after Ensure
}

// NewWatcher returns a watcher of cfg.Path; it reads nothing yet.
func NewWatcher(cfg Config) *Watcher {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{cfg: cfg, log: log, sum: cfg.Sum}
}

// Ensure makes sure the store has the node's keyring and that it opens the
// store's secrets: a missing key file is created on a store with nothing
// sealed yet, refused otherwise; a key file without the key the store's
// secrets were sealed with is refused, and nothing is written.
func (w *Watcher) Ensure(ctx context.Context) error {
	path, db := w.cfg.Path, w.cfg.Store
	created := false
	if db.Keyring() == nil {
		sealed, err := db.HasSealed(ctx)
		if err != nil {
			return err
		}
		if sealed {
			return &secrets.FileError{Path: path, Err: fs.ErrNotExist,
				Do: "this store's secrets are sealed: copy the secret key file the other nodes of the fleet use (or your backup of it) there, or name it with --secret-key-file"}
		}
		content, err := secrets.Generate()
		if err != nil {
			return err
		}
		switch err := secrets.CreateFile(path, content); {
		case errors.Is(err, fs.ErrExist): // made meanwhile: read it below
		case err != nil:
			return &secrets.FileError{Path: path, Err: err, Do: "make its folder writable, or name another file with --secret-key-file"}
		default:
			created = true
		}
		k, sum, err := Read(path)
		if err != nil {
			return err
		}
		db.SetKeyring(k)
		w.sum = sum
	}
	if err := db.CheckKeyring(ctx); err != nil {
		var unknown *secrets.UnknownKeyError
		if !errors.As(err, &unknown) {
			return fmt.Errorf("checking the secret key file: %w", err)
		}
		if created {
			os.Remove(path) // ours, and of no use: another node's key won
		}
		return &secrets.FileError{Path: path, Err: fmt.Errorf("it does not hold key %s, which sealed this store's secrets", unknown.ID),
			Do: "give spine the secret key file the other nodes of the fleet use (or your backup of it); nothing was changed"}
	}
	if created {
		w.log.Warn("created the secret key file: back it up apart from the database, and give every node of the fleet a copy",
			"file", path, "key", db.Keyring().IDs()[0])
	}
	w.publish(ctx)
	return nil
}

// publish records the IDs of the node's keys in the store.
func (w *Watcher) publish(ctx context.Context) {
	k := w.cfg.Store.Keyring()
	if k.Empty() {
		return
	}
	b, _ := json.Marshal(NodeKeys{Keys: k.IDs(), At: time.Now().UTC()})
	if err := w.cfg.Store.PutKey(ctx, NodeKeysPrefix+w.cfg.NodeID, b); err != nil {
		w.log.Warn("recording the node's secret key IDs", "err", err)
	}
}

// Run migrates the store's plaintext secrets once the node is prepared (an
// upgrade's migration in place), then reads the key file every 10 s and
// takes up a changed one if it opens the store's secrets, until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(interval)
	defer t.Stop()
	migrated := false
	for {
		if !migrated && w.cfg.Prepared() {
			migrated = w.migrate(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.cfg.Prepared() {
			w.reload(ctx)
		}
	}
}

// migrate seals the secrets stored before sealing began. It leaves values
// sealed with an older key alone: during a rotation, only `spine secrets
// rotate` reseals them, once every node holds the new key.
func (w *Watcher) migrate(ctx context.Context) bool {
	res, err := w.cfg.Store.Reseal(ctx, store.ResealPlaintext)
	if err != nil {
		w.log.Warn("sealing the store's secrets stored before sealing began; retried in 10 s", "err", err)
		return false
	}
	if res.Plain > 0 {
		w.log.Info("sealed the store's secrets stored before sealing began", "sealed", res.Plain)
	}
	return true
}

// reload takes up a changed key file if it opens the store's secrets;
// otherwise the node keeps its keys and says why.
func (w *Watcher) reload(ctx context.Context) {
	path, db := w.cfg.Path, w.cfg.Store
	k, sum, err := Read(path)
	switch {
	case err != nil:
		w.log.Error("the secret key file cannot be read again; keeping the keys read before", "err", err)
		return
	case k == nil:
		w.log.Error("the secret key file is gone; keeping the keys read before", "file", path)
		return
	case sum == w.sum:
		return
	}
	if err := db.Opens(ctx, k); err != nil {
		w.log.Error("the secret key file changed but does not open the store's secrets; keeping the keys read before",
			"file", path, "err", err)
		return
	}
	db.SetKeyring(k)
	w.sum = sum
	w.log.Info("read the secret key file again", "file", path, "keys", k.IDs())
	w.publish(ctx)
	if w.cfg.Changed != nil {
		w.cfg.Changed() // reseal the snapshot with the newest key
	}
}
