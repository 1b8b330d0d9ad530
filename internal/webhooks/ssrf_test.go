package webhooks_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/webhooks"
)

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
