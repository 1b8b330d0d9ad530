package config

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/spine-platform/spine/internal/accesslog"
	"github.com/spine-platform/spine/internal/ca"
	"github.com/spine-platform/spine/internal/certs"
	"github.com/spine-platform/spine/internal/edge"
	"github.com/spine-platform/spine/internal/logging"
	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/platform"
	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/syncer"
	"github.com/spine-platform/spine/internal/webhooks"
)

// The defaults of Config, in one place; cmd/spine shows them as its flags'.
const (
	DefaultDataDir        = ".spine"
	DefaultSecretKeyFile  = "secret.key" // in the data folder
	DefaultHTTPSAddr      = edge.DefaultHTTPSAddr
	DefaultHTTPAddr       = edge.DefaultHTTPAddr
	DefaultAPIAddr        = "127.0.0.1:2019"
	DefaultLeafLifetime   = ca.DefaultLeafLifetime
	DefaultCertCacheSize  = certs.DefaultCacheCapacity
	DefaultResyncInterval = syncer.DefaultInterval
	DefaultCheckInterval  = time.Minute
	DefaultDNSAddr        = ":53"
	// DefaultRenewCheckInterval and DefaultRenewalWindowRatio are
	// certmagic's (10 minutes, the last third of a certificate's lifetime).
	DefaultRenewCheckInterval = certmagic.DefaultRenewCheckInterval
	DefaultRenewalWindowRatio = certmagic.DefaultRenewalWindowRatio
)

// Values of Config.AccessLog other than a file's path.
const (
	AccessLogOff    = accesslog.Off
	AccessLogStderr = accesslog.Stderr
)

// Values of Config.Metrics besides a listen address.
const (
	MetricsOnAPI = metrics.OnAPI
	MetricsOff   = metrics.Off
)

// DefaultMetricsMaxSeries is MetricsMaxSeries's default.
const DefaultMetricsMaxSeries = metrics.DefaultMaxSeries

// Bounds of Config.LeafLifetime (the internal CA's: ca.CheckLeafLifetime).
const (
	MinLeafLifetime = ca.MinLeafLifetime
	MaxLeafLifetime = ca.MaxLeafLifetime
)

// Presets of well-known ACME directories.
const (
	LetsEncryptProduction = certs.LetsEncryptProduction
	LetsEncryptStaging    = certs.LetsEncryptStaging
)

