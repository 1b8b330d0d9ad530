package fleet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/sched"
	"github.com/spine-platform/spine/internal/secrets"
	"github.com/spine-platform/spine/internal/store"
)

const (
	snapshotInterval = 5 * time.Second // how often new certificates are looked for
	snapshotSettle   = 3 * time.Second // from start to the first write
	// After Due, a write waits until no Due came for snapshotQuiet, and
	// at most snapshotMaxWait: see Run.
	snapshotQuiet   = time.Second
	snapshotMaxWait = snapshotInterval
	// snapshotRescan bounds how long a write keeps the certificates it
	// found for a shard without looking them up again
	// (SnapshotSource.CertificatesVersion).
	snapshotRescan = time.Minute
	// rescanPace spaces the look-ups of every hostname's certificate
	// that a new CertificatesVersion asks for: at least rescanPace times
	// the last one's duration from its start, so that they take at most
	// a twentieth of the time (at a million hostnames about 1.2 s each,
	// so every 25 s instead of every write: the look-ups took a quarter
	// of the processor while handshakes loaded certificates; BENCHMARKS.md
	// "... and the certificate cache's eviction"). Below a few hundred thousand
	// hostnames this is under snapshotInterval, and changes nothing.
	rescanPace = 20
)

// SnapshotSource is what a snapshot is written from: the node's state at
// the time of a write.
type SnapshotSource struct {
	// Shards are the services of the last successful sync, by shard: a
	// write lists and digests only the shards whose version changed since
	// it last did.
	Shards ServiceShards
	// Services, if Shards is nil, are those services, and Sum their
	// fingerprint (a change of Sum is a change of Services): a write after
	// a change of Sum digests every shard.
	Services []store.Service
	Sum      [sha256.Size]byte
	// Certificate returns the certificate in memory for a hostname, or
	// nil. It must never read the store: a write then holds at most what
	// the certificate cache holds, and never loads the others.
	Certificate func(host string) *tls.Certificate
	// CertificatesVersion, if set, changes whenever Certificate may give
	// a hostname a certificate it did not give before, except for a
	// hostname whose service changed (its shard's version changes). A
	// write then looks up the certificates of the shards whose version
	// changed only, and those of every hostname when it changed, at the
	// first write and at least every snapshotRescan (a certificate that
	// left the cache leaves the snapshot then; one replaced after the
	// version was read is found then). If nil, every write looks up every
	// hostname.
	CertificatesVersion func() uint64
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

// ServiceShards are the services of a snapshot by shard: shard i of n
// holds the services whose ID's FNV-1a hash is i modulo n (shardOf, with
// n = 256). *serving.AppliedServices satisfies it. Its methods must be
// safe to call from the writer's goroutine while the node applies later
// changes (an immutable state).
type ServiceShards interface {
	// ShardVersion returns the version of shard i of n: two answers with
	// the same version hold the same services.
	ShardVersion(i, n int) uint64
	// AppendShardServices appends the services of shard i of n to dst,
	// in an order that depends on their IDs only, and returns the
	// extended slice (the writer reuses one for every shard). The caller
	// must not modify the services' slices.
	AppendShardServices(dst []store.Service, i, n int) []store.Service
	// ShardHostnames yields the hostnames of the services of shard i of
	// n, in any order.
	ShardHostnames(i, n int) iter.Seq[string]
	// AppendShardServicesOf is AppendShardServices for the services of
	// shard i of n that have a hostname for which has reports true; it
	// copies no other service.
	AppendShardServicesOf(dst []store.Service, i, n int, has func(host string) bool) []store.Service
}

// listShards are the ServiceShards of a list of services (a
// SnapshotSource without Shards), every shard at version ver.
type listShards struct {
	svcs []store.Service
	ver  uint64
	idx  *[shardCount][]int // by shard, made on first use
}

func (l *listShards) ShardVersion(int, int) uint64 { return l.ver }

func (l *listShards) AppendShardServices(dst []store.Service, i, _ int) []store.Service {
	if l.idx == nil {
		l.idx = new([shardCount][]int)
		for j := range l.svcs {
			sh := shardOf(l.svcs[j].ID)
			l.idx[sh] = append(l.idx[sh], j)
		}
	}
	for _, j := range l.idx[i] {
		dst = append(dst, l.svcs[j])
	}
	return dst
}

func (l *listShards) AppendShardServicesOf(dst []store.Service, i, n int, has func(string) bool) []store.Service {
	for _, sv := range l.AppendShardServices(nil, i, n) {
		if slices.ContainsFunc(sv.Hostnames, has) {
			dst = append(dst, sv)
		}
	}
	return dst
}

func (l *listShards) ShardHostnames(i, n int) iter.Seq[string] {
	return func(yield func(string) bool) {
		for _, sv := range l.AppendShardServices(nil, i, n) {
			for _, h := range sv.Hostnames {
				if !yield(h) {
					return
				}
			}
		}
	}
}

// SnapshotWriter writes the snapshot folder (SnapshotDir, snapshotfolder.go)
// and keeps, between writes, what it needs to write only the parts that
// changed: the manifest on disk, the certificate packs there, the version
// (ServiceShards) and part name of each service shard as last digested,
// and the leaf digest of each certificate of the last write. At a million
// hostnames the single file of older releases was 294 MB, re-encoded and
// rewritten whole for each new certificate; a write now lists, digests
// and writes the shards whose version changed, and writes the new
// certificates (in packs: certpack.go), the certificate names and the
// manifest. It looks up the
// certificates of the hostnames of the shards it listed, and of every
// hostname when SnapshotSource.CertificatesVersion changed (or is not
// given), and at least every snapshotRescan.
//
// What it keeps is bounded by one write: the manifest (≤ 256 shards), 256
// shard versions and names, the index of each certificate pack on disk
// (≤ twice the certificates the manifest names, 32 bytes each),
// per shard the hostnames that had a certificate in memory at their last
// look-up with its leaf digest (at most the certificates in memory then);
// each write replaces them whole. Between rescans the snapshot may hold a
// certificate that has left the cache since (still valid: it was served),
// and lack a renewed one loaded under a version already seen.
type SnapshotWriter struct {
	dir    string // SnapshotDir's path
	legacy string // SnapshotFile's path, removed after the first write
	source func() *SnapshotSource
	log    *slog.Logger
	due    chan struct{} // capacity 1: write now

	loaded bool     // cur and packs were read from disk
	cur    manifest // the manifest on disk
	// packs are the certificate packs in certsDir (certpack.go) by name,
	// with what they hold: those cur names, and those a write put there
	// since, until removeUnnamed deletes them. swept: since load,
	// removeUnnamed listed certsDir once, so packs holds every file there
	// and later removals need no listing.
	packs map[string]certPack
	swept bool
	// named, stored, byLeaf and scratch are reused from write to write
	// (their contents are one write's): at 10,000 certificates in memory
	// a write made them anew, with a file name and a hex string per
	// certificate, 24 MB of garbage each time a certificate entered the
	// cache (BenchmarkSnapshot's shards-certs).
	named   map[[sha256.Size]byte]bool
	stored  map[[sha256.Size]byte]bool
	byLeaf  map[[sha256.Size]byte]*tls.Certificate
	scratch []byte
	// shardVers are the ServiceShards versions of the shards as last
	// digested (valid once shardsKnown), shardNames their parts' names
	// ("": no service).
	shardVers   [shardCount]uint64
	shardNames  [shardCount]string
	shardLens   [shardCount]int // their services
	shardsKnown bool
	// hot are, by shard, the services of the hot part (manifest.Hot) as
	// last made: those with a hostname in pairs, as of a version of the
	// shard (at most the certificates in memory).
	hot [shardCount]hotShard
	// pairs are the hostnames of each shard that had a certificate in
	// memory when it was last looked up, by hostname, with its leaf's
	// digest (at most the certificates in memory); certsVersion the
	// CertificatesVersion and rescanned the time of the last look-up of
	// every hostname, scanCost how long it took (rescanPace).
	pairs        [shardCount][]hostLeaf
	certsVersion uint64
	rescanned    time.Time
	scanCost     time.Duration
	// leaves are leaf digests of recent writes, by the first byte of the
	// leaf (the same in every copy of a tls.Certificate); replaced at each
	// look-up of every hostname.
	leaves map[*byte][sha256.Size]byte
	// spareLeaves is the map leaves replaced, emptied, for the next rescan.
	spareLeaves map[*byte][sha256.Size]byte
	tokensKey   string            // what cur.Tokens was made from ("": not by this writer)
	keysSum     [sha256.Size]byte // what cur.Keys was made from (zero: not by this writer)
	unclean     bool              // files cur does not name may be left: remove them

	// step, if set, is called after each file a write puts on disk (and
	// before it deletes the parts of the previous snapshot), with the
	// file's name; an error stops the write there, as a crash would
	// (tests).
	step func(name string) error
	// wrote counts the files and bytes of the last Write, the service
	// shards it listed and digested, those whose hostnames' certificates
	// it looked up, and the certificates it put in packs (tests,
	// benchmarks).
	wrote struct{ files, bytes, shards, scanned, certs int64 }
}

// NewSnapshotWriter returns a writer of dir's snapshot folder. source
// returns what to write, or nil while there is nothing to write yet (no
// sync succeeded).
func NewSnapshotWriter(dir string, source func() *SnapshotSource, log *slog.Logger) *SnapshotWriter {
	return &SnapshotWriter{dir: filepath.Join(dir, SnapshotDir), legacy: filepath.Join(dir, SnapshotFile),
		source: source, log: log, due: make(chan struct{}, 1)}
}

// Due asks Run for a write soon (after a sync that changed something).
func (w *SnapshotWriter) Due() {
	select {
	case w.due <- struct{}{}:
	default:
	}
}

// Run writes the snapshot after Due is called, and every few seconds when
// a certificate was obtained or loaded meanwhile, until ctx ends. The first
// write waits snapshotSettle after start: a restart is when every client
// reconnects at once, and the file from before the restart still holds a
// good snapshot meanwhile.
//
// A write after Due waits until no further Due came for snapshotQuiet (at
// most snapshotMaxWait after the first): a burst of changes costs one
// write, and the work a change starts is not slowed by it. A write lists
// and digests only the service shards a change touched (and, with a
// CertificatesVersion, looks up their hostnames' certificates only), but
// a write after a certificate entered the cache looks up every hostname's
// (BENCHMARKS.md), and on a node with one processor a goroutine waiting for the network (a
// PostgreSQL query of the new hostname's first certificate) runs only
// when the runtime next polls the network, about every 10 ms while such a
// loop runs: when a write read every service, a created service answered
// in 120-730 ms instead of 30-80 ms at 100k hostnames on PostgreSQL. The
// snapshot is then at most snapshotQuiet (under a stream of changes,
// snapshotMaxWait) behind the edge.
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
		t.Reset(snapshotInterval) // no tick stale from before this write
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			select {
			case <-w.due: // a change too: its write waits as below
			default:
				continue
			}
		case <-w.due:
		}
		if !w.quiet(ctx) {
			return
		}
	}
}

