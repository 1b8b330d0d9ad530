package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Step is one stage a new service goes through before it is served.
type Step struct {
	Name   string // "registered", "certificate", "serving"
	Host   string
	Detail string
	Err    error // set when the step failed for good
}

// WaitServing follows a new service until every one of its URLs answers over
// HTTPS with a certificate that verifies (against the system roots and, if
// given, rootPEM). It reports each step to progress as it happens. Names
// under "localhost" are dialled on 127.0.0.1, as browsers and curl do.
func (c *Client) WaitServing(ctx context.Context, svc Service, rootPEM []byte, progress func(Step)) error {
	if progress == nil {
		progress = func(Step) {}
	}
	for _, h := range svc.Hostnames {
		progress(Step{Name: "registered", Host: h, Detail: "hostname registered"})
	}
	pending := map[string]bool{}
	for _, h := range svc.Hostnames {
		pending[h] = true
	}
	shown := map[string]string{} // the last state shown per hostname
	show := func(cert Certificate) {
		state := cert.Status + " " + cert.Error
		if shown[cert.Hostname] == state || (cert.Status != "issuing" && cert.Error == "") {
			return
		}
		shown[cert.Hostname] = state
		detail := "waiting: " + cert.Error
		if cert.Status == "issuing" {
			detail = "asking the certificate authority"
		}
		progress(Step{Name: "certificate", Host: cert.Hostname, Detail: detail})
	}
	for len(pending) > 0 {
		certs, err := c.Certificates(ctx)
		if err != nil {
			return err
		}
		for _, cert := range certs {
			if !pending[cert.Hostname] {
				continue
			}
			switch cert.Status {
			case "pending", "issuing":
				show(cert)
			case "active":
				delete(pending, cert.Hostname)
				detail := "certificate issued by " + cert.Issuer
				if cert.NotAfter != nil {
					detail += ", valid until " + cert.NotAfter.Format(time.RFC3339)
				}
				progress(Step{Name: "certificate", Host: cert.Hostname, Detail: detail})
			case "failed":
				err := fmt.Errorf("certificate for %s failed: %s", cert.Hostname, cert.Error)
				progress(Step{Name: "certificate", Host: cert.Hostname, Err: err})
				return err
			}
		}
		if len(pending) > 0 {
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return fmt.Errorf("waiting for certificates: %w", err)
			}
		}
	}

	hc, err := httpsClient(rootPEM)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	for _, u := range svc.URLs {
		start := time.Now()
		for {
			status, err := probe(ctx, hc, u)
			if err == nil {
				progress(Step{Name: "serving", Host: hostOf(u), Detail: fmt.Sprintf("%s answered %d over HTTPS (%s)", u, status, time.Since(start).Round(time.Millisecond))})
				break
			}
			if ctx.Err() != nil {
				progress(Step{Name: "serving", Host: hostOf(u), Err: err})
				return fmt.Errorf("waiting for %s: %w", u, err)
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return fmt.Errorf("waiting for %s: last error: %v", u, err)
			}
		}
	}
	return nil
}

// WaitUpdated follows an update of a service, from before to after, until
// it is served as updated: every hostname of after answers over HTTPS as
// WaitServing checks (an added one once its certificate is issued), and
// every hostname that after no longer has is refused by the TLS handshake
// (step "removed"). It reports each step to progress.
func (c *Client) WaitUpdated(ctx context.Context, before, after Service, rootPEM []byte, progress func(Step)) error {
	if progress == nil {
		progress = func(Step) {}
	}
	if err := c.WaitServing(ctx, after, rootPEM, progress); err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, h := range after.Hostnames {
		kept[h] = true
	}
	hc, err := httpsClient(rootPEM)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	for _, u := range before.URLs {
		h := hostOf(u)
		if kept[h] {
			continue
		}
		for {
			hc.CloseIdleConnections() // a new handshake each time
			_, err := probe(ctx, hc, u)
			if refusedHandshake(err) {
				progress(Step{Name: "removed", Host: h, Detail: "no longer served (the TLS handshake is refused)"})
				break
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				err = fmt.Errorf("waiting for %s to stop being served: %w", h, err)
				progress(Step{Name: "removed", Host: h, Err: err})
				return err
			}
		}
	}
	return nil
}

// refusedHandshake reports an error that says the server ended the TLS
// handshake with an alert (as the edge does for a name it does not serve).
func refusedHandshake(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

func probe(ctx context.Context, hc *http.Client, u string) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil
}

// httpsClient trusts the system roots plus rootPEM and dials *.localhost on
// the loopback address.
func httpsClient(rootPEM []byte) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(rootPEM) > 0 && !pool.AppendCertsFromPEM(rootPEM) {
		return nil, fmt.Errorf("the CA root is not a PEM certificate")
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Hostname()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
