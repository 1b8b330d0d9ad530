package platform

import "net/netip"

// The addresses a webhook may reach. internal/webhooks' dialer applies
// RefusedAddress to every address it connects to; AddWebhook to a URL
// whose host is an address.

// nonPublic are the networks a webhook may not reach unless the operator
// allows private targets, with what each is, for the error message.
var nonPublic = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), "the cloud metadata address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "the cloud metadata address"},
	{netip.MustParsePrefix("0.0.0.0/8"), `a "this network" address`},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local-use translation address"},
	{netip.MustParsePrefix("100::/64"), "a discard-only address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("fc00::/7"), "a private (unique local) address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
}

// NonPublic reports whether ip is an address a webhook must not reach
// without the operator's leave, and what it is. IPv4 in IPv6 (::ffff:a.b.c.d)
// and NAT64 of a private IPv4 (64:ff9b::a.b.c.d) count as the IPv4 address.
func NonPublic(ip netip.Addr) (string, bool) {
	ip = ip.Unmap()
	if ip.Is6() && netip.MustParsePrefix("64:ff9b::/96").Contains(ip) {
		b := ip.As16()
		if what, ok := NonPublic(netip.AddrFrom4([4]byte(b[12:]))); ok {
			return what + " (through NAT64)", true
		}
	}
	for _, n := range nonPublic {
		if n.prefix.Contains(ip) {
			return n.what, true
		}
	}
	return "", false
}

// Metadata reports whether ip is a cloud metadata address, which no
// webhook may reach, even where private addresses are allowed: it hands
// out the machine's credentials.
func Metadata(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip == netip.MustParseAddr("169.254.169.254") || ip == netip.MustParseAddr("fd00:ec2::254")
}

// RefusedAddress returns why a webhook may not reach ip (allowPrivate: the
// operator allows private targets, never the metadata address), or false.
func RefusedAddress(ip netip.Addr, allowPrivate bool) (string, bool) {
	if Metadata(ip) {
		return "the cloud metadata address", true
	}
	if allowPrivate {
		return "", false
	}
	return NonPublic(ip)
}
