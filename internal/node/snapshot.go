// The last-known-good snapshot: what a node needs to serve without the
// store, kept in its data folder.

package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
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
)

// snapshot is the content of SnapshotFile.
type snapshot struct {
	Version      int             `json:"version"`
	WrittenAt    time.Time       `json:"written_at"`
	Services     []store.Service `json:"services"`
	Certificates []snapshotCert  `json:"certificates"`
	TicketKeys   [][]byte        `json:"ticket_keys,omitempty"` // newest first
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
	for _, s := range svcs {
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
	n.synced.Store(true)
	return nil
}

// getCertificate is the edge's certificate source: the certificate manager,
// and for a node that started from its snapshot, the snapshot's certificate
// of a name the manager has none for yet.
func (n *Node) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := n.certs.GetCertificate(hello)
	if err == nil {
		return cert, nil
	}
	if snap := n.fleet.snapCerts.Load(); snap != nil {
		if c := (*snap)[hello.ServerName]; c != nil {
			return c, nil
		}
	}
	return nil, err
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
// few seconds when a certificate was obtained meanwhile.
func (n *Node) snapshots(ctx context.Context) {
	t := time.NewTicker(snapshotInterval)
	defer t.Stop()
	var last [sha256.Size]byte // of the content last written
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.fleet.snapshotDue:
		}
		b, sum, err := n.buildSnapshot(last)
		if err != nil {
			n.log.Warn("building the snapshot", "err", err)
			continue
		}
		if b == nil {
			continue // nothing synced yet, or nothing changed
		}
		if err := platform.WriteSecretFile(filepath.Join(n.cfg.DataDir, SnapshotFile), b); err != nil {
			n.log.Warn("writing the snapshot", "err", err)
			continue
		}
		last = sum
	}
}

// buildSnapshot encodes the services of the last successful sync, the
// certificates in memory for their hostnames (at most Config.CertCacheSize;
// a hostname whose certificate is only in the store is routed but not
// served while the store is away) and the ticket keys, with the
// digest of that content. It returns nil if no sync succeeded yet or if the
// digest is still last: the look-ups are cheap, the encoding of every key
// is done only when something changed.
func (n *Node) buildSnapshot(last [sha256.Size]byte) ([]byte, [sha256.Size]byte, error) {
	svcs := n.fleet.lastServices.Load()
	if svcs == nil {
		return nil, last, nil
	}
	_, hosts := routesOf(*svcs)
	slices.Sort(hosts)
	certs := make([]*tls.Certificate, len(hosts))
	digest := sha256.New()
	if err := json.NewEncoder(digest).Encode(svcs); err != nil {
		return nil, last, err
	}
	for i, h := range hosts {
		yieldEvery(i)
		cert := n.cachedCertificate(h)
		if cert == nil || len(cert.Certificate) == 0 {
			continue
		}
		certs[i] = cert
		digest.Write([]byte(h))
		digest.Write(cert.Certificate[0])
	}
	keys := n.fleet.ticketKeys.Load().keys()
	for _, k := range keys {
		digest.Write(k[:])
	}
	var sum [sha256.Size]byte
	digest.Sum(sum[:0])
	if sum == last {
		return nil, last, nil
	}

	s := snapshot{Version: snapshotVersion, WrittenAt: time.Now().UTC(), Services: *svcs}
	seen := map[string]int{} // leaf DER → index in s.Certificates
	for i, cert := range certs {
		if cert == nil {
			continue
		}
		yieldEvery(i)
		h, leaf := hosts[i], string(cert.Certificate[0])
		if j, ok := seen[leaf]; ok {
			s.Certificates[j].Names = append(s.Certificates[j].Names, h)
			continue
		}
		key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
		if err != nil {
			return nil, last, fmt.Errorf("encoding the key of %s: %w", h, err)
		}
		var chain bytes.Buffer
		for _, der := range cert.Certificate {
			pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		}
		seen[leaf] = len(s.Certificates)
		s.Certificates = append(s.Certificates, snapshotCert{
			Names:    []string{h},
			ChainPEM: chain.String(),
			KeyPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})),
		})
	}
	for _, k := range keys {
		s.TicketKeys = append(s.TicketKeys, k[:])
	}
	b, err := encodeSnapshot(&s)
	return b, sum, err
}

// yieldEvery lets other goroutines run every 128 items of a long loop. The
// snapshot is background work: on a node with one processor, handshakes
// would otherwise wait for all of it (tens of milliseconds at 10k names)
// until the runtime preempts it.
func yieldEvery(i int) {
	if i%128 == 127 {
		runtime.Gosched()
	}
}

// encodeSnapshot is json.Marshal(s), one service and one certificate at a
// time, yielding between them (see yieldEvery).
func encodeSnapshot(s *snapshot) ([]byte, error) {
	head, err := json.Marshal(struct {
		Version    int       `json:"version"`
		WrittenAt  time.Time `json:"written_at"`
		TicketKeys [][]byte  `json:"ticket_keys,omitempty"`
	}{s.Version, s.WrittenAt, s.TicketKeys})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(head[:len(head)-1]) // without its closing brace
	b.WriteString(`,"services":[`)
	for i, sv := range s.Services {
		yieldEvery(i)
		if i > 0 {
			b.WriteByte(',')
		}
		item, err := json.Marshal(sv)
		if err != nil {
			return nil, err
		}
		b.Write(item)
	}
	b.WriteString(`],"certificates":[`)
	for i, c := range s.Certificates {
		yieldEvery(i)
		if i > 0 {
			b.WriteByte(',')
		}
		item, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		b.Write(item)
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}

// recordSync records the services of a successful sync, for the snapshot and
// for reads while the store is away, and asks for a snapshot.
func (n *Node) recordSync(svcs []store.Service, changed bool) {
	n.fleet.lastServices.Store(&svcs)
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
