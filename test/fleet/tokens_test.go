package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/poll"
)

// tokenStatus calls GET /v1/services on nd with tok and returns the status
// and the Warning header.
func tokenStatus(t *testing.T, nd *node, tok string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+nd.api+"/v1/services", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET /v1/services on %s: %v", nd.name, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Warning")
}

// snapshotTokens returns the token hashes in nd's snapshot and whether the
// snapshot says they are every token of the store.
func snapshotTokens(nd *node) (map[string]bool, bool, error) {
	var m snapshotManifest
	if err := readSnapshotPart(nd, "manifest.json", &m); err != nil {
		return nil, false, err
	}
	var s struct {
		TokenHashes []struct {
			Hash  string
			Token *struct{ Name string }
		} `json:"token_hashes"`
		Complete bool `json:"tokens_complete"`
	}
	if err := readSnapshotPart(nd, m.Tokens, &s); err != nil {
		return nil, false, err
	}
	out := map[string]bool{}
	for _, h := range s.TokenHashes {
		out[h.Hash] = true
	}
	return out, s.Complete, nil
}

func hashOf(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// A revoked token gets 401 on every node of the fleet: at once where the
// store answers; with PostgreSQL stopped, on every node answering from its
// last known state and on a node restarted from its snapshot. A token that
// expires while PostgreSQL is away is refused by those nodes from its
// stored expiry on, and not before. A token neither revoked nor expired
// keeps reading, marked stale. The snapshots hold the tokens' hashes, never
// their values.
func TestRevokedTokenRefusedFleetWide(t *testing.T) {
	const lifetime = 90 * time.Second
	pg := newPGCluster(t)
	f := newFleet(t, pg.DSN(), 3)
	ctx := ctxT(t)
	admin := f.nodes[0].client()
	mk := func(name, expires string) client.TokenCreated {
		t.Helper()
		tc, err := admin.CreateToken(ctx, client.TokenCreate{Name: name, Scopes: []string{"read"}, ExpiresIn: expires})
		if err != nil {
			t.Fatalf("creating token %s: %v", name, err)
		}
		return tc
	}
	revoked, kept, short := mk("revoked", ""), mk("kept", ""), mk("short", lifetime.String())
	expires := *short.ExpiresAt
	for _, nd := range f.nodes {
		for _, tc := range []client.TokenCreated{revoked, kept, short} {
			if code, _ := tokenStatus(t, nd, tc.Value); code != 200 {
				t.Fatalf("%s: token %s answered %d before anything happened", nd.name, tc.Name, code)
			}
		}
		poll.Until(t, nd.name+"'s snapshot holds the tokens", time.Minute, func() error {
			hashes, complete, err := snapshotTokens(nd)
			if err != nil {
				return err
			}
			for _, tc := range []client.TokenCreated{revoked, kept, short} {
				if !hashes[hashOf(tc.Value)] {
					return fmt.Errorf("no hash of token %s", tc.Name)
				}
			}
			if !complete {
				return fmt.Errorf("the token list is not marked complete")
			}
			return nil
		})
	}

	if err := admin.RevokeToken(ctx, "revoked"); err != nil {
		t.Fatal(err)
	}
	for _, nd := range f.nodes {
		if code, _ := tokenStatus(t, nd, revoked.Value); code != 401 {
			t.Errorf("%s: the revoked token answered %d with the store up, want 401", nd.name, code)
		}
		// The propagation time: the revocation's notice makes every node
		// drop it from its last known state, and so from its snapshot.
		poll.Until(t, nd.name+"'s snapshot drops the revoked token", time.Minute, func() error {
			hashes, _, err := snapshotTokens(nd)
			if err != nil {
				return err
			}
			if hashes[hashOf(revoked.Value)] {
				return fmt.Errorf("still there")
			}
			return nil
		})
	}

	pg.Stop()
	stopped := time.Now()
	t.Log("PostgreSQL stopped")
	if !stopped.Before(expires.Add(-20 * time.Second)) {
		t.Fatalf("PostgreSQL stopped at %v, too close to the short token's expiry %v: the test is too slow for its lifetimes", stopped, expires)
	}
	n3 := f.nodes[2]
	n3.stop()
	n3.start()
	n3.waitReady()
	if !strings.Contains(n3.logs(), "serving the last known snapshot") {
		t.Fatal("node3 did not start from its snapshot")
	}
	for _, nd := range f.nodes {
		if code, _ := tokenStatus(t, nd, revoked.Value); code != 401 {
			t.Errorf("%s: the revoked token answered %d with PostgreSQL away, want 401", nd.name, code)
		}
		if code, warn := tokenStatus(t, nd, kept.Value); code != 200 || warn != client.StaleWarning {
			t.Errorf("%s: a valid token answered %d (Warning %q) with PostgreSQL away, want 200 marked stale", nd.name, code, warn)
		}
	}
	// The short token: refused from its expiry on, never before.
	for _, nd := range f.nodes {
		poll.Until(t, nd.name+" refuses the expired token", lifetime+time.Minute, func() error {
			code, _ := tokenStatus(t, nd, short.Value)
			now := time.Now()
			switch {
			case code == 401 && now.Before(expires):
				return poll.Stop(fmt.Errorf("refused at %v, before its expiry %v", now, expires))
			case code == 401:
				return nil
			case code == 200:
				return fmt.Errorf("still accepted at %v (expires %v)", now, expires)
			default:
				return poll.Stop(fmt.Errorf("answered %d", code))
			}
		})
	}
	for _, nd := range f.nodes {
		if b, err := snapshotBytes(nd); err != nil || len(b) == 0 || slices.ContainsFunc([]string{kept.Value, short.Value, revoked.Value}, func(v string) bool { return strings.Contains(string(b), v) }) {
			t.Errorf("%s's snapshot holds a token's value (or cannot be read: %v)", nd.name, err)
		}
	}
	t.Logf("PostgreSQL away for %.1f s: the revoked token refused on 3 nodes (one restarted from its snapshot), the short one from its expiry on", time.Since(stopped).Seconds())
	pg.Start()
}
