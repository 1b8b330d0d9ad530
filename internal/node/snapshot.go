// The last-known-good snapshot: what a node needs to serve without the
// store, kept in its data folder.

package node

import (
	"bufio"
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
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
)

// SnapshotFile is the name of the snapshot in the data folder. It holds
// private keys: it is written 0600, through a rename.
const SnapshotFile = "snapshot.json"

const (
	snapshotVersion  = 1
	snapshotInterval = 5 * time.Second // how often new certificates are looked for
	snapshotSettle   = 3 * time.Second // from start to the first write
	listenWait       = 2 * time.Second // at most, for the watch's LISTEN before the first sync
)

// snapshot is the content of SnapshotFile.
type snapshot struct {
	Version      int             `json:"version"`
	WrittenAt    time.Time       `json:"written_at"`
	Services     []store.Service `json:"services"`
	Certificates []snapshotCert  `json:"certificates"`
	TicketKeys   [][]byte        `json:"ticket_keys,omitempty"` // newest first
	// TokenHashes are the API token look-ups the node answered (hashes,
	// never tokens), so that a node started from the snapshot answers
	// reads, marked stale, while the store is away.
	TokenHashes []snapshotToken `json:"token_hashes,omitempty"`
}

// snapshotToken is one API token look-up: the SHA-256 hash of the token
// (as the store keeps it) and the project it authenticates.
type snapshotToken struct {
	Hash    string        `json:"hash"`
	Project store.Project `json:"project"`
}

// snapshotCert is the certificate a node served for Names.
type snapshotCert struct {
	Names    []string `json:"names"`
	ChainPEM string   `json:"chain_pem"`
	KeyPEM   string   `json:"key_pem"`
}

// snapshotCerts is a snapshot's certificates by hostname.
type snapshotCerts map[string]*tls.Certificate

func readSnapshot(dir string) (*snapshot, error) {
	b, err := os.ReadFile(filepath.Join(dir, SnapshotFile))
	if err != nil {
		return nil, err
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading %s: %w", SnapshotFile, err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("%s has version %d; this program reads %d", SnapshotFile, s.Version, snapshotVersion)
	}
	return &s, nil
}

// routesOf turns services into the edge's routes, and lists their hostnames.
func routesOf(svcs []store.Service) ([]edge.Route, []string) {
	routes := make([]edge.Route, 0, len(svcs))
	var hosts []string
	var y yielder
	for _, s := range svcs {
		y.maybe()
		routes = append(routes, routesOfService(s)...)
		hosts = append(hosts, s.Hostnames...)
	}
	return routes, hosts
}

// routesOfService returns one route for each hostname of s.
func routesOfService(s store.Service) []edge.Route {
	routes := make([]edge.Route, 0, len(s.Hostnames))
	for _, h := range s.Hostnames {
		routes = append(routes, edge.Route{
			Host:       h,
			Project:    s.ProjectID,
			Service:    s.Name,
			Upstreams:  s.Upstreams,
			HSTSMaxAge: s.HSTSMaxAge,
		})
	}
	return routes
}

// serveSnapshot makes the edge serve a snapshot read at start: its routes,
// with its certificates, and its ticket keys.
func (n *Node) serveSnapshot(s *snapshot) error {
	certs := snapshotCerts{}
	for _, c := range s.Certificates {
		pair, err := tls.X509KeyPair([]byte(c.ChainPEM), []byte(c.KeyPEM))
		if err != nil {
			n.log.Warn("skipping a certificate of the snapshot", "names", c.Names, "err", err)
			continue
		}
		for _, name := range c.Names {
			certs[name] = &pair
		}
	}
	n.fleet.snapCerts.Store(&certs)
	if keys := ticketKeysFrom(s.TicketKeys); len(keys) > 0 {
		n.edge.SetSessionTicketKeys(keys)
	}
	routes, _ := routesOf(s.Services)
	if err := n.edge.SetRoutes(routes); err != nil {
		return fmt.Errorf("applying the snapshot's routes: %w", err)
	}
	n.fleet.reads.seed(s.Services)
	n.fleet.reads.seedTokens(s.TokenHashes)
	n.synced.Store(true)
	return nil
}