// quiet waits until no Due came for snapshotQuiet, or snapshotMaxWait
// passed. It reports false if ctx ended first.
func (w *SnapshotWriter) quiet(ctx context.Context) bool {
	limit := time.NewTimer(snapshotMaxWait)
	defer limit.Stop()
	q := time.NewTimer(snapshotQuiet)
	defer q.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-limit.C:
			return true
		case <-q.C:
			return true
		case <-w.due:
			q.Reset(snapshotQuiet)
		}
	}
}

// Write writes the services, the certificates in memory for their
// hostnames (a hostname whose certificate is only in the store is routed
// but not served while the store is away), the ticket, ECH and QUIC keys
// and the token look-ups: the parts of them that changed since the last
// write, then the manifest that names them all, then it deletes the parts
// that only the previous manifest named. It writes nothing if there is
// nothing to write yet or if nothing changed. Write is not safe for
// concurrent use.
func (w *SnapshotWriter) Write() error {
	src := w.source()
	if src == nil {
		return nil
	}
	w.wrote = struct{ files, bytes, shards, scanned, certs int64 }{}
	if !w.loaded {
		w.load()
	}
	keyID := ""
	if !src.Keyring.Empty() {
		keyID = src.Keyring.IDs()[0]
	}
	// No client waits for the snapshot: it holds off while handshakes load
	// certificates (sched.HoldOff).
	y := sched.Yielder{Background: true}

	// The services of each shard whose version changed since the last
	// write: listed, digested, and written if no part of that content is
	// on disk. The others cost a look-up of their version.
	shards := src.Shards
	if shards == nil {
		shards = &listShards{svcs: src.Services, ver: binary.BigEndian.Uint64(src.Sum[:8])}
	}
	onDisk := map[string]bool{}
	for _, name := range w.cur.Shards {
		onDisk[name] = true
	}
	next := manifest{Version: folderVersion, KeyID: keyID}
	var shardVers [shardCount]uint64
	var shardNames [shardCount]string
	var shardLens [shardCount]int
	wroteShards := false
	var listed [shardCount]bool
	var svcs []store.Service // one shard's services, the slice reused for the next
	for sh := range shardCount {
		v := shards.ShardVersion(sh, shardCount)
		shardVers[sh] = v
		if w.shardsKnown && v == w.shardVers[sh] {
			shardNames[sh], shardLens[sh] = w.shardNames[sh], w.shardLens[sh]
		} else {
			listed[sh] = true
			y.Maybe()
			svcs = shards.AppendShardServices(svcs[:0], sh, shardCount)
			w.wrote.shards++
			shardLens[sh] = len(svcs)
			name, err := shardPartName(sh, svcs, &y)
			if err != nil {
				return err
			}
			shardNames[sh] = name
			if name != "" && !onDisk[name] {
				if err := w.writePart(name, func(f *bufio.Writer) error { return encodeShard(f, svcs, &y) }); err != nil {
					return err
				}
				wroteShards = true
			}
		}
		if shardNames[sh] != "" {
			next.Shards = append(next.Shards, shardNames[sh])
		}
		next.Services += shardLens[sh]
	}

	// The certificate of each hostname: looked up for the shards listed
	// above, or for every shard when the certificates may have changed
	// (a cheap look-up each; the leaf digests are the last writes', for
	// the same certificate).
	var certsVersion uint64
	if src.CertificatesVersion != nil {
		certsVersion = src.CertificatesVersion() // before the look-ups: a change during them is seen next time
	}
	now := time.Now()
	// A new version asks for a look-up of every hostname, at most as
	// often as rescanPace allows: at a million hostnames one costs a
	// second of a processor, and a node loading certificates for
	// handshakes moves the version at every write.
	paced := now.Sub(w.rescanned) >= w.scanCost*rescanPace
	rescan := src.CertificatesVersion == nil || w.leaves == nil || certsVersion != w.certsVersion && paced ||
		keyID != w.cur.KeyID || now.Sub(w.rescanned) >= snapshotRescan
	leaves := w.leaves
	if rescan || leaves == nil {
		leaves, w.spareLeaves = w.spareLeaves, nil
		if leaves == nil {
			leaves = map[*byte][sha256.Size]byte{}
		}
	}
	if w.byLeaf == nil {
		w.byLeaf = map[[sha256.Size]byte]*tls.Certificate{}
	}
	byLeaf := w.byLeaf
	clear(byLeaf)
	defer clear(byLeaf) // no certificate kept past the write
	var pairs [shardCount][]hostLeaf
	n := 0
	scanStart := time.Now()
	for sh := range shardCount {
		if !rescan && !listed[sh] {
			pairs[sh] = w.pairs[sh]
			continue
		}
		w.wrote.scanned++
		pairs[sh] = make([]hostLeaf, 0, len(w.pairs[sh])) // about as many as last time
		for h := range shards.ShardHostnames(sh, shardCount) {
			n++
			y.Every(n)
			cert := src.Certificate(h)
			if cert == nil || len(cert.Certificate) == 0 || len(cert.Certificate[0]) == 0 {
				continue
			}
			id := &cert.Certificate[0][0] // the same for each copy of the certificate
			leaf, ok := leaves[id]
			if !ok {
				if leaf, ok = w.leaves[id]; !ok {
					leaf = sha256.Sum256(cert.Certificate[0])
				}
				leaves[id] = leaf
			}
			byLeaf[leaf] = cert
			pairs[sh] = append(pairs[sh], hostLeaf{h, leaf})
		}
		slices.SortFunc(pairs[sh], func(a, b hostLeaf) int { return strings.Compare(a.host, b.host) })
	}
	if rescan {
		w.scanCost = time.Since(scanStart)
	}

	// The certificate names part: named by a digest of the pairs, written
	// (encodeCertNames) only when that changed.
	if nPairs(&pairs) > 0 {
		h := sha256.New()
		for _, ps := range pairs {
			for _, p := range ps {
				b := binary.AppendUvarint(w.scratch[:0], uint64(len(p.host)))
				b = append(append(b, p.host...), p.leaf[:]...)
				h.Write(b)
				w.scratch = b
			}
		}
		var sum [sha256.Size]byte
		next.CertNames = partName("certnames-", [sha256.Size]byte(h.Sum(sum[:0])))
	}
	writeCertNames := next.CertNames != "" && next.CertNames != w.cur.CertNames
	// The hot part: the services of the hostnames above, read first by a
	// node that starts from the snapshot.
	// Its digest is taken shard by shard; the services are put in one
	// list only when the part is written (most writes leave it as is).
	hot := w.hotServices(shards, &shardVers, &pairs, &y)
	hotDigest, nHot := sha256.New(), 0
	var buf []byte
	for sh := range hot {
		for i := range hot[sh].svcs {
			if nHot++; nHot%64 == 0 {
				y.Maybe()
			}
			buf = appendService(buf[:0], &hot[sh].svcs[i])
			hotDigest.Write(buf)
		}
	}
	if nHot > 0 {
		var sum [sha256.Size]byte
		next.Hot = "hot-" + hex.EncodeToString(hotDigest.Sum(sum[:0])[:16]) + ".bin"
	}

	// The certificate packs: those of the manifest on disk that stay, and
	// the certificates in none of them, for new packs.
	keptPacks, certsToWrite := w.planPacks(&pairs, byLeaf, keyID)
	next.CertPacks = keptPacks

	tokens, tokensKey := w.cur.Tokens, fmt.Sprint(src.TokensVersion, src.TokensComplete, src.Suspended)
	var tokensJSON []byte
	if tokensKey != w.tokensKey || tokens == "" {
		b, err := json.Marshal(tokensPart{TokenHashes: tokenLookups(src.Tokens), TokensComplete: src.TokensComplete, Suspended: src.Suspended})
		if err != nil {
			return fmt.Errorf("fleet: encoding the snapshot's tokens: %w", err)
		}
		if tokens = partName("tokens-", sha256.Sum256(b)); tokens != w.cur.Tokens {
			tokensJSON = b
		}
	}
	next.Tokens = tokens
	keys, keysSum := w.cur.Keys, keysDigest(src, keyID)
	if keysSum != w.keysSum || keys == "" {
		var rnd [16]byte
		rand.Read(rnd[:])
		keys = "keys-" + hex.EncodeToString(rnd[:]) + ".json"
	}
	next.Keys = keys

	if !wroteShards && len(certsToWrite) == 0 && !writeCertNames && tokensJSON == nil && keys == w.cur.Keys &&
		next.CertNames == w.cur.CertNames && next.Hot == w.cur.Hot && next.Services == w.cur.Services &&
		next.KeyID == w.cur.KeyID && slices.Equal(next.Shards, w.cur.Shards) && slices.Equal(next.CertPacks, w.cur.CertPacks) {
		w.shardVers, w.shardNames, w.shardLens, w.shardsKnown = shardVers, shardNames, shardLens, true
		w.hot = hot
		w.keepCerts(pairs, leaves, certsVersion, rescan, now)
		if w.unclean {
			return w.removeUnnamed()
		}
		return nil
	}

	// The parts, each through a rename; then the folder, synced.
	if len(certsToWrite) > 0 {
		if err := os.MkdirAll(filepath.Join(w.dir, certsDir), 0o700); err != nil {
			return fmt.Errorf("fleet: writing the snapshot: %w", err)
		}
	}
	// A pack of up to certPackMax certificates is one file: a file per
	// certificate cost 170 µs of the processor each (certpack.go).
	for batch := range slices.Chunk(certsToWrite, certPackMax) {
		name := newCertPackName()
		err := w.writePart(filepath.Join(certsDir, name), func(f *bufio.Writer) error {
			return encodeCertPack(f, keyID, batch, func(i int) ([]byte, error) {
				y.Maybe()
				return encodeCertPart(byLeaf[batch[i]], src.Keyring)
			})
		})
		w.packs[name] = certPack{keyID: keyID, leaves: slices.Clone(batch)} // on disk, or removed by the next write
		if err != nil {
			w.swept = false // a file may be there all the same: list the folder again
			return err
		}
		next.CertPacks = append(next.CertPacks, name)
		w.wrote.certs += int64(len(batch))
	}
	if len(certsToWrite) > 0 {
		if err := syncDir(filepath.Join(w.dir, certsDir)); err != nil {
			return err
		}
	}
	if writeCertNames {
		if err := w.writePart(next.CertNames, func(f *bufio.Writer) error { return encodeCertNames(f, &pairs, &y) }); err != nil {
			return err
		}
	}
	if next.Hot != "" && next.Hot != w.cur.Hot {
		all := func(yield func(*store.Service) bool) {
			for sh := range hot {
				for i := range hot[sh].svcs {
					if !yield(&hot[sh].svcs[i]) {
						return
					}
				}
			}
		}
		if err := w.writePart(next.Hot, func(f *bufio.Writer) error { return encodeServices(f, nHot, all, &y) }); err != nil {
			return err
		}
	}
	if tokensJSON != nil {
		if err := w.writePart(tokens, func(f *bufio.Writer) error { _, err := f.Write(tokensJSON); return err }); err != nil {
			return err
		}
	}
	if keys != w.cur.Keys {
		b, err := encodeKeysPart(src, keyID)
		if err != nil {
			return err
		}
		if err := w.writePart(keys, func(f *bufio.Writer) error { _, err := f.Write(b); return err }); err != nil {
			return err
		}
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}

	// The manifest: from here on, the new snapshot is the one on disk.
	next.WrittenAt = time.Now().UTC()
	mb, err := json.Marshal(next)
	if err != nil {
		return err
	}
	if err := w.writePart(manifestFile, func(f *bufio.Writer) error { _, err := f.Write(mb); return err }); err != nil {
		return err
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	w.cur, w.tokensKey, w.keysSum, w.unclean = next, tokensKey, keysSum, true
	w.shardVers, w.shardNames, w.shardLens, w.shardsKnown = shardVers, shardNames, shardLens, true
	w.hot = hot
	w.keepCerts(pairs, leaves, certsVersion, rescan, now)
	return w.removeUnnamed()
}

// hotShard is the part of one shard in the hot part: the services of the
// shard at version ver that have one of hosts (a shard's hostnames with a
// certificate, sorted).
type hotShard struct {
	ver   uint64
	hosts []string
	svcs  []store.Service
}

// hotServices returns the services of the hot part, by shard: those with
// a hostname that has a certificate (pairs), each shard's looked up again
// (AppendShardServicesOf: copies of those services only; a copy of every
// service of every shard at each look-up of every hostname doubled the
// RSS of a 1M node's warm-up) only when its version or those hostnames
// changed since the last call.
// The result is kept by the caller once the write is on disk.
func (w *SnapshotWriter) hotServices(shards ServiceShards, vers *[shardCount]uint64, pairs *[shardCount][]hostLeaf, y *sched.Yielder) [shardCount]hotShard {
	var out [shardCount]hotShard
	for sh := range shardCount {
		if len(pairs[sh]) == 0 {
			continue
		}
		if old := w.hot[sh]; old.ver == vers[sh] && slices.EqualFunc(old.hosts, pairs[sh], func(h string, p hostLeaf) bool { return h == p.host }) {
			out[sh] = old
			continue
		}
		hosts := make([]string, len(pairs[sh]))
		for i, p := range pairs[sh] {
			hosts[i] = p.host // sorted: pairs are
		}
		y.Maybe()
		svcs := shards.AppendShardServicesOf(nil, sh, shardCount, func(h string) bool { _, ok := slices.BinarySearch(hosts, h); return ok })
		out[sh] = hotShard{ver: vers[sh], hosts: hosts, svcs: svcs}
	}
	return out
}

// hostLeaf is a hostname and the SHA-256 of its certificate's leaf.
type hostLeaf struct {
	host string
	leaf [sha256.Size]byte
}

// keepCerts records the certificates a write found, once it is on disk.
func (w *SnapshotWriter) keepCerts(pairs [shardCount][]hostLeaf, leaves map[*byte][sha256.Size]byte, version uint64, rescan bool, now time.Time) {
	if old := w.leaves; old != nil && rescan {
		clear(old) // its certificates go, its room stays for the next rescan's
		w.spareLeaves = old
	}
	w.pairs, w.leaves = pairs, leaves
	if rescan { // else a new version, if any, is still to be looked up (rescanPace)
		w.certsVersion, w.rescanned = version, now
	}
}

// planPacks returns the certificate packs of the manifest on disk that
// the next one names again, and the certificates of pairs (byLeaf: those
// this write looked up) that are in none of them, sorted. A pack stays
// if it holds a certificate of pairs and was sealed with keyID, and, if
// every certificate of pairs it holds is in byLeaf (a look-up of every
// hostname, or of its shards), at least half of its certificates are of
// pairs: else those go to new packs with the others, and the folder
// holds at most about twice the certificates its manifest names.
func (w *SnapshotWriter) planPacks(pairs *[shardCount][]hostLeaf, byLeaf map[[sha256.Size]byte]*tls.Certificate, keyID string) (kept []string, toWrite [][sha256.Size]byte) {
	if w.named == nil {
		w.named, w.stored = map[[sha256.Size]byte]bool{}, map[[sha256.Size]byte]bool{}
	}
	named, stored := w.named, w.stored
	clear(named)
	clear(stored)
	for _, ps := range pairs {
		for _, p := range ps {
			named[p.leaf] = true
		}
	}
	for _, name := range w.cur.CertPacks {
		p, ok := w.packs[name]
		live, movable := 0, true
		for _, l := range p.leaves {
			if named[l] {
				live++
				_, in := byLeaf[l]
				movable = movable && in
			}
		}
		if !ok || live == 0 || movable && (p.keyID != keyID || 2*live < len(p.leaves)) {
			continue
		}
		kept = append(kept, name)
		for _, l := range p.leaves {
			stored[l] = true
		}
	}
	for leaf := range byLeaf {
		if !stored[leaf] {
			toWrite = append(toWrite, leaf)
		}
	}
	slices.SortFunc(toWrite, func(a, b [sha256.Size]byte) int { return bytes.Compare(a[:], b[:]) })
	return kept, toWrite
}

// load reads the manifest on disk and the index of each certificate pack
// it names, so that the first write after a restart writes only what
// changed meanwhile. A folder it cannot read is as good as none, and a
// pack it cannot read as none: written anew.
func (w *SnapshotWriter) load() {
	w.loaded, w.cur, w.packs, w.swept, w.unclean = true, manifest{}, map[string]certPack{}, false, true
	if b, err := os.ReadFile(filepath.Join(w.dir, manifestFile)); err == nil {
		var m manifest
		if json.Unmarshal(b, &m) == nil && m.Version == folderVersion {
			w.cur = m
		}
	}
	for _, name := range w.cur.CertPacks {
		if !certPackNameOK(name) {
			continue
		}
		if p, err := readCertPackFile(filepath.Join(w.dir, certsDir, name)); err == nil {
			w.packs[name] = p
		}
	}
}

// removeUnnamed deletes what the manifest on disk does not name: the parts
// of the previous snapshot, files a crashed write left behind, and the
// SnapshotFile of an older release.
func (w *SnapshotWriter) removeUnnamed() error {
	if w.step != nil {
		if err := w.step("remove"); err != nil {
			return err
		}
	}
	keep := map[string]bool{manifestFile: true, certsDir: true, w.cur.Tokens: true, w.cur.Keys: true, w.cur.CertNames: true, w.cur.Hot: true}
	for _, name := range w.cur.Shards {
		keep[name] = true
	}
	var errs []error
	remove := func(dir string, keep func(string) bool) {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		for _, e := range ents {
			if !keep(e.Name()) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
		}
	}
	remove(w.dir, func(name string) bool { return keep[name] })
	// The certificate packs: those the manifest names stay. The folder is
	// listed once after load (files a crashed write left, packs of no
	// manifest, the certificate files of older releases); from then on
	// w.packs is every file in it.
	named := map[string]bool{}
	for _, name := range w.cur.CertPacks {
		named[name] = true
	}
	dir := filepath.Join(w.dir, certsDir)
	if !w.swept {
		remove(dir, func(name string) bool { return named[name] })
	}
	for name := range w.packs {
		if named[name] {
			continue
		}
		if w.swept {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue // still there: removed by the next write
			}
		}
		delete(w.packs, name)
	}
	w.swept = w.swept || len(errs) == 0
	if err := os.Remove(w.legacy); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fleet: removing the previous snapshot's parts: %w", err)
	}
	w.unclean = false
	return nil
}

