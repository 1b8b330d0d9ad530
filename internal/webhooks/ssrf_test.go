package webhooks_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/webhooks"
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
		what, bad := webhooks.NonPublic(netip.MustParseAddr(c.ip))
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
		if _, got := webhooks.Refused(netip.MustParseAddr(c.ip), c.allowPrivate); got != c.refused {
			t.Errorf("Refused(%s, allowPrivate %v) = %v", c.ip, c.allowPrivate, got)
		}
	}
}

// The dialer refuses a non-public address after resolution and before
// connecting: a name that resolves to loopback is refused, and the
// listener there sees no connection.
func TestDialerRefusesAtConnectTime(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, addr := range []string{"127.0.0.1:" + port, "localhost:" + port, "[::ffff:127.0.0.1]:" + port} {
		_, err := webhooks.Dialer(false, 5*time.Second).DialContext(ctx, "tcp", addr)
		var refused *webhooks.RefusedError
		if !errors.As(err, &refused) || !strings.Contains(refused.What, "loopback") {
			t.Errorf("dial %s: %v, want refused as loopback", addr, err)
		}
	}
	// Allowed, the same dial connects: the refusal was the check's.
	c, err := webhooks.Dialer(true, 5*time.Second).DialContext(ctx, "tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-accepted
	select {
	case <-accepted:
		t.Error("a refused dial reached the listener")
	default:
	}
}