// getCertificate is the edge's certificate source: the certificate manager,
// and for a node that started from its snapshot, the snapshot's certificate
// of a name the manager has none for yet.
func (n *Node) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	var fallback *tls.Certificate
	if snap := n.fleet.snapCerts.Load(); snap != nil {
		fallback = (*snap)[hello.ServerName]
	}
	if fallback == nil {
		return n.certs.GetCertificate(hello)
	}
	// The snapshot has one: never wait for an issuance in progress (which,
	// with the store down, cannot finish).
	if cert, err := n.certs.CertificateNow(hello); err == nil {
		return cert, nil
	}
	return fallback, nil
}

// cachedCertificate is the certificate in memory for host: the manager's,
// else the snapshot's the node started from. It never reads the store, so
// that writing a snapshot does not load every certificate.
func (n *Node) cachedCertificate(host string) *tls.Certificate {
	if cert := n.certs.CachedCertificate(host); cert != nil {
		return cert
	}
	if snap := n.fleet.snapCerts.Load(); snap != nil {
		return (*snap)[host]
	}
	return nil
}

// snapshots writes the snapshot after each sync that changed it, and every
// few seconds when a certificate was obtained or loaded meanwhile. The first
// write waits snapshotSettle after start: a restart is when every client
// reconnects at once, and the file from before the restart still holds a
// good snapshot meanwhile.
func (n *Node) snapshots(ctx context.Context) {
	w := &snapshotWriter{path: filepath.Join(n.cfg.DataDir, SnapshotFile)}
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
		if err := n.writeSnapshot(w); err != nil {
			n.log.Warn("writing the snapshot", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.fleet.snapshotDue:
		}
	}
}

// snapshotWriter writes SnapshotFile and keeps, between writes, the
// encoded entry of each certificate it wrote, so that a write encodes only
// the certificates that are new since the last one. While the certificate
// cache warms up after a restart a write comes every snapshotInterval with a
// few hundred more certificates; encoding all of them each time cost
// hundreds of milliseconds of CPU and tens of megabytes of garbage per write
// at 10k names, and the garbage collections that followed held the
// processor for ~10 ms at a time, which handshakes waited for.
type snapshotWriter struct {
	path    string
	last    [sha256.Size]byte               // digest of what was last written
	entries map[[sha256.Size]byte]snapEntry // by the digest of the leaf
}

// snapEntry is one certificate's encoded snapshotCert, and the names it
// was encoded with.
type snapEntry struct {
	names []string
	json  []byte
}

// writeSnapshot writes the services of the last successful sync, the
// certificates in memory for their hostnames (at most Config.CertCacheSize;
// a hostname whose certificate is only in the store is routed but not served
// while the store is away) and the ticket keys. It writes nothing if no sync
// succeeded yet or if none of that changed since the last write: the
// look-ups are cheap, the encoding is done only when something changed.
func (n *Node) writeSnapshot(w *snapshotWriter) error {
	rec := n.fleet.lastSync.Load()
	if rec == nil {
		return nil
	}
	var hosts []string // every 5 s: the hostnames only, not a route each
	for _, sv := range rec.svcs {
		hosts = append(hosts, sv.Hostnames...)
	}
	slices.Sort(hosts)
	type named struct {
		cert *tls.Certificate
		leaf [sha256.Size]byte
	}
	certs := make([]named, len(hosts))
	var y yielder
	digest := sha256.New()
	digest.Write(rec.sum[:])
	for i, h := range hosts {
		y.maybe()
		cert := n.cachedCertificate(h)
		if cert == nil || len(cert.Certificate) == 0 {
			continue
		}
		certs[i] = named{cert, sha256.Sum256(cert.Certificate[0])}
		digest.Write([]byte(h))
		digest.Write(certs[i].leaf[:])
	}
	keys := n.fleet.ticketKeys.Load().keys()
	for _, k := range keys {
		digest.Write(k[:])
	}
	digest.Write(binary.AppendUvarint(nil, n.fleet.reads.tokensChanged()))
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
		y.maybe()
		e, ok := w.entries[leaf]
		if !ok || !slices.Equal(e.names, names[leaf]) {
			b, err := encodeSnapshotCert(byLeaf[leaf], names[leaf])
			if err != nil {
				return err
			}
			e = snapEntry{names: names[leaf], json: b}
		}
		entries[leaf] = e
	}

	head := snapshot{Version: snapshotVersion, WrittenAt: time.Now().UTC(), Services: rec.svcs, TokenHashes: n.fleet.reads.tokenHashes()}
	for _, k := range keys {
		head.TicketKeys = append(head.TicketKeys, k[:])
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

// encodeSnapshotCert encodes cert, served for names, as a snapshotCert.
func encodeSnapshotCert(cert *tls.Certificate, names []string) ([]byte, error) {
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("encoding the key of %s: %w", names[0], err)
	}
	var chain bytes.Buffer
	for _, der := range cert.Certificate {
		pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return json.Marshal(snapshotCert{
		Names:    names,
		ChainPEM: chain.String(),
		KeyPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})),
	})
}

