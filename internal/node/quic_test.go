package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/poll"
)

// h3Get makes an HTTP/3 request to the node's HTTPS port over UDP,
// verifying the chain against the node's CA root.
func h3Get(t *testing.T, n *Node, host, authority string) (*http.Response, string, error) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(n.CA().Root())
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			return quic.DialAddr(ctx, n.HTTPSAddr(), tlsCfg, cfg) // the same port, over UDP
		},
	}
	defer tr.Close()
	req, _ := http.NewRequest("GET", "https://"+host+"/", nil)
	req.Host = authority
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

func TestHTTP3OnTheHTTPSPort(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	other := upstream(t, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "other service") })
	if _, err := adminClient(t, n, dir).CreateService(context.Background(), client.ServiceCreate{Name: "other", Upstreams: []string{other}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "demo service over HTTP/3", waitTimeout, func() error {
		resp, body, err := h3Get(t, n, "hello.localhost", "hello.localhost")
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != 3 || !strings.Contains(body, "Hello from Spine") {
			return fmt.Errorf("%s %d %q", resp.Proto, resp.StatusCode, body)
		}
		if leaf := resp.TLS.PeerCertificates[0]; !strings.Contains(leaf.Issuer.CommonName, "Spine") {
			return fmt.Errorf("issuer %q", leaf.Issuer.CommonName)
		}
		return nil
	})
	poll.Until(t, "the other service over HTTP/3", waitTimeout, func() error {
		resp, body, err := h3Get(t, n, "other.localhost", "other.localhost")
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || body != "other service" {
			return fmt.Errorf("%d %q", resp.StatusCode, body)
		}
		return nil
	})
	// A Host other than the connection's SNI is refused, as over TCP.
	resp, body, err := h3Get(t, n, "hello.localhost", "other.localhost")
	if err != nil || resp.StatusCode != http.StatusMisdirectedRequest || strings.Contains(body, "other service") {
		t.Errorf("another Host over HTTP/3: %v %q %v, want 421", resp, body, err)
	}
	// HTTPS over TCP advertises it on the same port.
	resp, _, err = httpsGet(t, n, "hello.localhost", "/")
	if err != nil {
		t.Fatal(err)
	}
	if want := `h3=":` + strconv.Itoa(port(n.httpsLn.Addr())) + `"; ma=86400`; resp.Header.Get("Alt-Svc") != want {
		t.Errorf("Alt-Svc %q, want %q", resp.Header.Get("Alt-Svc"), want)
	}
}

func TestHTTP3Off(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := Start(ctx, config.Config{DataDir: t.TempDir(), Settings: edge.Settings{HTTPSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DisableHTTP3: true}, APIAddr: "127.0.0.1:0",
		Domain: "localhost", Demo: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	poll.Until(t, "demo service over HTTPS", waitTimeout, func() error {
		resp, _, err := httpsGet(t, n, "hello.localhost", "/")
		if err != nil {
			return err
		}
		if got := resp.Header.Get("Alt-Svc"); got != "" {
			t.Errorf("Alt-Svc %q with HTTP/3 off", got)
		}
		return nil
	})
	if n.quicConn != nil {
		t.Error("a UDP socket was opened with HTTP/3 off")
	}
}
