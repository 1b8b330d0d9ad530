// The last-known-good snapshot: what a node needs to serve without the
// store, kept in its data folder.

package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
		for _, h := range s.Hostnames {
			routes = append(routes, edge.Route{
				Host:       h,
				Project:    s.ProjectID,
				Service:    s.Name,
				Upstreams:  s.Upstreams,
				HSTSMaxAge: s.HSTSMaxAge,
			})
			hosts = append(hosts, h)
		}
	}
	return routes, hosts
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

// snapshots writes the snapshot after each sync that changed it, and every
// few seconds when a certificate was obtained meanwhile.
func (n *Node) snapshots(ctx context.Context) {
	t := time.NewTicker(snapshotInterval)
	defer t.Stop()
	var last []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.fleet.snapshotDue:
		}
		b, err := n.buildSnapshot()
		if err != nil {
			n.log.Warn("building the snapshot", "err", err)
			continue
		}
		if b == nil || bytes.Equal(b, last) {
			continue
		}
		if err := platform.WriteSecretFile(filepath.Join(n.cfg.DataDir, SnapshotFile), b); err != nil {
			n.log.Warn("writing the snapshot", "err", err)
			continue
		}
		last = b
	}
}

// buildSnapshot encodes the services of the last successful sync and the
// certificates served for their hostnames; nil if no sync succeeded yet.
// WrittenAt changes only with the content, so an unchanged snapshot
// encodes the same.
func (n *Node) buildSnapshot() ([]byte, error) {
	svcs := n.fleet.lastServices.Load()
	if svcs == nil {
		return nil, nil
	}
	_, hosts := routesOf(*svcs)
	slices.Sort(hosts)
	s := snapshot{Version: snapshotVersion, Services: *svcs}
	seen := map[string]int{} // leaf DER → index in s.Certificates
	// certmagic logs the ClientHello's connection when it has no
	// certificate, so the lookups get one that leads nowhere.
	conn, other := net.Pipe()
	conn.Close()
	other.Close()
	for _, h := range hosts {
		cert, err := n.getCertificate(&tls.ClientHelloInfo{ServerName: h, Conn: conn})
		if err != nil || cert == nil || len(cert.Certificate) == 0 {
			continue
		}
		leaf := string(cert.Certificate[0])
		if i, ok := seen[leaf]; ok {
			s.Certificates[i].Names = append(s.Certificates[i].Names, h)
			continue
		}
		key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("encoding the key of %s: %w", h, err)
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
	for _, k := range n.fleet.ticketKeys.Load().keys() {
		s.TicketKeys = append(s.TicketKeys, k[:])
	}
	body, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	n.fleet.snapMu.Lock()
	defer n.fleet.snapMu.Unlock()
	if !bytes.Equal(body, n.fleet.snapBody) {
		n.fleet.snapBody, n.fleet.snapAt = body, time.Now().UTC()
	}
	s.WrittenAt = n.fleet.snapAt
	return json.MarshalIndent(s, "", " ")
}

// synced records the services of a successful sync, for the snapshot and
// for reads while the store is away, and asks for a snapshot.
func (n *Node) recordSync(svcs []store.Service) {
	n.fleet.lastServices.Store(&svcs)
	n.fleet.reads.seed(svcs)
	n.noteStore(nil)
	select {
	case n.fleet.snapshotDue <- struct{}{}:
	default:
	}
}
