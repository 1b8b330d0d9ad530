package metrics

import (
	"cmp"
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry holds a node's metrics. Its methods are safe for concurrent use,
// and those of a nil *Registry do nothing, so that parts built without
// metrics (tests, tools) need no checks.
type Registry struct {
	reg *prometheus.Registry

	requests   *prometheus.CounterVec   // service, code, proto
	durations  *prometheus.HistogramVec // service
	handshakes *prometheus.CounterVec   // result, version, group, resumed
	conns      *prometheus.GaugeVec     // listener, protocol
	obtains    *prometheus.CounterVec   // issuer, kind, result
	acmeReqs   *prometheus.CounterVec   // ca, endpoint, status
	acmeDur    *prometheus.HistogramVec // ca, endpoint
	warmReads  prometheus.Histogram     // the warm-up's look-ups

	mu       sync.Mutex          // serialises the creation and deletion of services' series
	services map[string]*Service // by label value; at most maxServices
	// maxServices bounds the services with request series (Sources.MaxSeries):
	// past it, making one drops the least recently used of a sample
	// (Registry.Service). made numbers the recorders made: a Service's
	// used is made's value at its last request.
	maxServices int
	made        atomic.Int64
	dropped     atomic.Int64 // recorders dropped for the bound
}

// New returns a Registry with Spine's metrics, the Go runtime's and the
// process's. sources may be zero; each of its functions is called at every
// scrape.
func New(sources Sources) *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_http_requests_total",
			Help: "HTTPS requests answered by the edge, by service (project/service), status code and HTTP version.",
		}, []string{"service", "code", "proto"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spine_http_request_duration_seconds",
			Help:    "Time from a request's headers to the end of its answer, by service (project/service).",
			Buckets: prometheus.DefBuckets,
		}, []string{"service"}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_tls_handshakes_total",
			Help: "TLS handshakes on the HTTPS listener, by result, TLS version, key exchange group and resumption.",
		}, []string{"result", "version", "group", "resumed"}),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "spine_open_connections",
			Help: "Open client connections, by listener (https, http) and protocol (h2, http/1.1).",
		}, []string{"listener", "protocol"}),
		obtains: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_certificate_obtain_total",
			Help: "Certificates obtained or failed, by issuer, kind (new, renewal) and result (success, failure).",
		}, []string{"issuer", "kind", "result"}),
		acmeReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spine_acme_requests_total",
			Help: "HTTP requests to ACME CAs, by CA (issuer key), endpoint and status code (\"error\" when no answer came).",
		}, []string{"ca", "endpoint", "status"}),
		acmeDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "spine_acme_request_duration_seconds",
			Help:    "Duration of HTTP requests to ACME CAs, by CA and endpoint.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"ca", "endpoint"}),
		warmReads: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "spine_warmup_lookup_duration_seconds",
			Help:    "Time the warm-up (a node serving while its first sync runs) took to read a name from the store: its service, the domains above it, its uploaded and stored certificates; failed reads too.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 3},
		}),
		services:    make(map[string]*Service),
		maxServices: cmp.Or(sources.MaxSeries, DefaultMaxSeries),
	}
	dropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "spine_metrics_services_dropped_total",
		Help: "Services whose request series were dropped to keep at most the series bound (--metrics-max-series) of services with them, the least recently used first.",
	}, func() float64 { return float64(r.dropped.Load()) })
	r.reg.MustRegister(r.requests, r.durations, r.handshakes, r.conns, r.obtains, r.acmeReqs, r.acmeDur, r.warmReads, dropped,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStateCollector(sources))
	return r
}

// Handler serves the registry in Prometheus's text format (or
// OpenMetrics, when the scraper asks for it). A scrape that takes longer
// than 10 s gets 503.
func (r *Registry) Handler() http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError, // a failed source leaves its series out, not the page
		Timeout:             10 * time.Second,
		MaxRequestsInFlight: 4,
		EnableOpenMetrics:   true,
	})
}

// Gatherer is the registry, for tests that read series without HTTP.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Handshake counts one TLS handshake of the HTTPS listener: state is the
// connection's after a successful one, nil after a failure.
func (r *Registry) Handshake(state *tls.ConnectionState) {
	if r == nil {
		return
	}
	if state == nil {
		r.handshakes.WithLabelValues("failure", "", "", "false").Inc()
		return
	}
	r.handshakes.WithLabelValues("success", tls.VersionName(state.Version), state.CurveID.String(),
		strconv.FormatBool(state.DidResume)).Inc()
}

// ConnState returns an http.Server ConnState hook that keeps the open
// connections of listener ("https" or "http") counted by protocol. On the
// HTTPS listener the protocol is the one ALPN chose (the connection's
// handshake is done before net/http sees it); else "http/1.1".
func (r *Registry) ConnState(listener string) func(net.Conn, http.ConnState) {
	if r == nil {
		return nil
	}
	h1 := r.conns.WithLabelValues(listener, "http/1.1")
	h2 := r.conns.WithLabelValues(listener, "h2")
	gauge := func(c net.Conn) prometheus.Gauge {
		if tc, ok := c.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol == "h2" {
			return h2
		}
		return h1
	}
	return func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			gauge(c).Inc()
		case http.StateClosed, http.StateHijacked:
			gauge(c).Dec()
		}
	}
}

// Obtained counts one attempt to obtain a certificate: issuer is the
// issuer's key (the last one tried when all failed), renewal tells a
// renewal from a new certificate.
func (r *Registry) Obtained(issuer string, renewal, ok bool) {
	if r == nil {
		return
	}
	kind, result := "new", "success"
	if renewal {
		kind = "renewal"
	}
	if !ok {
		result = "failure"
	}
	r.obtains.WithLabelValues(issuer, kind, result).Inc()
}

// WarmLookup records how long one of the warm-up's reads of a name from
// the store took.
func (r *Registry) WarmLookup(d time.Duration) {
	if r == nil {
		return
	}
	r.warmReads.Observe(d.Seconds())
}

// Lookup returns the value of the series name{labels} in g (a counter's or
// gauge's value, a histogram's sample count), and whether it is there: a
// series that has other labels besides these does not match. For tests
// and tools that read series without parsing the text format.
func Lookup(g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}
