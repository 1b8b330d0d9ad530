package client

import (
	"encoding/json"
	"time"
)

// These types are the API's wire format; the server encodes the same structs.

// Project is a tenant.
type Project struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	// SuspendedAt is set while the operator has the project suspended:
	// its services answer 503 and its tokens can change nothing.
	SuspendedAt *time.Time `json:"suspended_at,omitempty"`
}

// ProjectCreate is the body of POST /v1/projects.
type ProjectCreate struct {
	Name string `json:"name"`
}

// ProjectCreated is the answer to POST /v1/projects: the project and its
// first token, "initial", whose value is shown this once.
type ProjectCreated struct {
	Project
	Token string `json:"token"`
}

// TokenCreate is the body of POST /v1/tokens.
type TokenCreate struct {
	Name string `json:"name"`
	// Scopes the token gets: read, services:write, domains:write,
	// tokens:write, operator. None: the caller's own project scopes.
	Scopes []string `json:"scopes,omitempty"`
	// ExpiresIn is the token's lifetime: "30d", "12h", "90m"; omitted: never expires.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// Token is an API token of the caller's project, without its value.
type Token struct {
	Name string `json:"name"`
	// Scopes are what the token may do, every one spelled out.
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"` // to the minute
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
}

// TokenCreated is the answer to POST /v1/tokens: the token and its value,
// shown this once.
type TokenCreated struct {
	Token
	Value string `json:"token"`
}

// AuditEntry is one change attempted through the API.
type AuditEntry struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Project string    `json:"project"` // project ID; "" for a refusal without a valid token
	Token   string    `json:"token"`   // the token's name
	Action  string    `json:"action"`  // e.g. "service.create"
	Subject string    `json:"subject"`
	Result  string    `json:"result"` // "ok" or the error code
	Status  int       `json:"status"`
	Client  string    `json:"client"` // the client's address
}

// DomainCreate is the body of POST /v1/domains.
type DomainCreate struct {
	Name string `json:"name"`
}

