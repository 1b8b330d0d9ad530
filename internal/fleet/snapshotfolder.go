// The snapshot folder: a snapshot made of parts, so that a write costs what
// changed since the last one, not the whole snapshot.
//
//	<data>/snapshot/                          0700
//	  manifest.json                           names every part below; written last
//	  services-<shard>-<digest>.bin           the services whose ID hashes to <shard> (of 256)
//	  hot-<digest>.bin                        the services with a hostname in certnames, again
//	  certnames-<digest>.json                 the certificate leaf of each hostname that had one
//	  tokens-<digest>.json                    token look-ups, suspended projects
//	  keys-<random>.json                      ticket, ECH and QUIC keys, sealed
//	  certs/pack-<random>.bin                 certificates: chains, and keys sealed (certpack.go)
//
// Every part is named for its content (the keys for a random name: a hash
// of secret keys stays out of the file names), written 0600 through a
// rename and never rewritten in place; the manifest is renamed over the
// previous one only once every part it names is on disk (and the folder
// synced), and the parts the previous manifest named alone are deleted
// only after that. A crash at any point leaves the previous snapshot (or
// the new one) whole: the manifest on disk names only parts that are on
// disk.

package fleet

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/store"
)

const (
	manifestFile = "manifest.json"
	certsDir     = "certs"
	// folderVersion 6: certificate packs (manifest.CertPacks) instead
	// of a file per certificate (certs/<leaf SHA-256>[-<key ID>].json,
	// certFileName); 5: a hot part (manifest.Hot); 4: the services parts
	// in binary (shardMagic); 3: in JSON, and 2: each also held its
	// hostnames' certificate leaves (all read still, a part by its name's
	// extension).
	folderVersion = 6
	shardCount    = 256
)

// manifest is the content of manifestFile.
type manifest struct {
	Version   int       `json:"version"`
	WrittenAt time.Time `json:"written_at"`
	// KeyID is the keyring key the certificates were sealed with ("":
	// written without a keyring); before version 6, part of their files'
	// names.
	KeyID  string   `json:"key_id,omitempty"`
	Shards []string `json:"shards"` // the services parts, by shard; none for an empty shard
	// CertNames is the part naming each hostname's certificate ("": none),
	// apart from the shards so that certificates loaded or renewed
	// (a node's warm-up loads thousands) rewrite it alone, not the
	// shards of their services.
	CertNames string `json:"cert_names,omitempty"`
	// Hot is the part holding, once more, the services that have a
	// hostname in CertNames ("": none), in the services parts' encoding:
	// the names a node started from the snapshot with the store away can
	// serve at once, read before the services parts (a few seconds at a
	// million services). Services counts the services of every shard.
	Hot      string `json:"hot,omitempty"`
	Services int    `json:"services"`
	// CertPacks are the certificate packs in certsDir that hold the
	// certificates of CertNames (version 6).
	CertPacks []string `json:"cert_packs,omitempty"`
	Tokens    string   `json:"tokens"`
	Keys      string   `json:"keys"`
}

// shardPart is the content of a services part.
type shardPart struct {
	Services []store.Service `json:"services"`
	// Certs, in a folder of version 2 only, is certNamesPart's Certs for
	// the hostnames of Services.
	Certs map[string]string `json:"certs,omitempty"`
}

// certNamesPart is the content of the certificate names part.
type certNamesPart struct {
	// Certs is the SHA-256 (hex) of the leaf of the certificate in memory
	// for each hostname that had one.
	Certs map[string]string `json:"certs"`
}

// tokensPart is the content of the tokens part.
type tokensPart struct {
	TokenHashes    []TokenLookup `json:"token_hashes,omitempty"`
	TokensComplete bool          `json:"tokens_complete,omitempty"`
	Suspended      []string      `json:"suspended_projects,omitempty"`
}

// keysPart is the content of the keys part: the Snapshot fields of the
// ticket, ECH and QUIC keys, sealed (or, written without a keyring, not).
type keysPart struct {
	TicketKeys       [][]byte        `json:"ticket_keys,omitempty"`
	SealedTicketKeys string          `json:"sealed_ticket_keys,omitempty"`
	ECHKeys          json.RawMessage `json:"ech_keys,omitempty"`
	SealedECHKeys    string          `json:"sealed_ech_keys,omitempty"`
	QUICKeys         []byte          `json:"quic_keys,omitempty"`
	SealedQUICKeys   string          `json:"sealed_quic_keys,omitempty"`
}

// certPart is the content of a certificate's file: SnapshotCert without
// its names (they are the services parts').
type certPart struct {
	ChainPEM string `json:"chain_pem"`
	KeyPEM   string `json:"key_pem"`
}

// shardOf is the shard of a service: FNV-1a of its ID, stable across
// releases (the parts' names depend on it).
func shardOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % shardCount)
}

