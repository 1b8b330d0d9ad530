package fleet

import (
	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/dnsserver"
)

// Published is what a node publishes for the names it serves: the ALPN
// protocols (h3 when HTTP/3 is served, and h2) and ECH's configuration,
// in the delegation zone's HTTPS records (HTTPSRecord) and in the API
// (Info). Its fields are set before anything asks.
type Published struct {
	// HTTP3 says whether HTTP/3 is served. Default off: h2 only.
	HTTP3 bool
	// ECH is the fleet's ECH keys. Default nil: ECH off.
	ECH *ECHKeys
	// Serves reports whether the edge routes a name. Default nil: none.
	Serves func(name string) bool
}

// ALPN is what an HTTPS record of the node's names offers.
func (p *Published) ALPN() []string {
	if p.HTTP3 {
		return []string{"h3", "h2"}
	}
	return []string{"h2"}
}

// HTTPSRecord is the delegated DNS server's HTTPS record of a name the
// edge serves: ALPN h3 (when HTTP/3 is on) and h2, and the ECH
// configuration (when ECH is on and its keys are read).
func (p *Published) HTTPSRecord(name string) (dnsserver.HTTPSRecord, bool) {
	if p.Serves == nil || !p.Serves(name) {
		return dnsserver.HTTPSRecord{}, false
	}
	_, list := p.ECH.Published()
	return dnsserver.HTTPSRecord{ALPN: p.ALPN(), ECH: list}, true
}

// Info is the API's ECH: what to publish in DNS; false when ECH is off or
// its keys are not read yet.
func (p *Published) Info() (client.ECHInfo, bool) {
	name, list := p.ECH.Published()
	if list == nil {
		return client.ECHInfo{}, false
	}
	return client.ECHInfo{PublicName: name, ConfigList: list, ALPN: p.ALPN()}, true
}
