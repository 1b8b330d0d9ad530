package node

import (
	"crypto/tls"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/dnsserver"
	"github.com/spine-platform/spine/internal/fleet"
)

// echPublicName is the public name of Encrypted Client Hello (the outer
// SNI), or "" when ECH is off (fleet.ECHPublicName).
func (c *Config) echPublicName() string {
	if c.DisableECH {
		return ""
	}
	return fleet.ECHPublicName(c.ECHPublicName, c.Domain)
}

// buildECH builds the keeper of the fleet's ECH keys, which hands them to
// the edge; without a public name, ECH stays off.
func (n *Node) buildECH() {
	name := n.cfg.echPublicName()
	if name == "" {
		if !n.cfg.DisableECH {
			n.log.Info("Encrypted Client Hello is off: it needs a public name (give --ech-public-name, or --domain for ech.<domain>)")
		}
		return
	}
	n.fleet.ech = fleet.NewECHKeys(n.db, n.fleet.id, name, func(keys []tls.EncryptedClientHelloKey) error {
		return n.edge.SetECHKeys(keys, name)
	}, n.log)
}

// ECH returns the public name and the ECHConfigList published for the
// node's names (an HTTPS record's ech parameter), or "" and nil when ECH
// is off or its keys are not read yet.
func (n *Node) ECH() (publicName string, configList []byte) { return n.fleet.ech.Published() }

// alpn is what an HTTPS record of the node's names offers.
func (n *Node) alpn() []string {
	if n.quicConn != nil {
		return []string{"h3", "h2"}
	}
	return []string{"h2"}
}

// httpsRecord is the delegated DNS server's HTTPS record of a name the
// edge serves: ALPN h3 (when HTTP/3 is on) and h2, and the ECH
// configuration (when ECH is on and its keys are read).
func (n *Node) httpsRecord(name string) (dnsserver.HTTPSRecord, bool) {
	if n.edge == nil || !n.edge.Has(name) {
		return dnsserver.HTTPSRecord{}, false
	}
	_, list := n.ECH()
	return dnsserver.HTTPSRecord{ALPN: n.alpn(), ECH: list}, true
}

// echInfo is the API's ECH: what to publish in DNS.
func (n *Node) echInfo() (client.ECHInfo, bool) {
	name, list := n.ECH()
	if list == nil {
		return client.ECHInfo{}, false
	}
	return client.ECHInfo{PublicName: name, ConfigList: list, ALPN: n.alpn()}, true
}