// certFileName is the name, in certsDir, of the file of the certificate
// whose leaf has SHA-256 leaf (hex), its key sealed with keyID: a
// folder's of version 5 and older.
func certFileName(leaf, keyID string) string {
	if keyID == "" {
		return leaf + ".json"
	}
	return leaf + "-" + keyID + ".json"
}

// appendService appends an encoding of every field of s to b: the input of
// a shard's digest. Lengths prefix the strings, so that no two services
// encode alike; TestAppendServiceCoversEveryField checks that a change of
// any field of store.Service changes the encoding.
func appendService(b []byte, s *store.Service) []byte {
	str := func(v string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	list := func(v []string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		for _, e := range v {
			str(e)
		}
	}
	str(s.ID)
	str(s.ProjectID)
	str(s.Name)
	str(s.Domain)
	list(s.Hostnames)
	list(s.Upstreams)
	b = binary.AppendVarint(b, int64(s.HSTSMaxAge))
	str(s.HealthPath)
	b = binary.AppendVarint(b, int64(s.HealthInterval))
	str(s.ClientCA)
	str(s.ClientAuth)
	for _, t := range []time.Time{s.CreatedAt, s.UpdatedAt} {
		tb, _ := t.MarshalBinary() // fails only for a year outside [-32768, 32767]
		str(string(tb))
	}
	return b
}

// shardMagic begins a services part: then the number of services, then
// each one's appendService encoding. Decoding it is a tenth of decoding
// the JSON parts of folder version 3 (4.6 s of one core at a million
// services, most of a node's start from its snapshot), and a third of the
// bytes (JSON repeated every field's name).
const shardMagic = "spine services 1\n"

// decodeShard decodes a services part (encodeShard's), yielding through
// y. Every string of the services is a piece of one copy of b.
func decodeShard(b []byte, y *sched.Yielder) ([]store.Service, error) {
	d := partDecoder{s: string(b)}
	if !strings.HasPrefix(d.s, shardMagic) {
		return nil, errors.New("not a services part")
	}
	d.i = len(shardMagic)
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.s)) { // each service takes more than a byte
		return nil, errShortPart
	}
	out := make([]store.Service, 0, n)
	for i := range n {
		if i%64 == 0 {
			y.Maybe()
		}
		var v store.Service
		v.ID, v.ProjectID, v.Name, v.Domain = d.str(), d.str(), d.str(), d.str()
		v.Hostnames, v.Upstreams = d.list(), d.list()
		v.HSTSMaxAge = int(d.varint())
		v.HealthPath = d.str()
		v.HealthInterval = time.Duration(d.varint())
		v.ClientCA, v.ClientAuth = d.str(), d.str()
		v.CreatedAt, v.UpdatedAt = d.time(), d.time()
		if d.err != nil {
			return nil, d.err
		}
		out = append(out, v)
	}
	if d.i != len(d.s) {
		return nil, fmt.Errorf("%d bytes after the last service", len(d.s)-d.i)
	}
	return out, nil
}

// partDecoder reads appendService's encoding from s at i; the first
// error stops it (every later read returns zero).
type partDecoder struct {
	s   string
	i   int
	err error
}

var errShortPart = errors.New("the services part is cut short")

func (d *partDecoder) uvarint() uint64 {
	var x uint64
	for shift := uint(0); d.err == nil; shift += 7 {
		if d.i >= len(d.s) || shift > 63 {
			d.err = errShortPart
			break
		}
		c := d.s[d.i]
		d.i++
		if c < 0x80 {
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
	}
	return 0
}

func (d *partDecoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1) // binary.AppendVarint's zig-zag
}

func (d *partDecoder) str() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.s)-d.i) {
		d.err = errShortPart
		return ""
	}
	v := d.s[d.i : d.i+int(n)]
	d.i += int(n)
	return v
}

func (d *partDecoder) list() []string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.s)-d.i) { // each string takes a byte at least
		d.err = errShortPart
		return nil
	}
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

func (d *partDecoder) time() time.Time {
	b := d.str()
	var t time.Time
	if d.err == nil {
		if err := t.UnmarshalBinary([]byte(b)); err != nil {
			d.err = fmt.Errorf("a service's time: %w", err)
		}
	}
	return t
}

// partName is a content-addressed part's name: prefix, then 32 hex digits
// of the SHA-256 of what it was made from.
func partName(prefix string, sum [sha256.Size]byte) string {
	return prefix + hex.EncodeToString(sum[:16]) + ".json"
}