// partBuffers are writePart's 64 KiB buffers, shared by the parts written
// one after the other: a write after the warm-up's certificates is
// thousands of small files, and a buffer each was 470 MB of garbage at
// 100k hostnames (heap profile of the node, alloc_space).
var partBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// writePart writes the part name (relative to the folder) with write,
// 0600 through a rename, and counts it.
func (w *SnapshotWriter) writePart(name string, write func(*bufio.Writer) error) error {
	var n int64
	err := platform.WriteSecretFileFrom(filepath.Join(w.dir, name), func(f io.Writer) error {
		c := &countingWriter{w: f}
		b := partBuffers.Get().(*bufio.Writer)
		b.Reset(c)
		defer func() {
			b.Reset(nil) // the file's writer goes with it
			partBuffers.Put(b)
		}()
		if err := write(b); err != nil {
			return err
		}
		err := b.Flush()
		n = c.n
		return err
	})
	if err != nil {
		return fmt.Errorf("fleet: writing the snapshot's %s: %w", name, err)
	}
	w.wrote.files++
	w.wrote.bytes += n
	if w.step != nil {
		return w.step(name)
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// syncDir makes the renames into dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fleet: syncing the snapshot folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fleet: syncing the snapshot folder: %w", err)
	}
	return nil
}

