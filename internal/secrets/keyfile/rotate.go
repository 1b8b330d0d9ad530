// `spine secrets rotate`: the store's secrets resealed under a new key
// while the fleet keeps serving.

package keyfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

// RotateConfig is what Rotate needs.
type RotateConfig struct {
	// Store is the store's DSN (store.Open), as the nodes open it.
	Store string
	// KeyFile is the secret key file the nodes read (--secret-key-file).
	KeyFile string
	// NewKeyFile holds the new key (its first); made (0600) if missing.
	NewKeyFile string
	// Wait bounds each wait for the connected nodes to take up the key
	// file. Default 5 min.
	Wait time.Duration
	// Progress is told each step, in words for the operator; may be nil.
	Progress func(string)
}

// pollEvery is how often Rotate reads the nodes' key IDs while it
// waits for them.
const pollEvery = time.Second

// Rotate reseals every secret of the store under the new key while
// the nodes keep serving. The nodes read their key file again every 10 s;
// each step waits until every connected node reports the keys it asks for:
//
//  1. the key file holds the new key last (it opens, it does not seal yet),
//  2. then first (every node seals with it; all still open the old keys),
//  3. then every secret sealed with an older key, or in the clear, is
//     resealed, the canary last, until none is left.
//
// The old keys stay in the file: a node's snapshot is sealed with the new
// key within seconds, after which the operator may delete them. The key
// file is rewritten with every key it held, so a rotation stopped half way
// is resumed by running it again. Nodes whose key file is another copy
// (another host) need it copied at steps 1 and 2; Rotate says so
// and waits.
func Rotate(ctx context.Context, rc RotateConfig) error {
	if rc.Wait <= 0 {
		rc.Wait = 5 * time.Minute
	}
	say := func(format string, args ...any) {
		if rc.Progress != nil {
			rc.Progress(fmt.Sprintf(format, args...))
		}
	}
	_, oldRaw, err := secrets.ReadFile(rc.KeyFile)
	if err != nil {
		return err
	}
	if rc.NewKeyFile == "" {
		return errors.New("give the file of the new key with --new-key-file (it is made if it does not exist)")
	}
	if _, err := os.Stat(rc.NewKeyFile); errors.Is(err, fs.ErrNotExist) {
		content, err := secrets.Generate()
		if err != nil {
			return err
		}
		if err := secrets.CreateFile(rc.NewKeyFile, content); err != nil {
			return &secrets.FileError{Path: rc.NewKeyFile, Err: err, Do: "name a file in a folder you can write to"}
		}
		say("made a new key in %s", rc.NewKeyFile)
	}
	_, newRaw, err := secrets.ReadFile(rc.NewKeyFile)
	if err != nil {
		return err
	}
	newKey := newRaw[0]
	newID := secrets.KeyID(newKey)
	var others [][]byte // the current file's keys, without the new one
	for _, r := range oldRaw {
		if !bytes.Equal(r, newKey) {
			others = append(others, r)
		}
	}
	db, err := store.Open(ctx, rc.Store)
	if err != nil {
		return fmt.Errorf("opening the store: %w", err)
	}
	defer db.Close()
	current, err := secrets.New(oldRaw...)
	if err != nil {
		return err
	}
	db.SetKeyring(current)
	if err := db.CheckKeyring(ctx); err != nil {
		var unknown *secrets.UnknownKeyError
		if errors.As(err, &unknown) {
			return &secrets.FileError{Path: rc.KeyFile, Err: fmt.Errorf("it does not hold key %s, which sealed this store's secrets", unknown.ID),
				Do: "give the secret key file the nodes use with --secret-key-file"}
		}
		return err
	}
	write := func(keys ...[]byte) error {
		if err := platform.WriteSecretFile(rc.KeyFile, secrets.FileContent(keys...)); err != nil {
			return &secrets.FileError{Path: rc.KeyFile, Err: err, Do: "make it writable by the user running this command"}
		}
		return nil
	}
	// 1. The new key opens on every node.
	if !(len(oldRaw) > 0 && bytes.Equal(oldRaw[0], newKey)) {
		if err := write(append(slices.Clone(others), newKey)...); err != nil {
			return err
		}
		say("step 1/3: %s now holds the new key %s after the keys in use; copy it to every node that reads another copy", rc.KeyFile, newID)
		if err := waitNodes(ctx, db, rc.Wait, say, newID, false); err != nil {
			return err
		}
	}
	// 2. Every node seals with it.
	if err := write(append([][]byte{newKey}, others...)...); err != nil {
		return err
	}
	say("step 2/3: %s now holds the new key %s first; copy it to every node that reads another copy", rc.KeyFile, newID)
	if err := waitNodes(ctx, db, rc.Wait, say, newID, true); err != nil {
		return err
	}
	// 3. Reseal until nothing else is left.
	both, err := secrets.New(append([][]byte{newKey}, others...)...)
	if err != nil {
		return err
	}
	db.SetKeyring(both)
	for round := 1; ; round++ {
		res, err := db.Reseal(ctx, store.ResealAll)
		if err != nil {
			return fmt.Errorf("resealing: %w (run the command again to go on)", err)
		}
		counts, err := db.SealedKeys(ctx)
		if err != nil {
			return err
		}
		left := 0
		for id, n := range counts {
			if id != newID {
				left += n
			}
		}
		say("step 3/3: resealed %d secrets with key %s (%d were already), %d left", res.Resealed+res.Plain, newID, res.Current, left)
		if left == 0 {
			break
		}
		if round == 5 {
			return fmt.Errorf("%d secrets are still sealed with an older key after 5 rounds: a node seals with one; run the command again", left)
		}
	}
	var oldIDs []string
	for _, r := range others {
		oldIDs = append(oldIDs, secrets.KeyID(r))
	}
	if len(oldIDs) > 0 {
		say("done: every secret of the store is sealed with key %s. Each node reseals its snapshot within seconds; after that you may delete the old keys (%s) from every copy of %s, and should replace your backup of it",
			newID, strings.Join(oldIDs, ", "), rc.KeyFile)
	} else {
		say("done: every secret of the store is sealed with key %s", newID)
	}
	return nil
}

// waitNodes waits until every connected node reports holding key id (as
// its sealing key, if first).
func waitNodes(ctx context.Context, db *store.DB, wait time.Duration, say func(string, ...any), id string, first bool) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	lastMissing := ""
	for {
		nodes, err := db.ListNodes(ctx)
		if err != nil {
			return err
		}
		var missing []string
		for _, nd := range nodes {
			if nd.Age > fleet.ConnectedWithin {
				continue
			}
			var rec NodeKeys
			b, err := db.GetKey(ctx, NodeKeysPrefix+nd.ID)
			if err == nil {
				err = json.Unmarshal(b, &rec)
			}
			ok := err == nil && len(rec.Keys) > 0 && (rec.Keys[0] == id || !first && slices.Contains(rec.Keys, id))
			if !ok {
				missing = append(missing, nd.ID)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if m := strings.Join(missing, ", "); m != lastMissing {
			say("waiting for nodes to read the key file again (every 10 s): %s", m)
			lastMissing = m
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes %s did not take up key %s within %v: give each the same secret key file, then run the command again",
				strings.Join(missing, ", "), id, wait)
		case <-t.C:
		}
	}
}
