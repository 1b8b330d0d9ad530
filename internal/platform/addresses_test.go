package platform_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/spine-platform/spine/internal/platform"
)

func TestNonPublic(t *testing.T) {
	for _, c := range []struct {
		ip   string
		what string // "" for public
	}{
		{"127.0.0.1", "loopback"}, {"127.1.2.3", "loopback"}, {"::1", "loopback"}, {"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"}, {"172.16.0.1", "private"}, {"172.31.255.255", "private"}, {"192.168.1.1", "private"},
		{"fd12:3456::1", "private"}, {"169.254.169.254", "metadata"}, {"fd00:ec2::254", "metadata"},
		{"169.254.1.1", "link-local"}, {"fe80::1", "link-local"}, {"0.0.0.0", "this network"}, {"::", "unspecified"},
		{"100.64.0.1", "carrier-grade"}, {"224.0.0.1", "multicast"}, {"ff02::1", "multicast"}, {"255.255.255.255", "reserved"},
		{"64:ff9b::a00:1", "NAT64"}, {"192.0.2.1", "documentation"},
		{"8.8.8.8", ""}, {"1.1.1.1", ""}, {"172.32.0.1", ""}, {"2606:4700::1111", ""}, {"64:ff9b::808:808", ""},
	} {
		what, bad := platform.NonPublic(netip.MustParseAddr(c.ip))
		if bad != (c.what != "") || !strings.Contains(what, c.what) {
			t.Errorf("NonPublic(%s) = %q, %v; want %q", c.ip, what, bad, c.what)
		}
	}
}

// Leave for private targets never covers the metadata address.
func TestRefused(t *testing.T) {
	for _, c := range []struct {
		ip           string
		allowPrivate bool
		refused      bool
	}{
		{"127.0.0.1", false, true}, {"127.0.0.1", true, false}, {"10.0.0.1", true, false},
		{"169.254.169.254", true, true}, {"::ffff:169.254.169.254", true, true}, {"fd00:ec2::254", true, true},
		{"8.8.8.8", false, false},
	} {
		if _, got := platform.RefusedAddress(netip.MustParseAddr(c.ip), c.allowPrivate); got != c.refused {
			t.Errorf("RefusedAddress(%s, allowPrivate %v) = %v", c.ip, c.allowPrivate, got)
		}
	}
}