// readFolder reads the snapshot of folder dir, its keys still sealed; an
// error satisfies errors.Is(err, fs.ErrNotExist) if dir has no manifest.
// With hotFirst, a folder with a hot part (manifest.Hot) is read without
// its services parts: Services holds the hot services, and
// Snapshot.ReadServices reads every service later.
func readFolder(dir string, hotFirst bool) (*Snapshot, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("fleet: reading the snapshot's manifest: %w", err)
	}
	if m.Version < 2 || m.Version > folderVersion {
		return nil, fmt.Errorf("fleet: the snapshot's manifest has version %d; this program reads %d", m.Version, folderVersion)
	}
	s := &Snapshot{Version: snapshotVersion, WrittenAt: m.WrittenAt}
	read := func(sub, name string, v any) error {
		if !partNameOK(name) {
			return fmt.Errorf("fleet: the snapshot's manifest names a part %q", name)
		}
		b, err := os.ReadFile(filepath.Join(dir, sub, name))
		if err != nil {
			return fmt.Errorf("fleet: reading the snapshot: %w", err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("fleet: reading the snapshot's %s: %w", name, err)
		}
		return nil
	}
	names := map[string][]string{} // hostnames by leaf
	if hotFirst && m.Hot != "" {
		hot, err := readServicesPart(dir, m.Hot, new(sched.Yielder))
		if err != nil {
			return nil, err
		}
		slices.SortFunc(hot, compareByName)
		s.Services, s.count = hot, m.Services
		s.rest = func() ([]store.Service, error) {
			svcs, _, err := readShards(dir, m.Shards)
			return svcs, err
		}
	} else {
		svcs, certs, err := readShards(dir, m.Shards)
		if err != nil {
			return nil, err
		}
		s.Services = svcs
		for host, leaf := range certs {
			names[leaf] = append(names[leaf], host)
		}
	}
	if m.CertNames != "" {
		var cp certNamesPart
		if err := read("", m.CertNames, &cp); err != nil {
			return nil, err
		}
		for host, leaf := range cp.Certs {
			names[leaf] = append(names[leaf], host)
		}
	}
	var tp tokensPart
	if err := read("", m.Tokens, &tp); err != nil {
		return nil, err
	}
	s.TokenHashes, s.TokensComplete, s.Suspended = tp.TokenHashes, tp.TokensComplete, tp.Suspended
	var kp keysPart
	if err := read("", m.Keys, &kp); err != nil {
		return nil, err
	}
	s.TicketKeys, s.SealedTicketKeys = kp.TicketKeys, kp.SealedTicketKeys
	s.ECHKeys, s.SealedECHKeys = kp.ECHKeys, kp.SealedECHKeys
	s.QUICKeys, s.SealedQUICKeys = kp.QUICKeys, kp.SealedQUICKeys
	leaves := slices.Sorted(maps.Keys(names))
	s.Certificates = make([]SnapshotCert, len(leaves))
	// set records the certificate of leaf i, read from file (its name, for
	// errors): it must hold that leaf, its name says which hostnames it
	// serves.
	set := func(i int, c certPart, file string) error {
		leaf := leaves[i]
		if block, _ := pem.Decode([]byte(c.ChainPEM)); block == nil || hex.EncodeToString(sha256Sum(block.Bytes)) != leaf {
			return fmt.Errorf("fleet: the snapshot's certificate file %s does not hold certificate %s", file, leaf)
		}
		hosts := names[leaf]
		slices.Sort(hosts)
		s.Certificates[i] = SnapshotCert{Names: hosts, ChainPEM: c.ChainPEM, KeyPEM: c.KeyPEM}
		return nil
	}
	if m.Version < 6 {
		err = inParallel(len(leaves), func(i int) error {
			var c certPart
			file := certFileName(leaves[i], m.KeyID)
			if err := read(certsDir, file, &c); err != nil {
				return err
			}
			return set(i, c, file)
		})
	} else {
		err = readCertPacks(dir, m.CertPacks, leaves, set)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// readCertPacks reads the certificate packs of folder dir named packs,
// on every processor, and calls set with the certificate of each of
// leaves (SHA-256, hex, sorted), which must all be there.
func readCertPacks(dir string, packs []string, leaves []string, set func(i int, c certPart, file string) error) error {
	var mu sync.Mutex
	found := make([]bool, len(leaves))
	err := inParallel(len(packs), func(i int) error {
		name := packs[i]
		if !certPackNameOK(name) {
			return fmt.Errorf("fleet: the snapshot's manifest names a certificate pack %q", name)
		}
		b, err := os.ReadFile(filepath.Join(dir, certsDir, name))
		if err != nil {
			return fmt.Errorf("fleet: reading the snapshot: %w", err)
		}
		p, parts, err := decodeCertPack(b)
		if err != nil {
			return fmt.Errorf("fleet: reading the snapshot's %s: %w", name, err)
		}
		var hexLeaf [2 * sha256.Size]byte
		for j := range p.leaves {
			hex.Encode(hexLeaf[:], p.leaves[j][:])
			k, ok := slices.BinarySearch(leaves, string(hexLeaf[:]))
			if !ok {
				continue // no longer named: a pack keeps it until half of it is gone
			}
			mu.Lock()
			dup := found[k]
			found[k] = true
			mu.Unlock()
			if dup {
				continue
			}
			var c certPart
			if err := json.Unmarshal(parts[j], &c); err != nil {
				return fmt.Errorf("fleet: reading the snapshot's %s: %w", name, err)
			}
			if err := set(k, c, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if k := slices.Index(found, false); k >= 0 {
		return fmt.Errorf("fleet: the snapshot names certificate %s, in none of its packs", leaves[k])
	}
	return nil
}

// partNameOK reports whether the manifest may name a part name: a file of
// the folder (or of certsDir), not hidden.
func partNameOK(name string) bool {
	return name != "" && name == filepath.Base(name) && !strings.HasPrefix(name, ".")
}

// readServicesPart reads and decodes the services part name of folder dir.
func readServicesPart(dir, name string, y *sched.Yielder) ([]store.Service, error) {
	if !partNameOK(name) {
		return nil, fmt.Errorf("fleet: the snapshot's manifest names a part %q", name)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("fleet: reading the snapshot: %w", err)
	}
	svcs, err := decodeShard(b, y)
	if err != nil {
		return nil, fmt.Errorf("fleet: reading the snapshot's %s: %w", name, err)
	}
	return svcs, nil
}

// readShards reads the services parts of folder dir, on every processor,
// and returns their services in the order of a sync (the store's: by
// project, then name) and, of a folder of version 2, the certificate leaf
// of each hostname that had one. It lets other goroutines run every
// sched.Slice: a node started from its snapshot serves its hot names
// while it reads the rest (4 s of one processor at a million services).
func readShards(dir string, names []string) ([]store.Service, map[string]string, error) {
	shards := make([]shardPart, len(names))
	if err := inParallel(len(names), func(i int) error {
		var y sched.Yielder
		name := names[i]
		if strings.HasSuffix(name, ".bin") {
			svcs, err := readServicesPart(dir, name, &y)
			if err != nil {
				return err
			}
			shards[i].Services = svcs
		} else { // folder version 2 or 3, or its parts kept
			if !partNameOK(name) {
				return fmt.Errorf("fleet: the snapshot's manifest names a part %q", name)
			}
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return fmt.Errorf("fleet: reading the snapshot: %w", err)
			}
			if err := json.Unmarshal(b, &shards[i]); err != nil {
				return fmt.Errorf("fleet: reading the snapshot's %s: %w", name, err)
			}
		}
		y.Maybe()
		slices.SortFunc(shards[i].Services, compareByName) // a few thousand at a million services
		return nil
	}); err != nil {
		return nil, nil, err
	}
	var certs map[string]string
	parts := make([][]store.Service, len(shards))
	for i := range shards {
		parts[i] = shards[i].Services
		for host, leaf := range shards[i].Certs {
			if certs == nil {
				certs = map[string]string{}
			}
			certs[host] = leaf
		}
	}
	return mergeByName(parts, new(sched.Yielder)), certs, nil
}

// compareByName orders services as the store lists them: by project, then
// name.
func compareByName(a, b store.Service) int { return compareNames(&a, &b) }

// compareNames is compareByName without copying the services (the merge's
// heap compares a million times over).
func compareNames(a, b *store.Service) int {
	if c := strings.Compare(a.ProjectID, b.ProjectID); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// mergeByName merges parts, each sorted by compareByName, into one list so
// sorted, yielding through y (a sort of a million services held the
// processor 1.3 s). Each part is set to nil once merged.
func mergeByName(parts [][]store.Service, y *sched.Yielder) []store.Service {
	n := 0
	h := make(byHead, 0, len(parts))
	for i, p := range parts {
		n += len(p)
		if len(p) > 0 {
			h = append(h, &parts[i])
		}
	}
	out := make([]store.Service, 0, n)
	heap.Init(&h)
	for len(h) > 0 {
		if len(out)%64 == 0 {
			y.Maybe()
		}
		p := h[0]
		out = append(out, (*p)[0])
		if *p = (*p)[1:]; len(*p) == 0 {
			*p = nil
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	return out
}

// byHead is a heap of non-empty sorted lists of services by their first.
type byHead []*[]store.Service

func (h byHead) Len() int           { return len(h) }
func (h byHead) Less(i, j int) bool { return compareNames(&(*h[i])[0], &(*h[j])[0]) < 0 }
func (h byHead) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byHead) Push(x any)        { *h = append(*h, x.(*[]store.Service)) }
func (h *byHead) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func sha256Sum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}

// inParallel calls f(0) to f(n-1), GOMAXPROCS at a time, and returns the
// first error (of the lowest i).
func inParallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := range next {
				errs[i] = f(i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
