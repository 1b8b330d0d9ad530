// The secret key file: the keyring that seals the store's and the
// snapshot's secrets, created on a store that holds nothing sealed yet,
// checked against the store at start, read again while running so that a
// rotation's new key is taken up without a restart.

package node

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

// keyFileInterval is how often a running node reads its secret key file
// again.
const keyFileInterval = 10 * time.Second

// NodeKeysPrefix is where each node records the IDs of the keys it holds
// (KV NodeKeysPrefix+<node ID>, JSON NodeKeys): `spine secrets rotate`
// waits for every connected node to hold the new key before using it.
const NodeKeysPrefix = "spine/secrets/nodes/"

// NodeKeys is what a node records of its keyring: key IDs, never keys.
type NodeKeys struct {
	Keys []string  `json:"keys"` // newest (sealing) first
	At   time.Time `json:"at"`
}

// readKeyFile reads the secret key file: nil and no error if it does not
// exist yet.
func (n *Node) readKeyFile() (*secrets.Keyring, [sha256.Size]byte, error) {
	b, err := os.ReadFile(n.cfg.SecretKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, [sha256.Size]byte{}, nil
	}
	k, _, err := secrets.ReadFile(n.cfg.SecretKeyFile)
	if err != nil {
		return nil, [sha256.Size]byte{}, err
	}
	return k, sha256.Sum256(b), nil
}

// ensureKeyring makes sure the store has the node's keyring and that it
// opens the store's secrets: a missing key file is created on a store with
// nothing sealed yet, refused otherwise; a key file without the key the
// store's secrets were sealed with is refused, and nothing is written.
func (n *Node) ensureKeyring(ctx context.Context) error {
	path := n.cfg.SecretKeyFile
	created := false
	if n.db.Keyring() == nil {
		sealed, err := n.db.HasSealed(ctx)
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
		k, sum, err := n.readKeyFile()
		if err != nil {
			return err
		}
		n.db.SetKeyring(k)
		n.keySum = sum
	}
	if err := n.db.CheckKeyring(ctx); err != nil {
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
		n.log.Warn("created the secret key file: back it up apart from the database, and give every node of the fleet a copy",
			"file", path, "key", n.db.Keyring().IDs()[0])
	}
	n.publishKeys(ctx)
	return nil
}

// publishKeys records the IDs of the node's keys in the store.
func (n *Node) publishKeys(ctx context.Context) {
	k := n.db.Keyring()
	if k.Empty() {
		return
	}
	b, _ := json.Marshal(NodeKeys{Keys: k.IDs(), At: time.Now().UTC()})
	if err := n.db.PutKey(ctx, NodeKeysPrefix+n.fleet.id, b); err != nil {
		n.log.Warn("recording the node's secret key IDs", "err", err)
	}
}

// watchKeyFile migrates the store's plaintext secrets once the node is
// prepared (an upgrade's migration in place), then reads the key file
// every keyFileInterval and takes up a changed one if it opens the store's
// secrets, until ctx ends.
func (n *Node) watchKeyFile(ctx context.Context) {
	t := time.NewTicker(keyFileInterval)
	defer t.Stop()
	migrated := false
	for {
		if !migrated && n.fleet.prepared.Load() {
			migrated = n.migrateSecrets(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.fleet.prepared.Load() {
			n.reloadKeyFile(ctx)
		}
	}
}

// migrateSecrets seals the secrets stored before sealing began. It leaves
// values sealed with an older key alone: during a rotation, only `spine
// secrets rotate` reseals them, once every node holds the new key.
func (n *Node) migrateSecrets(ctx context.Context) bool {
	res, err := n.db.Reseal(ctx, store.ResealPlaintext)
	if err != nil {
		n.log.Warn("sealing the store's secrets stored before sealing began; retried in 10 s", "err", err)
		return false
	}
	if res.Plain > 0 {
		n.log.Info("sealed the store's secrets stored before sealing began", "sealed", res.Plain)
	}
	return true
}

// reloadKeyFile takes up a changed key file if it opens the store's
// secrets; otherwise the node keeps its keys and says why.
func (n *Node) reloadKeyFile(ctx context.Context) {
	k, sum, err := n.readKeyFile()
	switch {
	case err != nil:
		n.log.Error("the secret key file cannot be read again; keeping the keys read before", "err", err)
		return
	case k == nil:
		n.log.Error("the secret key file is gone; keeping the keys read before", "file", n.cfg.SecretKeyFile)
		return
	case sum == n.keySum:
		return
	}
	if err := n.db.Opens(ctx, k); err != nil {
		n.log.Error("the secret key file changed but does not open the store's secrets; keeping the keys read before",
			"file", n.cfg.SecretKeyFile, "err", err)
		return
	}
	n.db.SetKeyring(k)
	n.keySum = sum
	n.log.Info("read the secret key file again", "file", n.cfg.SecretKeyFile, "keys", k.IDs())
	n.publishKeys(ctx)
	n.fleet.snapshots.Due() // reseal the snapshot with the newest key
}
