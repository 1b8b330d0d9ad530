package node

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spine-platform/spine/internal/metrics"
)

// newMetrics builds the node's metrics registry, unless Config.Metrics is
// MetricsOff. Its sources read the node's parts at each scrape, so it may
// be built before them; /metrics is served only once they all exist.
func (n *Node) newMetrics() *metrics.Registry {
	if n.cfg.Metrics == MetricsOff {
		return nil
	}
	return metrics.New(metrics.Sources{
		Certificates: func() []metrics.Certificate {
			rec := n.syncer.Last() // the hostnames the last sync served
			if rec == nil {
				return nil
			}
			return n.certs.CertificateMetrics(rec.Services(), rec.Suspended, &n.fleet.uploaded)
		},
		Upstreams: func(yield func(service, upstream string, healthy bool)) {
			n.edge.Upstreams(yield)
		},
		StoreUp:        func() bool { return n.fleet.health.Reachable() },
		ConfigRevision: func() int64 { return n.syncer.Revision() }, // built before the loop
		Fleet:          func() ([]metrics.Node, bool) { return n.fleet.members.Metrics() },
		Counters: func() []metrics.Value {
			hub, wh, ev, al := n.hub.Stats(), n.webhooks.Stats(), n.certs.EventStats(), n.AccessLogStats()
			return metrics.Counts{
				AccessLogLines: al.Lines, AccessLogDropped: al.Dropped, AccessLogFailed: al.Failed,
				EventStreams: hub.Streams, EventStreamEvents: hub.Delivered, EventStreamsDropped: hub.Dropped,
				WebhookAttempts: wh.Attempts, WebhookDeliveries: wh.Delivered, WebhookRetries: wh.Retried,
				WebhookFailures: wh.Failed, WebhookEndpointsDisabled: wh.Disabled,
				CertificateEventsQueued: ev.Queued, CertificateEventsDropped: ev.Dropped,
			}.Values()
		},
	})
}

// serveMetrics serves /metrics on a listener of its own when Config.Metrics
// is an address.
func (n *Node) serveMetrics() {
	if n.metricsLn == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", n.metrics.Handler())
	n.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second}
	n.serve("metrics", func() error { return n.metricsSrv.Serve(n.metricsLn) })
}

// listenMetrics opens the metrics listener when Config.Metrics is an address.
func (n *Node) listenMetrics() error {
	m := n.cfg.Metrics
	if m == MetricsOnAPI || m == MetricsOff {
		return nil
	}
	ln, err := net.Listen("tcp", m)
	if err != nil {
		return &FieldError{Field: "Metrics", Value: strconv.Quote(m), Err: errors.Join(err, errors.New("pick another address for the metrics"))}
	}
	n.metricsLn = ln
	return nil
}

// apiMetrics is the API's GET /metrics: the registry's handler when it is
// served on the API's listener, else nil (the API answers 404).
func (n *Node) apiMetrics() http.Handler {
	if n.cfg.Metrics != MetricsOnAPI {
		return nil
	}
	return n.metrics.Handler()
}
