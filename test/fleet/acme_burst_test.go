package fleet

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/pebbletest"
	"github.com/spine-platform/spine/internal/poll"
)

// A burst of new services on a three-node fleet, each name's HTTP-01
// challenge validated on a node other than the one that ordered it, while
// the nodes are still applying the burst: the node the CA reaches may not
// manage the name yet (its sync is behind the orderer's). Every challenge
// is answered at the CA's first request all the same, so every name is
// ordered once. (Before nodes answered for names they did not manage yet,
// 5 to 7 of the 24 validations of each run got a 404.)
func TestACMEBurstAnsweredByOtherNodes(t *testing.T) {
	const n = 24
	ctx := ctxT(t)
	dsn := freshSchema(t, basePostgres())
	ips := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	ports := sharedPorts(t, ips, 2)
	dns := pebbletest.StartDNS(t)

	var mu sync.Mutex
	var nodes []*node
	var routeErrs []string
	pebble := pebbletest.Start(t, pebbletest.Options{
		HTTPPort:   ports[0],
		TLSPort:    ports[1],
		Resolver:   dns.Addr,
		Challenges: []string{"http-01"},
		BeforeValidation: func(identifier, typ string) {
			mu.Lock()
			all := nodes
			mu.Unlock()
			orderer, err := waitOrderer(all, identifier)
			if err != nil {
				mu.Lock()
				routeErrs = append(routeErrs, err.Error())
				mu.Unlock()
				return
			}
			for i, nd := range all {
				if nd == orderer {
					dns.SetA(identifier, all[(i+1)%len(all)].ip)
				}
			}
		},
	})
	rootFile := filepath.Join(t.TempDir(), "pebble-server-root.pem")
	if err := os.WriteFile(rootFile, pebble.ServerRootPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	started := startACMENodes(t, dsn, ips, ports[0], ports[1],
		"--acme-ca", pebble.DirectoryURL(), "--acme-ca-root", rootFile,
		"--dns-resolver", dns.Addr, "--no-internal-ca-fallback")
	mu.Lock()
	nodes = started
	mu.Unlock()

	up := upstream(t, "burst-upstream")
	c := started[0].client()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := c.CreateService(ctx, client.ServiceCreate{Name: fmt.Sprintf("burst%02d", i), Upstreams: []string{up}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	roots := pebble.Roots()
	for i := range n {
		host := fmt.Sprintf("burst%02d.%s", i, Domain)
		poll.Until(t, host+" served with a certificate from Pebble", 2*time.Minute, func() error {
			_, err := servedLeaf(started[i%len(started)], roots, host, "burst-upstream")
			return err
		})
	}
	mu.Lock()
	defer mu.Unlock()
	for _, e := range routeErrs {
		t.Error(e)
	}
	if o := pebble.NewOrders(); o != n {
		t.Errorf("Pebble accepted %d orders for %d names; want one each (every challenge answered at the first request)", o, n)
	}
	for _, nd := range started {
		for _, line := range logLines(nd.logs(), "challenge failed") {
			t.Errorf("%s: %s", nd.name, strings.TrimSpace(line))
		}
	}
}
