package inspect

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Timeout bounds the wait for a QUIC answer: nothing tells a UDP client
// that nobody listens, so a blocked or closed port costs this long.
const h3Timeout = 3 * time.Second

// tryH3 makes the HTTP/3 connection that Alt-Svc advertised, as a browser
// would for its next request: QUIC over UDP to the advertised authority
// (its host, or the address that answered over TCP), the certificate
// verified against the same roots, one GET for the same path.
func (in *inspector) tryH3(ctx context.Context, h *H3) {
	if !h.Advertised {
		return
	}
	host, port, err := net.SplitHostPort(h.Authority)
	if err != nil {
		h.Tried, h.Error = true, fmt.Sprintf("the advertised authority %q is not host:port", h.Authority)
		h.Explanation = "HTTP/3 is advertised with an authority a client cannot use: " + h.Authority
		return
	}
	if host == "" {
		host, _, _ = net.SplitHostPort(in.remote)
	}
	h.Address = net.JoinHostPort(host, port)
	h.Tried = true
	t := in.r.Target
	name := t.ServerName
	if name == "" {
		name = t.Host
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	var handshake time.Duration
	tr := &http3.Transport{
		TLSClientConfig: &tls.Config{ServerName: name, RootCAs: in.rootPool(), Time: in.clock.now},
		QUICConfig:      &quic.Config{HandshakeIdleTimeout: h3Timeout},
		Dial: func(ctx context.Context, _ string, tlsCfg *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			t0 := time.Now()
			c, err := quic.DialAddr(ctx, h.Address, tlsCfg, cfg)
			handshake = time.Since(t0)
			return c, err
		},
	}
	defer tr.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+name+t.Path, nil)
	if err != nil {
		h.Error = err.Error()
		return
	}
	req.Header.Set("User-Agent", in.cfg.UserAgent)
	t0 := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		h.Error = h3Words(err)
		h.Explanation = fmt.Sprintf("HTTP/3 is advertised at %s, but a QUIC connection there failed: %s (browsers fall back to TCP, after a delay)", h.Address, h.Error)
		return
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, bodyLimit))
	resp.Body.Close()
	h.Works = true
	h.Status = resp.StatusCode
	h.HandshakeMs = ms(handshake)
	h.RequestMs = ms(time.Since(t0))
	h.Explanation = fmt.Sprintf("HTTP/3 works: a QUIC connection to %s (UDP) verified the certificate for %s and answered %d over h3; browsers that saw the Alt-Svc header use it for %s",
		h.Address, name, resp.StatusCode, human(time.Duration(h.MaxAgeSeconds)*time.Second))
}

// h3Words says why a QUIC connection failed, in plain words where it can.
func h3Words(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "timeout: no recent network activity"), strings.Contains(s, "handshake did not complete in time"):
		return "no answer over UDP (a firewall dropping UDP, or nothing listening there)"
	case strings.Contains(s, "certificate"):
		return "the certificate was refused: " + s
	}
	return s
}
