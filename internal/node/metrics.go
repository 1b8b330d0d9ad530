package node

import (
	"github.com/spine-platform/spine/internal/metrics"
	"github.com/spine-platform/spine/internal/sched"
)

// newMetrics builds the node's metrics registry, unless Config.Metrics is
// MetricsOff. Its sources read the node's parts at each scrape, so it may
// be built before them; /metrics is served only once they all exist.
func (n *Node) newMetrics() *metrics.Registry {
	if n.cfg.Metrics == metrics.Off {
		return nil
	}
	return metrics.New(metrics.Sources{
		MaxSeries: n.cfg.MetricsMaxSeries,
		Certificates: func(yield func(metrics.Certificate) bool) {
			rec := n.syncer.Last() // the hostnames the last sync served
			if rec == nil {
				return
			}
			n.certs.CertificateMetrics(rec.Applied.Hostnames, rec.Suspended, &n.uploaded, yield)
		},
		Upstreams: func(yield func(project, service, upstream string, healthy bool) bool) {
			n.edge.Upstreams(yield)
		},
		UpstreamTargets: func() map[string]bool { return n.edge.UpstreamHealth() },
		StoreUp:         func() bool { return n.fleet.Health.Reachable() },
		ConfigRevision:  func() int64 { return n.syncer.Revision() }, // built before the loop
		Fleet:           func() ([]metrics.Node, bool) { return n.fleet.Members.Metrics() },
		Counters: func() []metrics.Value {
			hub, wh, ev, al := n.hub.Stats(), n.webhooks.Stats(), n.certs.EventStats(), n.AccessLogStats()
			warm := n.edge.WarmStats()
			checks, differed := n.syncer.Checks()
			return metrics.Counts{
				AccessLogLines: al.Lines, AccessLogDropped: al.Dropped, AccessLogFailed: al.Failed,
				EventStreams: hub.Streams, EventStreamEvents: hub.Delivered, EventStreamsDropped: hub.Dropped,
				WebhookAttempts: wh.Attempts, WebhookDeliveries: wh.Delivered, WebhookRetries: wh.Retried,
				WebhookFailures: wh.Failed, WebhookEndpointsDisabled: wh.Disabled,
				CertificateEventsQueued: ev.Queued, CertificateEventsDropped: ev.Dropped,
				WarmLookupsRouted: warm.Routed, WarmLookupsUnrouted: warm.Unrouted, WarmLookupsRefused: warm.Refused,
				WarmLookupsFailed: warm.Failed, FirstSyncSeconds: n.syncer.FirstSync().Seconds(),
				StoreChecks: checks, StoreChecksDiffered: differed,
				BackgroundHeldSeconds: sched.Held().Seconds(),
			}.Values()
		},
	})
}
