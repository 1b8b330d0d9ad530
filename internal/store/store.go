// Package store keeps Spine's state: projects, API tokens, domains, services,
// certificate status, a key-value space for certmagic (certificates, keys,
// ACME accounts, the internal CA), expiring locks and change notices.
//
// One type, DB, serves two back ends chosen by the DSN given to Open:
// "sqlite:PATH" (modernc.org/sqlite, the embedded default) and
// "postgres://..." (pgx, for a fleet of nodes). Every write runs in a
// transaction; a write that returned nil is durable.
//
// Imports: never internal/edge, internal/api, github.com/caddyserver/certmagic.
package store

import (
	"errors"
	"time"
)

// Errors that callers tell apart. They are wrapped with context; test with errors.Is.
var (
	// ErrNotFound means the object (or key) does not exist, or belongs to another project.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique name (project, domain, service, hostname) is already taken.
	ErrConflict = errors.New("already exists")
	// ErrInUse means the object cannot be removed while other objects depend on it
	// (a domain that services still use).
	ErrInUse = errors.New("in use")
	// ErrUnavailable means the database cannot be reached; the caller may retry.
	ErrUnavailable = errors.New("store unavailable")
)

// Project is a tenant. Every domain and service belongs to one project.
type Project struct {
	ID        string
	Name      string
	CreatedAt time.Time
	// SuspendedAt is when the operator suspended the project; zero while
	// it is active.
	SuspendedAt time.Time `json:",omitzero"`
}

// Token is an API token of a project. Only its SHA-256 hash (hex) is
// stored; Name is unique within the project.
type Token struct {
	ID        string
	ProjectID string
	Name      string
	Hash      string
	// Scopes are what the token may do, sorted; none means every scope of
	// its project (package platform gives them their meaning).
	Scopes     []string `json:",omitempty"`
	CreatedAt  time.Time
	ExpiresAt  time.Time `json:",omitzero"` // zero: never
	LastUsedAt time.Time `json:",omitzero"` // zero: never used; updated at most once a minute
}

// Credential is what a token hash authenticates: the token and its project.
type Credential struct {
	Token   Token
	Project Project
}

// Domain states.
const (
	DomainPending  = "pending_verification"
	DomainVerified = "verified"
)

// Domain is a DNS name owned by one project; its services live under it.
type Domain struct {
	Name        string // normalised, e.g. "example.com"
	ProjectID   string
	Status      string // DomainPending or DomainVerified
	VerifyToken string // random value the owner publishes in DNS (TXT _spine-challenge.<name>)
	CreatedAt   time.Time
	VerifiedAt  time.Time // zero until verified
	CheckedAt   time.Time // last ownership check, zero if never
	CheckError  string    // what the last failed check found, "" if none
}

// ServiceFinder answers the service reads of the API from a node's last
// known services instead of the store, while the store is away
// (api.StaleReads): serving.AppliedServices over what a sync applied, or
// a snapshot's list. Both answer as ListServices and GetService would
// have at that sync.
type ServiceFinder interface {
	// FindService returns projectID's service name, if there is one.
	FindService(projectID, name string) (Service, bool)
	// ProjectServices returns the page [offset, offset+limit) of
	// projectID's services sorted by name (limit 0: to the end), counted
	// from the first whose name sorts after after (all for ""), or of
	// every service sorted by project, then name, for projectID "", and
	// how many the project has in all. The caller may keep and modify the
	// answer.
	ProjectServices(projectID, after string, offset, limit int) ([]Service, int)
}

// Service is a named set of hostnames served over HTTPS and proxied to upstreams.
type Service struct {
	ID         string
	ProjectID  string
	Name       string
	Domain     string   // one of the project's domains
	Hostnames  []string // normalised; the first is <Name>.<Domain>
	Upstreams  []string // absolute http:// or https:// URLs
	HSTSMaxAge int      // seconds; 0 disables the Strict-Transport-Security header
	// HealthPath is the path (with an optional query) of the upstreams'
	// active health check; "" means the edge's default, "/".
	HealthPath string
	// HealthInterval is the time between two active health checks of an
	// upstream; 0 means the edge's default (10 s).
	HealthInterval time.Duration
	// ClientCA is PEM certificates that verify clients' certificates
	// (mTLS); "" with ClientAuth "".
	ClientCA string
	// ClientAuth is "" (no client certificate asked for), "require" or
	// "optional" (package platform checks it).
	ClientAuth string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Certificate states.
const (
	CertPending = "pending"
	CertIssuing = "issuing"
	CertActive  = "active"
	CertFailed  = "failed"
)

// CertStatus is the visible state of a hostname's certificate.
type CertStatus struct {
	Hostname  string
	Status    string // CertPending, CertIssuing, CertActive or CertFailed
	Issuer    string // issuer's common name, "" until issued
	NotBefore time.Time
	NotAfter  time.Time
	Error     string // the last failure in plain words, "" if none
	UpdatedAt time.Time
}

// KeyInfo describes a key of the key-value space.
type KeyInfo struct {
	Key        string
	Modified   time.Time
	Size       int64
	IsTerminal bool // false for a "directory": a prefix that other keys live under
}