// Domain is a domain owned by the caller's project.
type Domain struct {
	Name   string `json:"name"`
	Status string `json:"status"` // "pending_verification" or "verified"
	// VerifyRecord is the DNS record, as a zone-file line, that proves ownership.
	VerifyRecord string     `json:"verify_record,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	VerifiedAt   *time.Time `json:"verified_at,omitempty"`
	CheckedAt    *time.Time `json:"checked_at,omitempty"`
	CheckError   string     `json:"check_error,omitempty"`
	// DelegationRecord is the CNAME that lets Spine answer DNS-01
	// challenges for the domain (wildcard certificates without DNS
	// credentials); empty when the server runs no delegation zone.
	DelegationRecord string `json:"delegation_record,omitempty"`
	// Moved is set by a verification that took the domain over from
	// another project.
	Moved bool `json:"moved,omitempty"`
	// CheckDetail says what the last verification found.
	CheckDetail string `json:"check_detail,omitempty"`
}

// ServiceCreate is the body of POST /v1/services.
type ServiceCreate struct {
	Name      string   `json:"name"`
	Domain    string   `json:"domain,omitempty"`
	Hosts     []string `json:"hosts,omitempty"`
	Upstreams []string `json:"upstreams"`
	// HSTSMaxAge in seconds; omitted means one year, 0 turns HSTS off.
	HSTSMaxAge *int `json:"hsts_max_age,omitempty"`
	// HealthPath is the path (with an optional query) of the upstreams'
	// active health check; omitted means "/".
	HealthPath string `json:"health_path,omitempty"`
	// HealthInterval is the time between two health checks, as a Go
	// duration ("15s", from 1s to 1h); omitted means 10s.
	HealthInterval string `json:"health_interval,omitempty"`
	// ClientCA is PEM certificates that verify clients' certificates
	// (mTLS); with it the edge asks every client of the service for one.
	ClientCA string `json:"client_ca,omitempty"`
	// ClientAuth is "require" (the default with a client CA) or "optional".
	ClientAuth string `json:"client_auth,omitempty"`
}

// ServiceUpdate is the body of PATCH /v1/services/{name}. An omitted field
// leaves that setting as it is.
type ServiceUpdate struct {
	// Upstreams replaces the upstream list (at least one).
	Upstreams []string `json:"upstreams,omitempty"`
	// AddHosts are hostnames to serve too, under the project's domains.
	AddHosts []string `json:"add_hosts,omitempty"`
	// RemoveHosts are hostnames to stop serving (not NAME.DOMAIN itself).
	RemoveHosts []string `json:"remove_hosts,omitempty"`
	HSTSMaxAge  *int     `json:"hsts_max_age,omitempty"`
	// HealthPath replaces the health-check path; "/" is the default.
	HealthPath *string `json:"health_path,omitempty"`
	// HealthInterval replaces the health-check interval ("15s"); "0s" goes
	// back to the default.
	HealthInterval *string `json:"health_interval,omitempty"`
	// ClientCA replaces the client CA ("" turns client certificates off).
	ClientCA *string `json:"client_ca,omitempty"`
	// ClientAuth replaces the mode: "require", "optional", or "off".
	ClientAuth *string `json:"client_auth,omitempty"`
}

// Service is a service of the caller's project.
type Service struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Domain     string   `json:"domain"`
	Hostnames  []string `json:"hostnames"`
	Upstreams  []string `json:"upstreams"`
	HSTSMaxAge int      `json:"hsts_max_age"`
	// HealthPath and HealthInterval are the upstreams' active health
	// check, defaults filled in ("/", "10s").
	HealthPath     string `json:"health_path"`
	HealthInterval string `json:"health_interval"`
	// ClientAuth is "require" or "optional" with ClientCA (PEM), the CA
	// clients' certificates are verified with; both empty without mTLS.
	ClientAuth string    `json:"client_auth,omitempty"`
	ClientCA   string    `json:"client_ca,omitempty"`
	URLs       []string  `json:"urls"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Certificate is the certificate state of one hostname.
type Certificate struct {
	Hostname  string     `json:"hostname"`
	Service   string     `json:"service"`
	Status    string     `json:"status"` // pending, issuing, active, failed, uploaded
	Issuer    string     `json:"issuer,omitempty"`
	NotBefore *time.Time `json:"not_before,omitempty"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
	// RenewAfter is when renewal falls due: the start of the renewal
	// window, the last part of the lifetime (a third by default). A CA's
	// renewal information (ARI) can bring it forward.
	RenewAfter *time.Time `json:"renew_after,omitempty"`
	Error      string     `json:"error,omitempty"`
	UpdatedAt  *time.Time `json:"updated_at,omitempty"`
}

// CertificateUpload is a certificate for one hostname that the project
// brought itself (PUT /v1/certificates/{hostname}).
type CertificateUpload struct {
	// Certificate is the PEM chain: the leaf first, then intermediates.
	Certificate string `json:"certificate"`
	// PrivateKey is the leaf's PEM private key, unencrypted. It is never
	// returned.
	PrivateKey string `json:"private_key"`
	// Root is PEM root certificates the chain must build to instead of
	// public roots (a private CA); checked against, never served.
	Root string `json:"root,omitempty"`
}

// UploadedCertificate describes an uploaded certificate (never its key).
type UploadedCertificate struct {
	Hostname   string    `json:"hostname"`
	Issuer     string    `json:"issuer"`
	Subject    string    `json:"subject"`
	Names      []string  `json:"names"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	SHA256     string    `json:"sha256"`
	UploadedAt time.Time `json:"uploaded_at"`
}

// ECHInfo is what a server publishes of Encrypted Client Hello (GET
// /v1/ech): the configuration for the HTTPS records of its names. All of
// it is public.
type ECHInfo struct {
	// PublicName is the name ECH clients show on the wire.
	PublicName string `json:"public_name"`
	// ConfigList is the ECHConfigList (the HTTPS record's ech parameter;
	// base64 in JSON).
	ConfigList []byte `json:"config_list"`
	// ALPN is the protocols the HTTPS record offers: h3 (when HTTP/3 is
	// on) and h2.
	ALPN []string `json:"alpn"`
}

// VersionInfo describes a build of Spine: the server's (GET /v1/version),
// or the CLI's own (`spine version`).
type VersionInfo struct {
	Version string `json:"version"`
	// Store is the server's store back end ("sqlite" or "postgres"); empty
	// for the CLI.
	Store string `json:"store,omitempty"`
	// Commit, CommitTime and Modified say which commit the binary was
	// built from and whether the work tree had changes (empty when the
	// build recorded none).
	Commit     string     `json:"commit,omitempty"`
	CommitTime *time.Time `json:"commit_time,omitempty"`
	Modified   bool       `json:"modified"`
	GoVersion  string     `json:"go_version"`
	OS         string     `json:"os"`
	Arch       string     `json:"arch"`
	// Race is set for a build with the race detector.
	Race bool `json:"race"`
	// Settings are the other build settings (CGO_ENABLED, -tags,
	// -trimpath, GOAMD64, ...); -ldflags and -gcflags are left out.
	Settings map[string]string `json:"settings,omitempty"`
}

// Event is an entry of the project's event log.
type Event struct {
	ID      int64           `json:"id"` // counts up per project, in the order events were recorded
	Type    string          `json:"type"`
	Time    time.Time       `json:"time"`
	Project string          `json:"project"`
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
}

// MaxServicePage is the most services one page of GET /v1/services holds
// (its limit=).
const MaxServicePage = 1000

// ServicePage is a page of GET /v1/services: the project's services by
// name, at most MaxServicePage (?limit=), after ?after= (a name) or from
// ?offset=.
type ServicePage struct {
	Services []Service `json:"services"`
	// Total is how many services the project has.
	Total int `json:"total"`
	// NextAfter is the after= of the next page (the last name of this
	// one); absent on the last page.
	NextAfter *string `json:"next_after,omitempty"`
	// NextOffset is the offset= of the next page, for a page asked by
	// offset; absent on the last one.
	NextOffset *int `json:"next_offset,omitempty"`
}

// EventPage is a page of GET /v1/events.
type EventPage struct {
	Events []Event `json:"events"`
	// Next is the after= of the next page: the last ID of this one (or
	// the after= asked for, when the page is empty).
	Next int64 `json:"next"`
	// More is set when the page is full: there may be more after Next.
	More bool `json:"more"`
}

// WebhookCreate is the body of POST /v1/webhooks.
type WebhookCreate struct {
	URL string `json:"url"`
	// Events are the event types sent; empty: every type.
	Events []string `json:"events,omitempty"`
}

// Webhook is an endpoint that receives the project's events.
type Webhook struct {
	ID     string   `json:"id"`
	URL    string   `json:"url"`
	Events []string `json:"events"` // empty: every type
	// Secret is the signing secret, "whsec_...": in the answer to
	// POST /v1/webhooks only. Keep it; it is never shown again.
	Secret         string     `json:"secret,omitempty"`
	Enabled        bool       `json:"enabled"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	FailingSince   *time.Time `json:"failing_since,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
}

// Delivery is one message to a webhook and how its attempts went.
type Delivery struct {
	ID          string          `json:"id"`
	WebhookID   string          `json:"webhook_id"`
	MsgID       string          `json:"msg_id"`             // the webhook-id header, the same for every attempt and redelivery
	EventID     int64           `json:"event_id,omitempty"` // absent for a test message
	Type        string          `json:"type"`
	Status      string          `json:"status"` // pending, delivered, failed
	Attempts    int             `json:"attempts"`
	NextAttempt *time.Time      `json:"next_attempt,omitempty"`
	LastStatus  int             `json:"last_status,omitempty"` // HTTP status of the last attempt
	LastError   string          `json:"last_error,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Payload     json.RawMessage `json:"payload,omitempty"` // the body sent; in GET /v1/deliveries/{id} only
}

// QuotaLimits are a project's limits. In Quota.Limits a null field is no
// limit; in Quota.Override (and the body of PUT /v1/projects/{id}/quota) a
// null field follows the operator's default and 0 is no limit.
type QuotaLimits struct {
	Domains       *int `json:"domains"`
	Services      *int `json:"services"`
	Hostnames     *int `json:"hostnames"`
	OrdersPerHour *int `json:"orders_per_hour"` // new ACME certificate orders in the last hour
}

// QuotaUsage is what a project holds.
type QuotaUsage struct {
	Domains        int `json:"domains"`
	Services       int `json:"services"`
	Hostnames      int `json:"hostnames"`
	OrdersLastHour int `json:"orders_last_hour"`
}

// Quota is a project's limits in force and its use.
type Quota struct {
	Project  string       `json:"project"`
	Limits   QuotaLimits  `json:"limits"`
	Usage    QuotaUsage   `json:"usage"`
	Override *QuotaLimits `json:"override,omitempty"` // the project's own limits: operator answers only
}
