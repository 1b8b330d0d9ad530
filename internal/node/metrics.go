package node

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/store"
)

// newMetrics builds the node's metrics registry, unless Config.Metrics is
// MetricsOff. Its sources read the node's parts at each scrape, so it may
// be built before them; /metrics is served only once they all exist.
func (n *Node) newMetrics() *metrics.Registry {
	if n.cfg.Metrics == MetricsOff {
		return nil
	}
	return metrics.New(metrics.Sources{
		Certificates: n.certificateMetrics,
		Upstreams: func(yield func(service, upstream string, healthy bool)) {
			n.edge.Upstreams(yield)
		},
		StoreUp:        func() bool { return n.fleet.health.Reachable() },
		ConfigRevision: n.revision.Load,
		Fleet:          n.fleetMetrics,
		Counters:       n.counterMetrics,
	})
}

// certificateMetrics is the certificate of each hostname the last sync
// served, with its project and service. A suspended project's hostnames
// are left out: their certificates are not managed (nor renewed).
func (n *Node) certificateMetrics() []metrics.Certificate {
	rec := n.fleet.lastSync.Load()
	if rec == nil {
		return nil
	}
	now := time.Now()
	var out []metrics.Certificate
	for _, svc := range rec.svcs {
		if slices.Contains(rec.suspended, svc.ProjectID) {
			continue
		}
		for _, h := range svc.Hostnames {
			// An uploaded certificate is served instead of the managed
			// one (certs.Uploaded): its validity is the one that matters.
			if c := n.fleet.uploaded.Cached(h); c != nil && c.Leaf != nil {
				out = append(out, metrics.Certificate{
					Hostname: h, Project: svc.ProjectID, Service: svc.Name, Issuer: issuerCN(c.Leaf),
					NotBefore: c.Leaf.NotBefore, NotAfter: c.Leaf.NotAfter,
					Ready: !now.Before(c.Leaf.NotBefore) && now.Before(c.Leaf.NotAfter),
				})
				continue
			}
			st := n.certs.Status(h)
			out = append(out, metrics.Certificate{
				Hostname: h, Project: svc.ProjectID, Service: svc.Name, Issuer: st.Issuer,
				NotBefore: st.NotBefore, NotAfter: st.NotAfter,
				Ready: st.Status == store.CertActive && now.Before(st.NotAfter),
			})
		}
	}
	return out
}

// issuerCN is a certificate's issuer as the status records name it.
func issuerCN(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// fleetMetrics reads the node list (one query, bounded by 5 s).
func (n *Node) fleetMetrics() ([]metrics.Node, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nodes, err := n.fleet.members.Nodes(ctx)
	if err != nil {
		return nil, false
	}
	out := make([]metrics.Node, 0, len(nodes))
	for _, nd := range nodes {
		age, _ := time.ParseDuration(nd.SinceHeartbeat)
		out = append(out, metrics.Node{ID: nd.ID, SinceHeartbeat: age, Connected: nd.StoreConnected})
	}
	return out, true
}

// counterMetrics are the counters the node's parts keep for themselves.
func (n *Node) counterMetrics() []metrics.Value {
	hub, wh, ev, al := n.hub.Stats(), n.webhooks.Stats(), n.certs.EventStats(), n.AccessLogStats()
	return []metrics.Value{
		{Name: "spine_access_log_lines_total", Help: "Access log lines written (0 without an access log).", Counter: true, V: float64(al.Lines)},
		{Name: "spine_access_log_lines_dropped_total", Help: "Access log lines dropped because the writer was behind (a slow disk, a blocked pipe); the requests were served.", Counter: true, V: float64(al.Dropped)},
		{Name: "spine_access_log_lines_failed_total", Help: "Access log lines lost to a failed write (a full disk).", Counter: true, V: float64(al.Failed)},
		{Name: "spine_event_streams", Help: "Open event streams (GET /v1/events/stream).", V: float64(hub.Streams)},
		{Name: "spine_event_stream_events_total", Help: "Events handed to event streams.", Counter: true, V: float64(hub.Delivered)},
		{Name: "spine_event_streams_dropped_total", Help: "Event streams dropped because their client read too slowly.", Counter: true, V: float64(hub.Dropped)},
		{Name: "spine_webhook_attempts_total", Help: "Webhook delivery attempts made by this node.", Counter: true, V: float64(wh.Attempts)},
		{Name: "spine_webhook_deliveries_total", Help: "Webhook deliveries that succeeded (2xx).", Counter: true, V: float64(wh.Delivered)},
		{Name: "spine_webhook_retries_total", Help: "Webhook attempts that failed and will be retried.", Counter: true, V: float64(wh.Retried)},
		{Name: "spine_webhook_failures_total", Help: "Webhook deliveries given up (retries exhausted, or 410).", Counter: true, V: float64(wh.Failed)},
		{Name: "spine_webhook_endpoints_disabled_total", Help: "Webhook endpoints this node disabled for failing.", Counter: true, V: float64(wh.Disabled)},
		{Name: "spine_certificate_events_queued", Help: "Certificate events waiting to be written to the store.", V: float64(ev.Queued)},
		{Name: "spine_certificate_events_dropped_total", Help: "Certificate events dropped from a full queue (store away too long).", Counter: true, V: float64(ev.Dropped)},
	}
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
