package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources are what the metrics of the node's state are read from, at each
// scrape. A nil function leaves its series out.
type Sources struct {
	// Certificates lists the served hostnames' certificates. A hostname
	// that is not listed has no series.
	Certificates func() []Certificate
	// Upstreams calls yield for each upstream of each service in the route
	// table (the same pair may come more than once).
	Upstreams func(yield func(service, upstream string, healthy bool))
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
	if s.Certificates != nil {
		for _, cert := range s.Certificates() {
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
	if s.Upstreams != nil {
		seen := map[[2]string]bool{}
		s.Upstreams(func(service, upstream string, healthy bool) {
			k := [2]string{service, upstream}
			if seen[k] {
				return
			}
			seen[k] = true
			ch <- prometheus.MustNewConstMetric(upstreamHealthy, prometheus.GaugeValue, bool01(healthy), service, upstream)
		})
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

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
