package node

import "github.com/spine-platform/spine/internal/edge"

// edgeConfig returns base with the limits and timeouts of cfg.Edge laid
// over it. The fields the node wires itself (GetCertificate, HTTPChallenge,
// HTTPSPort, Logger) always come from base; a zero limit keeps the edge's
// default.
func (cfg *Config) edgeConfig(base edge.Config) edge.Config {
	e := cfg.Edge
	e.GetCertificate = base.GetCertificate
	e.HTTPChallenge = base.HTTPChallenge
	e.HTTPSPort = base.HTTPSPort
	e.Logger = base.Logger
	return e
}
