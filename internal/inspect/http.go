package inspect

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
)

// httpTimeout bounds the request on the inspected connection.
const httpTimeout = 10 * time.Second

// bodyLimit is how much of the answer's body is read (and dropped) before
// the connection is closed: enough for the server to have sent a session
// ticket, not a download.
const bodyLimit = 64 << 10

// get sends one GET request on the inspected connection, in the protocol
// ALPN chose, and reports the answer's status and transport headers.
func (in *inspector) get(ctx context.Context, c *tls.Conn) *HTTP {
	t := in.r.Target
	h := &HTTP{Protocol: c.ConnectionState().NegotiatedProtocol}
	if h.Protocol == "" {
		h.Protocol = "http/1.1"
	}
	host := t.ServerName
	if host == "" {
		host = t.Host
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	if t.Port != 443 {
		host += ":" + strconv.Itoa(t.Port)
	}
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+t.Path, nil)
	if err != nil {
		h.Error = fmt.Sprintf("building the request: %v", err)
		return h
	}
	req.Header.Set("User-Agent", in.cfg.UserAgent)
	c.SetDeadline(time.Now().Add(httpTimeout))
	defer c.SetDeadline(time.Time{})

	var resp *http.Response
	if h.Protocol == "h2" {
		cc, err := (&http2.Transport{}).NewClientConn(c)
		if err != nil {
			h.Error = fmt.Sprintf("starting HTTP/2: %v", err)
			return h
		}
		defer cc.Close()
		resp, err = cc.RoundTrip(req)
		if err != nil {
			h.Error = fmt.Sprintf("no HTTP/2 answer: %v", err)
			return h
		}
	} else {
		req.Close = true
		if err := req.Write(c); err != nil {
			h.Error = fmt.Sprintf("sending the request: %v", err)
			return h
		}
		resp, err = http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			h.Error = fmt.Sprintf("no HTTP/1.1 answer: %v", err)
			return h
		}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, bodyLimit))
	resp.Body.Close()

	h.Status = resp.StatusCode
	h.StatusText = http.StatusText(resp.StatusCode)
	h.Server = resp.Header.Get("Server")
	h.HSTS = resp.Header.Get("Strict-Transport-Security")
	h.HSTSWhat = hstsWhat(h.HSTS)
	h.AltSvc = strings.Join(resp.Header.Values("Alt-Svc"), ", ")
	h.H3 = h3From(h.AltSvc)
	return h
}

// hstsWhat explains a Strict-Transport-Security header.
func hstsWhat(v string) string {
	if v == "" {
		return "no HSTS: a browser may still try http:// first, where an attacker on the network can answer"
	}
	var maxAge int64 = -1
	sub, preload := false, false
	for _, d := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(k) {
		case "max-age":
			if n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil {
				maxAge = n
			}
		case "includesubdomains":
			sub = true
		case "preload":
			preload = true
		}
	}
	switch {
	case maxAge < 0:
		return "invalid HSTS header (no max-age): browsers ignore it"
	case maxAge == 0:
		return "HSTS off: max-age=0 tells browsers to forget this host's HSTS"
	}
	s := fmt.Sprintf("browsers that saw this answer use only HTTPS for this host for %s", human(time.Duration(maxAge)*time.Second))
	if sub {
		s += ", and for every name under it"
	}
	if preload {
		s += "; the host asks to be on the browsers' built-in HSTS list"
	}
	return s
}

// h3From reads what an Alt-Svc header says of HTTP/3 (RFC 7838).
func h3From(altSvc string) H3 {
	h := H3{Explanation: "no HTTP/3: the answer has no Alt-Svc header offering h3"}
	if altSvc == "" {
		return h
	}
	if strings.TrimSpace(altSvc) == "clear" {
		h.Explanation = "Alt-Svc: clear: the server withdraws any alternative service it offered, HTTP/3 included"
		return h
	}
	for _, alt := range strings.Split(altSvc, ",") {
		params := strings.Split(alt, ";")
		proto, auth, ok := strings.Cut(strings.TrimSpace(params[0]), "=")
		if !ok || proto != "h3" {
			continue
		}
		h.Advertised = true
		h.Authority = strings.Trim(auth, `"`)
		h.MaxAgeSeconds = 86400 // RFC 7838's default
		for _, p := range params[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if k == "ma" {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					h.MaxAgeSeconds = n
				}
			}
		}
		h.Explanation = fmt.Sprintf("HTTP/3 is offered at %s for %s: a browser that saw this answer tries QUIC (UDP) there for its next requests", h.Authority, human(time.Duration(h.MaxAgeSeconds)*time.Second))
		return h
	}
	h.Explanation = "no HTTP/3: Alt-Svc offers other protocols, not h3"
	return h
}
