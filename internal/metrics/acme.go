package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ACMETransport returns next counting and timing each request to the ACME
// CA ca (its issuer key) in spine_acme_requests_total and
// spine_acme_request_duration_seconds. On a nil Registry it returns next.
func (r *Registry) ACMETransport(ca string, next http.RoundTripper) http.RoundTripper {
	if r == nil {
		return next
	}
	return &acmeTransport{r: r, ca: ca, next: next}
}

type acmeTransport struct {
	r    *Registry
	ca   string
	next http.RoundTripper
}

func (t *acmeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	endpoint := ACMEEndpoint(req.URL.Path)
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
	}
	t.r.acmeReqs.WithLabelValues(t.ca, endpoint, status).Inc()
	t.r.acmeDur.WithLabelValues(t.ca, endpoint).Observe(time.Since(start).Seconds())
	return resp, err
}

// ACMEEndpoint names the ACME resource a request is for, from a fixed
// set, so the label stays bounded whatever URLs a CA hands out: the
// resources of RFC 8555 (and RFC 9773's renewalInfo) are told apart by the
// words CAs put in their paths (Let's Encrypt's boulder: /acme/new-order,
// /acme/authz/..., /acme/chall/..., /acme/finalize/..., /acme/cert/...;
// Pebble: /dir, /nonce-plz, /order-plz, /authZ/, /chalZ/, /finalize-order/, /certZ/). A
// path it cannot place is "other".
func ACMEEndpoint(path string) string {
	p := strings.ToLower(path)
	switch {
	case strings.Contains(p, "directory") || p == "/dir" || p == "" || p == "/":
		return "directory"
	case strings.Contains(p, "nonce"):
		return "newNonce"
	case strings.Contains(p, "renewal-info") || strings.Contains(p, "renewalinfo"):
		return "renewalInfo"
	case strings.Contains(p, "revoke"):
		return "revokeCert"
	case strings.Contains(p, "key-change") || strings.Contains(p, "rollover"):
		return "keyChange"
	case strings.Contains(p, "new-acct") || strings.Contains(p, "new-account") || strings.Contains(p, "newaccount") || strings.Contains(p, "sign-me-up"):
		return "newAccount"
	case strings.Contains(p, "acct") || strings.Contains(p, "account") || strings.Contains(p, "my-account"):
		return "account"
	case strings.Contains(p, "new-order") || strings.Contains(p, "neworder") || strings.Contains(p, "order-plz"):
		return "newOrder"
	case strings.Contains(p, "finalize"):
		return "finalize"
	case strings.Contains(p, "authz"):
		return "authz"
	case strings.Contains(p, "chal"):
		return "challenge"
	case strings.Contains(p, "cert"):
		return "certificate"
	case strings.Contains(p, "order"):
		return "order"
	}
	return "other"
}