// Config configures a node. The zero value of every optional field is usable:
// it stands for the default its comment names (the Default constants).
// Validate refuses what node.Start would; Start does not change a Config
// handed to it.
type Config struct {
	// DataDir holds the SQLite store, the admin token and ca/root.pem.
	// Created 0700. Default ".spine".
	DataDir string
	// Store is "sqlite:PATH" or a postgres:// URL. Default: sqlite:<DataDir>/spine.db.
	Store string
	// SecretKeyFile holds the keys that seal the private keys and other
	// secrets in the store and the snapshot (internal/secrets), newest
	// first; every node of a fleet needs the same keys. Missing, it is
	// created (0600) if the store holds nothing sealed yet, else the start
	// is refused. Read again every 10 s, for a rotation. Default
	// <DataDir>/secret.key.
	SecretKeyFile string
	// Settings are the edge's: HTTPSAddr, HTTPAddr, DisableHTTP3,
	// DisableECH, ECHPublicName (edge.Settings has each default).
	edge.Settings
	// APIAddr is the API's listen address. Default "127.0.0.1:2019".
	APIAddr string
	// Metrics is where GET /metrics (Prometheus) is served: MetricsOnAPI
	// (the API's listener, as Caddy serves its metrics on its admin port),
	// MetricsOff, or a listen address (HOST:PORT) of its own, for an
	// operator who exposes the API to tenants but not the hostnames and
	// upstreams the metrics name. Default MetricsOnAPI.
	Metrics string
	// MetricsMaxSeries bounds the /metrics series labelled by hostname,
	// and those by service and upstream: beyond it, those not ready (not
	// healthy) come first and counts cover the rest
	// (metrics.DefaultMaxSeries). 0: the default.
	MetricsMaxSeries int
	// Domain, if set, is given to the default project at start (verified:
	// the operator vouches for it), for example "localhost" in `spine up`.
	Domain string
	// Demo starts a small built-in upstream and the service "hello" on it.
	Demo bool
	// LeafLifetime is the lifetime of internal CA certificates. Default 24h.
	LeafLifetime time.Duration
	// CertCacheSize is the most certificates held in memory; the others
	// are loaded from the store by their hostname's first handshake, and
	// the snapshot (fail static) holds the ones in memory. Default
	// certs.DefaultCacheCapacity (10,000); -1: no bound.
	CertCacheSize int
	// ResyncInterval is how often the node rereads the whole store even
	// without a change notice, to repair a missed one. Default 30s.
	ResyncInterval time.Duration
	// Version is reported by the API.
	Version string
	// Edge sets the edge's limits and timeouts (ReadHeaderTimeout,
	// MaxHeaderBytes, MaxConcurrentStreams, ...); see edge.Config for each
	// default. Its GetCertificate, HTTPChallenge, HTTPSPort, Logger,
	// AccessLog and Metrics are ignored: the node wires those itself.
	// Default: the edge's defaults.
	Edge edge.Config
	// ACME configures certificates from ACME CAs, domain verification and
	// DNS-01 (certs.ACMEConfig). Default: the internal CA alone.
	ACME certs.ACMEConfig
	// Webhooks configures the sending of webhooks. Default: public
	// targets only, 15 s per attempt.
	Webhooks WebhooksConfig
	// Quota is every project's limits unless the operator gave it its own
	// (store.DB.SetDefaultQuota); 0 in a field is no limit. Default: no limits.
	Quota store.Quota
	// Audit bounds the audit trail (platform.AuditSettings). Defaults 90
	// days and 10,000 entries a project.
	Audit platform.AuditSettings
	// Logger is the node's logger. Default slog.Default().
	Logger *slog.Logger
	// AccessLog is where the edge writes one line per request
	// (internal/accesslog): "stderr", the path of a file (appended to,
	// created 0640, opened again by ReopenAccessLog), or "off". Default
	// "" (off).
	AccessLog string
	// AccessLogFormat is the access log's format. Default logging.Text.
	AccessLogFormat logging.Format
	// BeforeIssue, if set, runs before each issuance by the internal CA,
	// while this node holds the name's issuance lock; an error stops the
	// issuance (certmagic retries later). A hook for tests that need the
	// lock held (test/fleet, through the spinetest binary's
	// --test-issue-delay). Default nil.
	BeforeIssue func(ctx context.Context, names []string) error
}

// WebhooksConfig configures the webhook sender: its settings, bounds and
// checks are webhooks.Settings'.
type WebhooksConfig = webhooks.Settings

// MaxWebhookTimeout bounds WebhooksConfig.AttemptTimeout.
const MaxWebhookTimeout = webhooks.MaxAttemptTimeout

// MaxQuota bounds each field of Config.Quota.
const MaxQuota = store.MaxQuota

// WithDefaults returns c with every zero field set to its default (the
// Default constants). node.Start applies it after Validate.
func (c Config) WithDefaults() Config {
	set := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	set(&c.DataDir, DefaultDataDir)
	set(&c.Store, "sqlite:"+filepath.Join(c.DataDir, "spine.db"))
	set(&c.SecretKeyFile, filepath.Join(c.DataDir, DefaultSecretKeyFile))
	set(&c.HTTPSAddr, DefaultHTTPSAddr)
	set(&c.HTTPAddr, DefaultHTTPAddr)
	set(&c.APIAddr, DefaultAPIAddr)
	set(&c.Metrics, MetricsOnAPI)
	set(&c.ACME.DNSAddr, DefaultDNSAddr)
	for _, d := range []struct {
		field *time.Duration
		def   time.Duration
	}{{&c.LeafLifetime, DefaultLeafLifetime}, {&c.ResyncInterval, DefaultResyncInterval}, {&c.ACME.CheckInterval, DefaultCheckInterval}} {
		if *d.field == 0 {
			*d.field = d.def
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	// CertCacheSize, the renewal settings and the order pace are left to
	// certs.Config, whose zero values are the same defaults.
	return c
}

// EdgeConfig returns base with the limits and timeouts of c.Edge laid over
// it. The fields the node wires itself (GetCertificate, HTTPChallenge,
// HTTPSPort, Logger, AccessLog, Metrics) always come from base; a zero
// limit keeps the edge's default.
func (c *Config) EdgeConfig(base edge.Config) edge.Config {
	e := c.Edge
	e.GetCertificate = base.GetCertificate
	e.HTTPChallenge = base.HTTPChallenge
	e.HTTPSPort = base.HTTPSPort
	e.Logger = base.Logger
	e.AccessLog = base.AccessLog
	e.Metrics = base.Metrics
	return e
}
