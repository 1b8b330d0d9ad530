package dnsserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/store"
)

// KV is the key-value space KVStore keeps records in; a *store.DB satisfies
// it. Keys are "a/b/c" paths and a prefix acts as a directory.
type KV interface {
	PutKey(ctx context.Context, key string, value []byte) error
	// GetKey must return an error wrapping store.ErrNotFound if key does not exist.
	GetKey(ctx context.Context, key string) ([]byte, error)
	// DeleteKey deletes key and every key under key+"/".
	DeleteKey(ctx context.Context, key string) error
	// ListKeys lists the keys under prefix: with recursive, every key at any
	// depth; without, the immediate children. It may return store.ErrNotFound
	// (wrapped) when there are none.
	ListKeys(ctx context.Context, prefix string, recursive bool) ([]string, error)
}

// KVStore keeps TXT records in a KV shared by every node of a fleet, so any
// node answers with the records any other node wrote. Each value is its own
// key, "<Prefix>/<name without the final dot>/<hash of value>", so that two
// nodes adding values at one name at once (a wildcard and its apex share
// _acme-challenge) never overwrite each other.
//
// Reads are cached, at most CacheSize names for CacheTTL each, counted
// from when the read began: TXT returns what the last write of the name
// wrote, through this KVStore at once (a write drops the name's entry),
// and through another node's at most CacheTTL after that write ended. A
// negative answer (no records) is cached like any other; Solver.Wait
// waits CacheTTL after writing for that reason. Set the fields before
// first use and do not change them after.
type KVStore struct {
	// KV holds the records. Required.
	KV KV
	// Prefix of the keys. Default: "dnsserver/txt".
	Prefix string
	// CacheTTL is how long a read is reused. Default: 1s; negative: no cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached names. Default: 4096.
	CacheSize int
	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]kvCacheEntry
	gen   uint64 // raised by every write: a read begun before is not cached
}

type kvCacheEntry struct {
	values  []string
	expires time.Time
}

var (
	_ RecordStore  = (*KVStore)(nil)
	_ RecordWriter = (*KVStore)(nil)
	_ TXTLister    = (*KVStore)(nil)
)

func (s *KVStore) prefix() string {
	if s.Prefix == "" {
		return "dnsserver/txt"
	}
	return strings.Trim(s.Prefix, "/")
}

func (s *KVStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// nameKey is the directory of the values at a valid canonical name.
func (s *KVStore) nameKey(name string) string {
	return s.prefix() + "/" + strings.TrimSuffix(name, ".")
}

func valueKey(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:16])
}

// TXT implements RecordStore.
func (s *KVStore) TXT(ctx context.Context, name string) ([]string, error) {
	name = canonicalName(name)
	if !validName(name) {
		return nil, nil // no such name can have been stored
	}
	if vals, ok := s.cached(name); ok {
		return vals, nil
	}
	// The entry expires CacheTTL after the read began: a write that ended
	// during the read, which the read may have missed, is then seen
	// CacheTTL after it at the latest, as Solver.Wait counts on.
	began, gen := s.now(), s.generation()
	vals, err := s.read(ctx, s.nameKey(name))
	if err != nil {
		return nil, fmt.Errorf("dnsserver: reading TXT records at %s: %w", name, err)
	}
	s.remember(name, vals, began, gen)
	return slices.Clone(vals), nil
}

func (s *KVStore) read(ctx context.Context, dir string) ([]string, error) {
	keys, err := s.KV.ListKeys(ctx, dir, false)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var vals []string
	for _, k := range keys {
		v, err := s.KV.GetKey(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since the listing, or a directory
		}
		if err != nil {
			return nil, err
		}
		vals = append(vals, string(v))
	}
	slices.Sort(vals)
	return vals, nil
}

func (s *KVStore) cached(name string) ([]string, bool) {
	if s.CacheTTL < 0 {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.cache[name]
	if !ok || !s.now().Before(e.expires) {
		return nil, false
	}
	return slices.Clone(e.values), true
}

func (s *KVStore) generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// remember caches vals, read at began, for name, unless a write through
// this KVStore came since the read began (gen).
func (s *KVStore) remember(name string, vals []string, began time.Time, gen uint64) {
	if s.CacheTTL < 0 {
		return
	}
	ttl, size := s.CacheTTL, s.CacheSize
	if ttl == 0 {
		ttl = time.Second
	}
	if size <= 0 {
		size = 4096
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return // the read may be older than a write through this KVStore
	}
	if s.cache == nil {
		s.cache = make(map[string]kvCacheEntry)
	}
	if len(s.cache) >= size {
		for k, e := range s.cache {
			if !now.Before(e.expires) {
				delete(s.cache, k)
			}
		}
		if len(s.cache) >= size {
			clear(s.cache) // all fresh: a flood of distinct names; start over
		}
	}
	s.cache[name] = kvCacheEntry{values: vals, expires: began.Add(ttl)}
}

func (s *KVStore) forget(name string) {
	s.mu.Lock()
	s.gen++
	delete(s.cache, name)
	s.mu.Unlock()
}

// AddTXT implements RecordWriter.
func (s *KVStore) AddTXT(ctx context.Context, name, value string) error {
	name = canonicalName(name)
	if err := checkRecord(name, value); err != nil {
		return err
	}
	defer s.forget(name)
	dir := s.nameKey(name)
	key := dir + "/" + valueKey(value)
	keys, err := s.KV.ListKeys(ctx, dir, false)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("dnsserver: adding TXT record at %s: %w", name, err)
	}
	if len(keys) >= maxTXTPerName && !slices.Contains(keys, key) {
		return fmt.Errorf("%w: already %d TXT values at %s", ErrInvalidRecord, len(keys), name)
	}
	if err := s.KV.PutKey(ctx, key, []byte(value)); err != nil {
		return fmt.Errorf("dnsserver: adding TXT record at %s: %w", name, err)
	}
	return nil
}

// DeleteTXT implements RecordWriter.
func (s *KVStore) DeleteTXT(ctx context.Context, name, value string) error {
	name = canonicalName(name)
	if !validName(name) {
		return nil
	}
	defer s.forget(name)
	key := s.nameKey(name)
	if value != "" {
		key += "/" + valueKey(value)
	}
	if err := s.KV.DeleteKey(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("dnsserver: deleting TXT record at %s: %w", name, err)
	}
	return nil
}

// ListTXT implements TXTLister. It does not use the cache.
func (s *KVStore) ListTXT(ctx context.Context) (map[string][]string, error) {
	prefix := s.prefix()
	keys, err := s.KV.ListKeys(ctx, prefix, true)
	if errors.Is(err, store.ErrNotFound) {
		return map[string][]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dnsserver: listing TXT records: %w", err)
	}
	out := make(map[string][]string)
	for _, k := range keys {
		rest, ok := strings.CutPrefix(k, prefix+"/")
		name, _, ok2 := strings.Cut(rest, "/")
		if !ok || !ok2 {
			continue
		}
		v, err := s.KV.GetKey(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dnsserver: listing TXT records: %w", err)
		}
		out[name+"."] = append(out[name+"."], string(v))
	}
	for _, vals := range out {
		slices.Sort(vals)
	}
	return out, nil
}
