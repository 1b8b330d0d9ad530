package fleet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/pebbletest"
	"github.com/spine-platform/spine/internal/poll"
)

// Three nodes get their certificates from Pebble, and Pebble's validation
// authority is sent to a node other than the one that placed the order:
// the challenge answer reaches it through the store. Pebble offers one
// challenge type per subtest (HTTP-01, then TLS-ALPN-01), so each is
// proven on its own. Whichever node wins the name's issuance lock orders;
// the test learns which from its log when Pebble is about to validate, and
// only then makes the name resolve to another node. Pebble connects to the
// first address of the name on one fixed port, and only that node listens
// on that address, so a valid authorization means that node answered.
func TestACMEChallengeAnsweredByAnotherNode(t *testing.T) {
	for _, typ := range []string{"http-01", "tls-alpn-01"} {
		t.Run(typ, func(t *testing.T) { testACMEChallengeElsewhere(t, typ) })
	}
}

func testACMEChallengeElsewhere(t *testing.T, challenge string) {
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	ports := sharedPorts(t, ips, 2)
	httpPort, tlsPort := ports[0], ports[1]
	host := "acme." + Domain
	dns := pebbletest.StartDNS(t)

	// The routing decision, made when Pebble is about to validate.
	var route struct {
		sync.Mutex
		nodes              []*node
		orderer, answerer  *node
		types, identifiers []string
	}
	pebble := pebbletest.Start(t, pebbletest.Options{
		HTTPPort:   httpPort,
		TLSPort:    tlsPort,
		Resolver:   dns.Addr,
		Challenges: []string{challenge},
		BeforeValidation: func(identifier, typ string) {
			route.Lock()
			defer route.Unlock()
			route.types = append(route.types, typ)
			route.identifiers = append(route.identifiers, identifier)
			if route.orderer == nil {
				orderer, err := waitOrderer(route.nodes, identifier)
				if err != nil {
					t.Error(err)
					return
				}
				route.orderer = orderer
				for _, nd := range route.nodes {
					if nd != orderer {
						route.answerer = nd
						break
					}
				}
			}
			dns.SetA(identifier, route.answerer.ip)
		},
	})
	rootFile := filepath.Join(t.TempDir(), "pebble-server-root.pem")
	if err := os.WriteFile(rootFile, pebble.ServerRootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := startACMENodes(t, dsn, ips, httpPort, tlsPort,
		"--acme-ca", pebble.DirectoryURL(), "--acme-ca-root", rootFile,
		"--dns-resolver", dns.Addr, "--no-internal-ca-fallback")
	route.Lock()
	route.nodes = nodes
	route.Unlock()

	up := upstream(t, "acme-upstream")
	if _, err := nodes[0].client().CreateService(ctx, client.ServiceCreate{Name: "acme", Upstreams: []string{up}}); err != nil {
		t.Fatal(err)
	}

	// Every node serves the name with one certificate, chained to Pebble's
	// root.
	roots := pebble.Roots()
	var leaves []*x509.Certificate
	for _, nd := range nodes {
		var leaf *x509.Certificate
		poll.Until(t, "served by "+nd.name+" with a certificate from Pebble", time.Minute, func() error {
			var err error
			leaf, err = servedLeaf(nd, roots, host, "acme-upstream")
			return err
		})
		leaves = append(leaves, leaf)
	}
	for i, leaf := range leaves {
		if !slices.Equal(leaf.DNSNames, []string{host}) || !strings.Contains(leaf.Issuer.CommonName, "Pebble") {
			t.Errorf("%s serves a certificate for %v issued by %q; want one for %s from Pebble", nodes[i].name, leaf.DNSNames, leaf.Issuer.CommonName, host)
		}
		if leaf.SerialNumber.Cmp(leaves[0].SerialNumber) != 0 {
			t.Errorf("%s serves certificate %x, %s serves %x; want one certificate", nodes[i].name, leaf.SerialNumber, nodes[0].name, leaves[0].SerialNumber)
		}
	}

	// One account, one order, one certificate.
	if a, o, f := pebble.Accounts(), pebble.NewOrders(), pebble.Finalized(); a != 1 || o != 1 || f != 1 {
		t.Errorf("Pebble registered %d accounts, accepted %d orders and %d finalizations; want 1 of each", a, o, f)
	}
	if n := query[int](t, dsn, `SELECT count(*) FROM kv WHERE key LIKE 'certificates/%/`+host+`/`+host+`.crt'`); n != 1 {
		t.Errorf("the store holds %d certificates for %s, want 1", n, host)
	}
	var ordering []string
	for _, nd := range nodes {
		if orderedFor(nd, host) {
			ordering = append(ordering, nd.name)
		}
	}
	if len(ordering) != 1 {
		t.Errorf("nodes that ordered a certificate for %s: %v; want one", host, ordering)
	}

	// The challenge of the order's type was validated on another node.
	route.Lock()
	defer route.Unlock()
	if len(route.types) == 0 {
		t.Fatal("Pebble validated no challenge")
	}
	for i, typ := range route.types {
		if typ != challenge || route.identifiers[i] != host {
			t.Errorf("Pebble validated a %s challenge for %s; want %s for %s", typ, route.identifiers[i], challenge, host)
		}
	}
	if route.orderer == nil || route.answerer == nil {
		t.Fatal("no orderer found when Pebble validated")
	}
	t.Logf("%s ordered; Pebble validated %s on %s", route.orderer.name, challenge, route.answerer.name)
	// The edge logs the challenge answers it serves.
	if !servedAnswer(route.answerer, challenge, host) {
		t.Errorf("%s, where the name resolved, logged no %s answer for %s", route.answerer.name, challenge, host)
	}
	if servedAnswer(route.orderer, challenge, host) {
		t.Errorf("%s, which ordered, answered the %s validation itself", route.orderer.name, challenge)
	}
}

// waitOrderer returns the one node that logged an order for host. The node
// logs before it places the order, so by the time the order's challenge is
// answered the line is written; the wait covers only the copy from its pipe.
func waitOrderer(nodes []*node, host string) (*node, error) {
	deadline := time.Now().Add(time.Minute) // a guard against a hang
	for {
		var found []*node
		for _, nd := range nodes {
			if orderedFor(nd, host) {
				found = append(found, nd)
			}
		}
		switch {
		case len(found) == 1:
			return found[0], nil
		case len(found) > 1:
			return nil, fmt.Errorf("%d nodes ordered a certificate for %s", len(found), host)
		case time.Now().After(deadline):
			return nil, fmt.Errorf("Pebble validates a challenge for %s, but no node logged an order for it", host)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// orderedFor reports whether nd logged an ACME order for host.
func orderedFor(nd *node, host string) bool {
	return hasLogLine(nd, "ordering certificate", `"`+host+`"`)
}

// servedAnswer reports whether nd logged an answer to a challenge of type
// challenge for host.
func servedAnswer(nd *node, challenge, host string) bool {
	if challenge == "tls-alpn-01" {
		return hasLogLine(nd, "served TLS-ALPN-01 challenge certificate", `"`+host+`"`)
	}
	return hasLogLine(nd, "served key authentication", `"`+host+`"`)
}

// hasLogLine reports whether one line of nd's log holds all of parts.
func hasLogLine(nd *node, parts ...string) bool {
	found := false
	scanLines(nd.logs(), func(line string) {
		for _, p := range parts {
			if !strings.Contains(line, p) {
				return
			}
		}
		found = true
	})
	return found
}

// startACMENodes starts a node on each of ips, over dsn, with args added
// to its command line, and waits until each is ready. Every node listens
// for HTTP on httpPort and for HTTPS on tlsPort of its own address, as a
// CA's validation authority expects.
//
// ECH is off: these tests count the CA's orders and validations for their
// own names, and the ECH public name (ech.<domain>) would be one more order
// from the same CA. ECH in a fleet is tested by TestECHKeysSharedAndRotated
// and the node and edge ECH tests.
func startACMENodes(t *testing.T, dsn string, ips []string, httpPort, tlsPort int, args ...string) []*node {
	t.Helper()
	args = append([]string{"--ech=false"}, args...)
	var nodes []*node
	for i, ip := range ips {
		nodes = append(nodes, &node{
			t: t, name: fmt.Sprintf("node%d", i+1), dataDir: t.TempDir(), dsn: dsn, ip: ip, args: args,
			https: net.JoinHostPort(ip, strconv.Itoa(tlsPort)),
			http:  net.JoinHostPort(ip, strconv.Itoa(httpPort)),
			api:   freePorts(t, ip, 1)[0],
		})
	}
	for _, nd := range nodes {
		nd.start()
	}
	for _, nd := range nodes {
		nd.waitReady()
	}
	return nodes
}

// sharedPorts returns n distinct ports free on every one of ips right now.
// They are taken below the kernel's ephemeral range (32768 and up here), so
// that no other test's outgoing connection or :0 listener takes one before
// the nodes bind it.
func sharedPorts(t *testing.T, ips []string, n int) []int {
	t.Helper()
	var ports []int
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries == 200 {
			t.Fatalf("no port free on all of %v", ips)
		}
		p := 20000 + rand.IntN(10000)
		var lns []net.Listener
		for _, ip := range ips {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		held = append(held, lns...)
		if len(lns) == len(ips) {
			ports = append(ports, p)
		}
	}
	return ports
}

// servedLeaf makes an HTTPS request for host to nd, verifying the chain
// against roots, and returns the certificate nd showed if it answered 200
// with want in the body.
func servedLeaf(nd *node, roots *x509.CertPool, host, want string) (*x509.Certificate, error) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, nd.https)
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + host + "/")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nd.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nd.name, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return nil, fmt.Errorf("%s: status %d, body %q", nd.name, resp.StatusCode, body)
	}
	if len(resp.TLS.PeerCertificates) == 0 {
		return nil, errors.New(nd.name + ": no certificate")
	}
	return resp.TLS.PeerCertificates[0], nil
}