// yielder lets other goroutines run at least every yieldSlice of a long
// loop of background work (the snapshot, a sync of every service). On a
// node with one processor, handshakes would otherwise wait for all of it
// (tens of milliseconds at 10k names) until the runtime preempts it, which
// it does only after 10 ms.
type yielder struct{ last time.Time }

const yieldSlice = 500 * time.Microsecond

// maybe yields if yieldSlice has passed since the last yield.
func (y *yielder) maybe() {
	now := time.Now()
	if y.last.IsZero() {
		y.last = now
		return
	}
	if now.Sub(y.last) >= yieldSlice {
		runtime.Gosched()
		y.last = time.Now()
	}
}

// encodeSnapshot writes s as json.Marshal would, with s.Certificates
// replaced by the encoded entries certs yields (s.Certificates is ignored),
// one service and one certificate at a time, through a buffer, yielding
// between them (see yielder): the file is never whole in memory.
func encodeSnapshot(dst io.Writer, s *snapshot, certs func(yield func([]byte) error) error) error {
	head, err := json.Marshal(struct {
		Version     int             `json:"version"`
		WrittenAt   time.Time       `json:"written_at"`
		TicketKeys  [][]byte        `json:"ticket_keys,omitempty"`
		TokenHashes []snapshotToken `json:"token_hashes,omitempty"`
	}{s.Version, s.WrittenAt, s.TicketKeys, s.TokenHashes})
	if err != nil {
		return err
	}
	b := bufio.NewWriterSize(dst, 64<<10)
	b.Write(head[:len(head)-1]) // without its closing brace
	b.WriteString(`,"services":[`)
	var y yielder
	for i, sv := range s.Services {
		y.maybe()
		if i > 0 {
			b.WriteByte(',')
		}
		item, err := json.Marshal(sv)
		if err != nil {
			return err
		}
		b.Write(item)
	}
	b.WriteString(`],"certificates":[`)
	i := 0
	err = certs(func(item []byte) error {
		y.maybe()
		if i > 0 {
			b.WriteByte(',')
		}
		i++
		_, err := b.Write(item)
		return err
	})
	if err != nil {
		return err
	}
	b.WriteString("]}")
	return b.Flush()
}

// recordSync records the services of a successful sync, for the snapshot and
// for reads while the store is away, and asks for a snapshot.
func (n *Node) recordSync(svcs []store.Service, sum [sha256.Size]byte, changed bool) {
	n.fleet.lastSync.Store(&syncRecord{svcs: svcs, sum: sum})
	n.fleet.reads.seed(svcs)
	n.noteStore(nil)
	if !changed {
		return // the snapshot writer's own tick still picks up new certificates
	}
	select {
	case n.fleet.snapshotDue <- struct{}{}:
	default:
	}
}