// shardPartName returns the name of the part of shard sh's services svcs,
// "" if it has none. It fails if a service is not of shard sh (a source
// whose shards are not shardOf's).
func shardPartName(sh int, svcs []store.Service, y *sched.Yielder) (string, error) {
	if len(svcs) == 0 {
		return "", nil
	}
	h := sha256.New()
	var buf []byte
	for i := range svcs {
		y.Maybe()
		if shardOf(svcs[i].ID) != sh {
			return "", fmt.Errorf("fleet: service %s was given as of snapshot shard %d, not %d", svcs[i].ID, sh, shardOf(svcs[i].ID))
		}
		buf = appendService(buf[:0], &svcs[i])
		h.Write(buf)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return fmt.Sprintf("services-%02x-%s.bin", sh, hex.EncodeToString(sum[:16])), nil
}

// encodeShard writes the services part of svcs (decodeShard's), one
// service at a time.
func encodeShard(b *bufio.Writer, svcs []store.Service, y *sched.Yielder) error {
	return encodeServices(b, len(svcs), func(yield func(*store.Service) bool) {
		for i := range svcs {
			if !yield(&svcs[i]) {
				return
			}
		}
	}, y)
}

// encodeServices is encodeShard for the n services that all yields (the hot
// part: several shards' services, not copied into one list).
func encodeServices(b *bufio.Writer, n int, all iter.Seq[*store.Service], y *sched.Yielder) error {
	b.WriteString(shardMagic)
	buf := binary.AppendUvarint(nil, uint64(n))
	b.Write(buf)
	for sv := range all {
		y.Maybe()
		buf = appendService(buf[:0], sv)
		if _, err := b.Write(buf); err != nil {
			return err // a bufio.Writer keeps its first error: the earlier writes' too
		}
	}
	return nil
}

// encodeCertNames writes the certificate names part (certNamesPart, JSON)
// of pairs, a hostname at a time: a map of every hostname to a hex string,
// then encoded, was 4 MB of garbage at 10,000 certificates. Hostnames are
// in normal form (JSON strings as they are); another string is quoted by
// encoding/json.
func encodeCertNames(b *bufio.Writer, pairs *[shardCount][]hostLeaf, y *sched.Yielder) error {
	b.WriteString(`{"certs":{`)
	var hexLeaf [2 * sha256.Size]byte
	first := true
	for _, ps := range pairs {
		y.Maybe()
		for _, p := range ps {
			if !first {
				b.WriteByte(',')
			}
			first = false
			if plainJSON(p.host) {
				b.WriteByte('"')
				b.WriteString(p.host)
				b.WriteByte('"')
			} else {
				q, err := json.Marshal(p.host)
				if err != nil {
					return err
				}
				b.Write(q)
			}
			hex.Encode(hexLeaf[:], p.leaf[:])
			b.WriteString(`:"`)
			b.Write(hexLeaf[:])
			b.WriteByte('"')
		}
	}
	_, err := b.WriteString("}}") // a bufio.Writer keeps its first error
	return err
}

// plainJSON reports whether s is a JSON string as it is between quotes:
// printable ASCII without a quote, a backslash or the characters encoding/json escapes
// for HTML ('<', '>', '&').
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// nPairs returns the number of pairs of every shard.
func nPairs(pairs *[shardCount][]hostLeaf) int {
	n := 0
	for _, ps := range pairs {
		n += len(ps)
	}
	return n
}

// keysDigest is the digest of what the keys part holds, in memory only.
func keysDigest(src *SnapshotSource, keyID string) [sha256.Size]byte {
	h := sha256.New()
	for _, k := range src.TicketKeys {
		h.Write(k[:])
	}
	h.Write(binary.AppendUvarint(nil, uint64(len(src.ECHKeys))))
	h.Write(src.ECHKeys)
	if q := src.QUICKeys; q != nil {
		h.Write(q.StatelessReset[:])
		h.Write(q.Token[:])
	}
	h.Write([]byte(keyID))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// encodeKeysPart encodes the ticket, ECH and QUIC keys of src, sealed with
// its keyring (unless keyID is "").
func encodeKeysPart(src *SnapshotSource, keyID string) ([]byte, error) {
	var p keysPart
	var ticket []byte
	for _, k := range src.TicketKeys {
		ticket = append(ticket, k[:]...)
	}
	var quic []byte
	if q := src.QUICKeys; q != nil {
		quic = append(append(quic, q.StatelessReset[:]...), q.Token[:]...)
	}
	if keyID == "" {
		for _, k := range src.TicketKeys {
			p.TicketKeys = append(p.TicketKeys, k[:])
		}
		p.ECHKeys, p.QUICKeys = src.ECHKeys, quic
	} else {
		for _, v := range []struct {
			plain []byte
			name  string
			dst   *string
		}{{ticket, ticketKeysName, &p.SealedTicketKeys}, {src.ECHKeys, echKeysName, &p.SealedECHKeys}, {quic, quicKeysName, &p.SealedQUICKeys}} {
			if len(v.plain) == 0 {
				continue
			}
			sealed, err := src.Keyring.Seal(v.name, v.plain)
			if err != nil {
				return nil, fmt.Errorf("fleet: sealing the snapshot's keys: %w", err)
			}
			*v.dst = string(sealed)
		}
	}
	return json.Marshal(p)
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

// encodeCertPart encodes cert as a certificate file, its key sealed with
// k (unless k is empty) under the name bound to its leaf: the bytes
// json.Marshal writes for a certPart of the PEM chain and key
// (TestEncodeCertPartIsJSONOfCertPart), written straight into one slice
// of their final size. Through pem.Encode (a base64 encoder of 1 KB per
// block), a growing bytes.Buffer, its String and json.Marshal, writing the
// files of the 10,000 certificates a burst loaded at 1M made 134 MB of
// garbage in the minute after it (BENCHMARKS.md, "The collector's headroom
// at a million hostnames"). The key's DER, and its PEM once sealed, are
// cleared.
func encodeCertPart(cert *tls.Certificate, k *secrets.Keyring) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("fleet: encoding a certificate's key: %w", err)
	}
	defer clear(der)
	var key []byte // the key_pem string's bytes, escaped
	if k.Empty() {
		key = appendPEM(make([]byte, 0, pemLen("PRIVATE KEY", len(der), jsonNewline)), "PRIVATE KEY", der, jsonNewline)
	} else {
		plain := appendPEM(make([]byte, 0, pemLen("PRIVATE KEY", len(der), "\n")), "PRIVATE KEY", der, "\n")
		key, err = k.Seal(certKeyName(cert.Certificate[0]), plain)
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("fleet: sealing a certificate's key: %w", err)
		}
		// base64 after an ASCII header: nothing JSON escapes
	}
	const open, mid, end = `{"chain_pem":"`, `","key_pem":"`, `"}`
	n := len(open) + len(mid) + len(key) + len(end)
	for _, c := range cert.Certificate {
		n += pemLen("CERTIFICATE", len(c), jsonNewline)
	}
	out := make([]byte, 0, n)
	out = append(out, open...)
	for _, c := range cert.Certificate {
		out = appendPEM(out, "CERTIFICATE", c, jsonNewline)
	}
	out = append(out, mid...)
	out = append(out, key...)
	return append(out, end...), nil
}

// jsonNewline is a newline inside a JSON string.
const jsonNewline = `\n`

// pemLine is how many bytes of DER one PEM line of 64 base64 characters
// holds.
const pemLine = 48

// appendPEM appends der as a PEM block of type typ, as pem.Encode writes
// one without headers, with nl at the end of each line ("\n", or
// jsonNewline for the block inside a JSON string: its only character
// JSON escapes).
func appendPEM(dst []byte, typ string, der []byte, nl string) []byte {
	dst = append(append(append(dst, "-----BEGIN "...), typ...), "-----"...)
	dst = append(dst, nl...)
	for len(der) > 0 {
		n := min(len(der), pemLine)
		dst = base64.StdEncoding.AppendEncode(dst, der[:n])
		dst = append(dst, nl...)
		der = der[n:]
	}
	dst = append(append(append(dst, "-----END "...), typ...), "-----"...)
	return append(dst, nl...)
}

// pemLen is the length of appendPEM's block.
func pemLen(typ string, n int, nl string) int {
	lines := (n + pemLine - 1) / pemLine
	return len("-----BEGIN -----") + len("-----END -----") + 2*len(typ) + (2+lines)*len(nl) + base64.StdEncoding.EncodedLen(n)
}
