package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources are what the metrics of the node's state are read from, at each
// scrape. A nil function leaves its series out.
type Sources struct {
	// Certificates calls yield with each served hostname's certificate,
	// until yield returns false. A hostname that does not come has no
	// series.
	Certificates func(yield func(Certificate) bool)
	// Upstreams calls yield for each upstream of each service in the route
	// table (the same pair may come more than once), with the service's
	// project and name, until yield returns false.
	Upstreams func(yield func(project, service, upstream string, healthy bool) bool)
	// UpstreamTargets reports each upstream URL of the route table once,
	// with whether it takes requests (edge.Server.UpstreamHealth).
	UpstreamTargets func() map[string]bool
	// MaxSeries bounds the series of each family labelled by hostname or
	// by service and upstream, as DefaultMaxSeries says. Default
	// DefaultMaxSeries.
	MaxSeries int
	// StoreUp reports whether the store answered the last time it was used.
	StoreUp func() bool
	// ConfigRevision is the store's revision of the configuration this
	// node serves (0 before its first sync).
	ConfigRevision func() int64
	// Fleet lists the nodes of the fleet as the store knows them; ok is
	// false when the store could not be read (the series are left out).
	Fleet func() (nodes []Node, ok bool)
	// Counters are further counters and gauges read at each scrape (the
	// event hub's, the webhook sender's, the certificate event queue's).
	Counters func() []Value
}

// Certificate is what the metrics show of one hostname's certificate.
type Certificate struct {
	Hostname, Project, Service string
	Issuer                     string // the certificate's issuer (its common name); "" before the first
	NotBefore, NotAfter        time.Time
	Ready                      bool // a valid certificate is served
}

// DefaultMaxSeries is Sources.MaxSeries's default. A node with up to this
// many hostnames has a certificate series for each; with more, those that
// are not ready come first and the rest up to the bound, and the counts
// by readiness say what the series leave out. Unbounded, a scrape at a
// million hostnames (three series each, and one per service and upstream)
// took more than the handler's 10 s and the node's resident memory from
// 0.6 to 4 GiB (BENCHMARKS.md, "Metrics at a million hostnames"); a
// Prometheus server would not want those series either.
const DefaultMaxSeries = 10000

// Node is one node of the fleet.
type Node struct {
	ID             string
	SinceHeartbeat time.Duration
	Connected      bool
}

// Value is one series of Sources.Counters, without labels.
type Value struct {
	Name, Help string
	Counter    bool // else a gauge
	V          float64
}

var (
	certNotAfter = prometheus.NewDesc("spine_certificate_not_after_timestamp_seconds",
		"The end of the validity of the certificate served for a hostname (Unix time).",
		[]string{"hostname", "project", "service", "issuer"}, nil)
	certNotBefore = prometheus.NewDesc("spine_certificate_not_before_timestamp_seconds",
		"The start of the validity of the certificate served for a hostname (Unix time); with not_after, its lifetime.",
		[]string{"hostname", "project", "service", "issuer"}, nil)
	certReady = prometheus.NewDesc("spine_certificate_ready",
		"1 if a valid certificate is served for the hostname, else 0 (pending, issuing, failed or expired).",
		[]string{"hostname", "project", "service"}, nil)
	certHostnames = prometheus.NewDesc("spine_certificate_hostnames",
		"Served hostnames by whether a valid certificate is served for them (ready: true or false); counts every hostname, with or without its own series.",
		[]string{"ready"}, nil)
	seriesOmitted = prometheus.NewDesc("spine_metrics_series_omitted",
		"Series of a family left out of this page by its bound (spine serve --metrics-max-series, 10,000 by default): hostnames for spine_certificate_ready, routes' upstreams (per hostname) for spine_upstream_healthy. Those not ready, or not healthy, come first.",
		[]string{"family"}, nil)
	upstreamTargets = prometheus.NewDesc("spine_upstream_targets",
		"Upstream URLs of the route table by whether they take requests (healthy: true or false), each counted once.",
		[]string{"healthy"}, nil)
	upstreamHealthy = prometheus.NewDesc("spine_upstream_healthy",
		"1 if the upstream takes requests (its last health check passed and it had no recent transport error), else 0.",
		[]string{"service", "upstream"}, nil)
	storeUp = prometheus.NewDesc("spine_store_up",
		"1 if the store answered this node's last query, else 0 (the node serves its last known state).", nil, nil)
	configRevision = prometheus.NewDesc("spine_config_revision",
		"The store's configuration revision this node last applied.", nil, nil)
	fleetNodes = prometheus.NewDesc("spine_fleet_nodes",
		"Nodes of the fleet whose heartbeat reached the store in the last 15 s.", nil, nil)
	fleetHeartbeat = prometheus.NewDesc("spine_fleet_node_heartbeat_age_seconds",
		"Time since each node's last heartbeat, by the store's clock (nodes silent for 24 h are forgotten).",
		[]string{"node"}, nil)
)

// stateCollector reads Sources at each scrape. It is unchecked (Describe
// sends nothing) because Sources.Counters names its series at run time.
type stateCollector struct{ src Sources }

func newStateCollector(src Sources) prometheus.Collector { return stateCollector{src} }

