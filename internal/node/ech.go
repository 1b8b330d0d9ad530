package node

import (
	"crypto/tls"

	"github.com/spine-platform/spine/internal/fleet"
	"github.com/spine-platform/spine/internal/hostname"
)

// echPublicName is the public name of Encrypted Client Hello (the outer
// SNI), or "" when ECH is off: Config.ECHPublicName, else "ech." under
// Config.Domain.
func (c *Config) echPublicName() string {
	name := ""
	switch {
	case c.DisableECH:
	case c.ECHPublicName != "":
		name = c.ECHPublicName
	case c.Domain != "":
		name = "ech." + c.Domain
	}
	if name == "" {
		return ""
	}
	n, err := hostname.Normalize(name)
	if err != nil {
		return "" // Validate refused it
	}
	return n
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
func (n *Node) ECH() (publicName string, configList []byte) {
	if n.fleet.ech == nil {
		return "", nil
	}
	return n.fleet.ech.PublicName(), n.fleet.ech.ConfigList()
}
