package edge

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"

	"github.com/spine-platform/spine/internal/accesslog"
	"github.com/spine-platform/spine/internal/metrics"
)

// Config configures a Server. The zero value works except for GetCertificate,
// which HTTPS needs. A Config must not be changed after it is passed to New.
type Config struct {
	// GetCertificate returns the certificate for a TLS handshake. The edge
	// calls it only for names in its route table, and for every TLS-ALPN-01
	// challenge handshake (ALPN "acme-tls/1" only), whatever the name.
	// If nil, every TLS handshake fails.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)

	// HTTPChallenge is offered every plain-HTTP request first; when it returns
	// true it has answered the request (ACME HTTP-01). If nil, none.
	HTTPChallenge func(http.ResponseWriter, *http.Request) bool

	// HTTPSPort is the port written in the Location of HTTP→HTTPS redirects.
	// Default 443, which is left out of the Location.
	HTTPSPort int

	// Logger receives the edge's logs. Default slog.Default().
	Logger *slog.Logger

	// AccessLog, if set, is given one entry for every request either
	// listener answered, once the answer has ended (accesslog.Log.Log). It
	// must not block, and must copy what it keeps: the entry is reused.
	// Every request carries an X-Request-ID (accesslog.RequestIDHeader)
	// whether or not this is set. Default nil: no entries are made.
	AccessLog func(*accesslog.Entry)
	// Metrics counts the edge's requests (per service), TLS handshakes and
	// open connections. Default nil: none.
	Metrics *metrics.Registry

	// HealthPath is the path (with an optional query) requested from each
	// upstream by the active health check, appended to the upstream URL's
	// path. Default "/".
	HealthPath string
	// KeepFreedMemory turns off the release of freed memory to the
	// operating system after a burst of new connections, and after a
	// sync's burst (memory.Pending; the runtime's scavenger then returns
	// that slowly) (release.go). The
	// release keeps resident memory near what the open connections hold,
	// at the price of a forced GC and a pause of the processor running it,
	// longest on a virtual machine, where returning a page costs most
	// (BENCHMARKS.md, "Idle connections", has the figures). Default false:
	// memory is released.
	KeepFreedMemory bool

	// HealthInterval is the time between two active health checks of an
	// upstream. Default 10s.
	HealthInterval time.Duration
	// HealthTimeout bounds one active health check. Default 2s.
	HealthTimeout time.Duration
	// FailCooldown is how long a transport error (refused or failed dial,
	// broken connection, response header timeout) takes an upstream out of
	// the rotation. Default 10s.
	FailCooldown time.Duration

	// DialTimeout bounds connecting to an upstream. Default 5s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// headers once the request is sent. Default 60s.
	ResponseHeaderTimeout time.Duration

	// MaxBodyBytes limits request bodies; a larger body gets 413. Default
	// 100 MiB; negative means unlimited.
	MaxBodyBytes int64
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	// There is no read or write timeout for whole requests, so that uploads
	// and responses can stream.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes limits the size of request headers (HTTP/1.1 and
	// HTTP/2 header lists). Default 64 KiB.
	MaxHeaderBytes int
	// MaxConcurrentStreams limits the concurrent streams of one HTTP/2
	// connection. Default 250.
	MaxConcurrentStreams int

	// clock is the monotonic clock of the certificate cache (certCacheTTL),
	// in nanoseconds. Default nanotime; tests of the package set a fake one.
	clock func() int64
}

// Defaults of Config.
const (
	defaultHTTPSPort             = 443
	defaultHealthPath            = "/"
	defaultHealthInterval        = 10 * time.Second
	defaultHealthTimeout         = 2 * time.Second
	defaultFailCooldown          = 10 * time.Second
	defaultDialTimeout           = 5 * time.Second
	defaultResponseHeaderTimeout = 60 * time.Second
	defaultMaxBodyBytes          = 100 << 20
	defaultReadHeaderTimeout     = 10 * time.Second
	defaultIdleTimeout           = 120 * time.Second
	defaultMaxHeaderBytes        = 64 << 10
	defaultMaxConcurrentStreams  = 250

	// Fixed upstream transport settings.
	upstreamIdleConnsPerHost = 256
	upstreamIdleConnTimeout  = 90 * time.Second
	upstreamTLSTimeout       = 5 * time.Second
)

// withDefaults returns cfg with every zero field set to its default.
func (cfg Config) withDefaults() Config {
	if cfg.HTTPSPort <= 0 {
		cfg.HTTPSPort = defaultHTTPSPort
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HealthPath == "" {
		cfg.HealthPath = defaultHealthPath
	} else if cfg.HealthPath[0] != '/' {
		cfg.HealthPath = "/" + cfg.HealthPath
	}
	setDuration(&cfg.HealthInterval, defaultHealthInterval)
	setDuration(&cfg.HealthTimeout, defaultHealthTimeout)
	setDuration(&cfg.FailCooldown, defaultFailCooldown)
	setDuration(&cfg.DialTimeout, defaultDialTimeout)
	setDuration(&cfg.ResponseHeaderTimeout, defaultResponseHeaderTimeout)
	setDuration(&cfg.ReadHeaderTimeout, defaultReadHeaderTimeout)
	setDuration(&cfg.IdleTimeout, defaultIdleTimeout)
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if cfg.MaxConcurrentStreams <= 0 {
		cfg.MaxConcurrentStreams = defaultMaxConcurrentStreams
	}
	if cfg.clock == nil {
		cfg.clock = nanotime
	}
	return cfg
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}
