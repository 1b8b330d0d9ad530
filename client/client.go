// Package client is a Go client for Spine's HTTP API. The spine CLI is built
// on it; other programs may import it too, so it brings nothing along but
// the standard library.
//
//	c := client.New("http://127.0.0.1:2019", token)
//	svc, err := c.CreateService(ctx, client.ServiceCreate{Name: "api", Upstreams: []string{"http://127.0.0.1:9000"}})
//
// Imports: only the standard library.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one Spine API endpoint with one project's token.
// It is safe for concurrent use.
type Client struct {
	base  string
	token string
	// HTTP is the client used for requests. Default: a client with a 30 s timeout.
	HTTP *http.Client
}

// New returns a client for the API at base (for example "http://127.0.0.1:2019").
func New(base, token string) *Client {
	return &Client{
		base:  strings.TrimSuffix(base, "/"),
		token: token,
		HTTP:  &http.Client{Timeout: 30 * time.Second},
	}
}

// Error is an error answer from the API.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
	// Quota names the limit and the use, with the code "quota_exceeded".
	Quota *QuotaExceeded `json:"quota,omitempty"`
}

// QuotaExceeded is the limit a refused write would have passed.
type QuotaExceeded struct {
	Limit string `json:"limit"` // "domains", "services", "hostnames"
	Max   int    `json:"max"`
	Used  int    `json:"used"`
}

func (e *Error) Error() string { return e.Message + " (" + e.Code + ")" }

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("spine API at %s is not answering (is `spine up` or `spine serve` running?): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("reading the API answer: %w", err)
	}
	if resp.StatusCode >= 400 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Code = "http_" + fmt.Sprint(resp.StatusCode)
			e.Message = fmt.Sprintf("the API answered %s", resp.Status)
		}
		return e
	}
	if out == nil {
		return nil
	}
	if p, ok := out.(*[]byte); ok {
		*p = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the API answer: %w", err)
	}
	return nil
}

// Project is the project a token belongs to.
func (c *Client) Project(ctx context.Context) (Project, error) {
	var p Project
	return p, c.do(ctx, http.MethodGet, "/v1/project", nil, &p)
}

// Domains lists the project's domains.
func (c *Client) Domains(ctx context.Context) ([]Domain, error) {
	var out struct{ Domains []Domain }
	return out.Domains, c.do(ctx, http.MethodGet, "/v1/domains", nil, &out)
}

// Domain returns one of the project's domains.
func (c *Client) Domain(ctx context.Context, name string) (Domain, error) {
	var d Domain
	return d, c.do(ctx, http.MethodGet, "/v1/domains/"+url.PathEscape(name), nil, &d)
}

// AddDomain adds a domain to the project.
func (c *Client) AddDomain(ctx context.Context, name string) (Domain, error) {
	var d Domain
	return d, c.do(ctx, http.MethodPost, "/v1/domains", DomainCreate{Name: name}, &d)
}

// VerifyDomain looks up the domain's ownership record now. The answer
// is the domain with its new status and what the lookup found; for a
// domain of another project, a successful proof moves it to this one.
func (c *Client) VerifyDomain(ctx context.Context, name string) (Domain, error) {
	var d Domain
	return d, c.do(ctx, http.MethodPost, "/v1/domains/"+url.PathEscape(name)+"/verify", nil, &d)
}

// RemoveDomain removes a domain that no service uses.
func (c *Client) RemoveDomain(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/domains/"+url.PathEscape(name), nil, nil)
}

// Services lists the project's services, every page of them.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	all := []Service{}
	for page, err := range c.ServicePages(ctx, 0) {
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
	}
	return all, nil
}

// ServicePages yields the project's services a page at a time, in name
// order, following next_after, so a caller can handle a page and let it go
// before asking for the next (a million services are a thousand pages of
// 1,000). limit is the page's size (0: the server's default, 1,000). It
// stops after the first error, which it yields with a nil page. A service
// created or deleted between two pages moves none of the others.
func (c *Client) ServicePages(ctx context.Context, limit int) iter.Seq2[[]Service, error] {
	return func(yield func([]Service, error) bool) {
		for after := ""; ; {
			p, err := c.ServicePage(ctx, after, 0, limit)
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(p.Services, nil) || p.NextAfter == nil || *p.NextAfter <= after {
				return
			}
			after = *p.NextAfter
		}
	}
}

// ServicePage returns a page of the project's services by name: those
// after the name after ("": from the first), skipping offset, at most
// limit (0: the server's default, 1,000).
func (c *Client) ServicePage(ctx context.Context, after string, offset, limit int) (ServicePage, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := "/v1/services"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p ServicePage
	return p, c.do(ctx, http.MethodGet, path, nil, &p)
}

// Service returns one service.
func (c *Client) Service(ctx context.Context, name string) (Service, error) {
	var s Service
	return s, c.do(ctx, http.MethodGet, "/v1/services/"+url.PathEscape(name), nil, &s)
}

// CreateService creates a service; it is served over HTTPS as soon as its
// certificate is issued (see Certificates, or WaitServing).
func (c *Client) CreateService(ctx context.Context, in ServiceCreate) (Service, error) {
	var s Service
	return s, c.do(ctx, http.MethodPost, "/v1/services", in, &s)
}

// UpdateService changes a service in place: its upstreams, hostnames,
// HSTS or health check. Nothing changes unless the whole update is valid;
// an added hostname is served once its certificate is issued (see
// WaitServing), and a removed one stops being served.
func (c *Client) UpdateService(ctx context.Context, name string, in ServiceUpdate) (Service, error) {
	var s Service
	return s, c.do(ctx, http.MethodPatch, "/v1/services/"+url.PathEscape(name), in, &s)
}

// DeleteService deletes a service.
func (c *Client) DeleteService(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/services/"+url.PathEscape(name), nil, nil)
}

// Certificates lists the certificate state of every hostname of the project.
func (c *Client) Certificates(ctx context.Context) ([]Certificate, error) {
	var out struct{ Certificates []Certificate }
	return out.Certificates, c.do(ctx, http.MethodGet, "/v1/certificates", nil, &out)
}

// UploadCertificate uploads a certificate the project brought for one of
// its hostnames; the server checks it first and says which check failed.
func (c *Client) UploadCertificate(ctx context.Context, hostname string, in CertificateUpload) (UploadedCertificate, error) {
	var out UploadedCertificate
	return out, c.do(ctx, http.MethodPut, "/v1/certificates/"+url.PathEscape(hostname), in, &out)
}

// RemoveCertificate removes the uploaded certificate of hostname, which
// goes back to a managed certificate.
func (c *Client) RemoveCertificate(ctx context.Context, hostname string) error {
	return c.do(ctx, http.MethodDelete, "/v1/certificates/"+url.PathEscape(hostname), nil, nil)
}

// CARoot returns the PEM of the internal CA's root certificate.
func (c *Client) CARoot(ctx context.Context) ([]byte, error) {
	var b []byte
	return b, c.do(ctx, http.MethodGet, "/v1/ca/root", nil, &b)
}

// ECH returns what the server publishes of Encrypted Client Hello; an
// *Error with Code "ech_off" when ECH is off.
func (c *Client) ECH(ctx context.Context) (ECHInfo, error) {
	var e ECHInfo
	return e, c.do(ctx, http.MethodGet, "/v1/ech", nil, &e)
}

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	return v, c.do(ctx, http.MethodGet, "/v1/version", nil, &v)
}