func (stateCollector) Describe(chan<- *prometheus.Desc) {}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src
	limit := s.MaxSeries
	if limit <= 0 {
		limit = DefaultMaxSeries
	}
	if s.Certificates != nil {
		c.collectCertificates(ch, limit)
	}
	if s.Upstreams != nil {
		c.collectUpstreams(ch, limit)
	}
	if s.UpstreamTargets != nil {
		var up, down int
		for _, ok := range s.UpstreamTargets() {
			if ok {
				up++
			} else {
				down++
			}
		}
		ch <- prometheus.MustNewConstMetric(upstreamTargets, prometheus.GaugeValue, float64(up), "true")
		ch <- prometheus.MustNewConstMetric(upstreamTargets, prometheus.GaugeValue, float64(down), "false")
	}
	if s.StoreUp != nil {
		ch <- prometheus.MustNewConstMetric(storeUp, prometheus.GaugeValue, bool01(s.StoreUp()))
	}
	if s.ConfigRevision != nil {
		ch <- prometheus.MustNewConstMetric(configRevision, prometheus.GaugeValue, float64(s.ConfigRevision()))
	}
	if s.Fleet != nil {
		if nodes, ok := s.Fleet(); ok {
			connected := 0
			for _, n := range nodes {
				if n.Connected {
					connected++
				}
				ch <- prometheus.MustNewConstMetric(fleetHeartbeat, prometheus.GaugeValue, n.SinceHeartbeat.Seconds(), n.ID)
			}
			ch <- prometheus.MustNewConstMetric(fleetNodes, prometheus.GaugeValue, float64(connected))
		}
	}
	if s.Counters != nil {
		for _, v := range s.Counters() {
			t := prometheus.GaugeValue
			if v.Counter {
				t = prometheus.CounterValue
			}
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(v.Name, v.Help, nil, nil), t, v.V)
		}
	}
}

// collectCertificates sends the series of at most limit hostnames, those
// not ready first, and the counts of every hostname by readiness. It keeps
// at most limit hostnames of each kind while the source runs, not a list
// of every hostname.
func (c stateCollector) collectCertificates(ch chan<- prometheus.Metric, limit int) {
	var (
		kept  [2][]Certificate // [0]: not ready, [1]: ready
		count [2]int
	)
	c.src.Certificates(func(cert Certificate) bool {
		i := 0
		if cert.Ready {
			i = 1
		}
		count[i]++
		if len(kept[i]) < limit {
			kept[i] = append(kept[i], cert)
		}
		return true
	})
	sent := 0
	for _, certs := range kept {
		for _, cert := range certs {
			if sent == limit {
				break
			}
			sent++
			if !cert.NotAfter.IsZero() {
				ch <- prometheus.MustNewConstMetric(certNotAfter, prometheus.GaugeValue, float64(cert.NotAfter.Unix()),
					cert.Hostname, cert.Project, cert.Service, cert.Issuer)
				ch <- prometheus.MustNewConstMetric(certNotBefore, prometheus.GaugeValue, float64(cert.NotBefore.Unix()),
					cert.Hostname, cert.Project, cert.Service, cert.Issuer)
			}
			ch <- prometheus.MustNewConstMetric(certReady, prometheus.GaugeValue, bool01(cert.Ready),
				cert.Hostname, cert.Project, cert.Service)
		}
	}
	ch <- prometheus.MustNewConstMetric(certHostnames, prometheus.GaugeValue, float64(count[1]), "true")
	ch <- prometheus.MustNewConstMetric(certHostnames, prometheus.GaugeValue, float64(count[0]), "false")
	ch <- prometheus.MustNewConstMetric(seriesOmitted, prometheus.GaugeValue, float64(count[0]+count[1]-sent), "spine_certificate_ready")
}

// collectUpstreams sends the series of at most limit (service, upstream)
// pairs: those not healthy first, then the healthy pairs of the same
// services (so that a service with one upstream down and one up does not
// look wholly down), then the rest. It reads the source twice and keeps
// at most limit pairs of each kind. A pair comes once per hostname of its
// service: the count left out is of the hostnames' pairs, not of distinct
// ones.
func (c stateCollector) collectUpstreams(ch chan<- prometheus.Metric, limit int) {
	type pair struct{ project, service, upstream string }
	type svc struct{ project, service string }
	var (
		kept    [3][]pair // not healthy; healthy, of a service with one not; healthy, the rest
		seen    = map[pair]bool{}
		down    = map[svc]bool{}
		omitted int
	)
	keep := func(i int, p pair) bool {
		if seen[p] {
			return false
		}
		if len(kept[i]) == limit {
			omitted++
			return false
		}
		seen[p] = true
		kept[i] = append(kept[i], p)
		return true
	}
	c.src.Upstreams(func(project, service, upstream string, healthy bool) bool {
		if !healthy && keep(0, pair{project, service, upstream}) {
			down[svc{project, service}] = true // of the pairs kept only: a bound
		}
		return true
	})
	c.src.Upstreams(func(project, service, upstream string, healthy bool) bool {
		if healthy {
			i := 2
			if down[svc{project, service}] {
				i = 1
			}
			keep(i, pair{project, service, upstream})
		}
		return true
	})
	sent := 0
	for i, pairs := range kept {
		for _, p := range pairs {
			if sent == limit {
				omitted++
				continue
			}
			sent++
			ch <- prometheus.MustNewConstMetric(upstreamHealthy, prometheus.GaugeValue, bool01(i > 0),
				ServiceLabel(p.project, p.service), p.upstream)
		}
	}
	ch <- prometheus.MustNewConstMetric(seriesOmitted, prometheus.GaugeValue, float64(omitted), "spine_upstream_healthy")
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
