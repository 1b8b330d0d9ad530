package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/spine-platform/spine/client"
)

// metricRow is one sample of Spine's metrics, as the operator page shows it.
type metricRow struct {
	Name, Help, Labels, Value string
}

// maxMetricRows bounds the samples the operator page shows (a node with
// many hostnames has many labelled series).
const maxMetricRows = 300

// tenantLabels are the labels that name a project's objects. The operator
// page shows the node's own series only: a tenant's hostnames, services and
// upstreams belong on that project's pages (and in Prometheus, which an
// operator scrapes), not on a page that is the same for every operator
// session.
var tenantLabels = []string{"hostname", "project", "service", "upstream"}

// metrics reads the API's GET /metrics in-process and returns Spine's own
// node-wide series (spine_*, none with a tenantLabels label), at most
// maxMetricRows, or why there are none. The parsing is Prometheus's
// (expfmt); the page only lays the samples out.
func metrics(ctx context.Context, api *client.Client) ([]metricRow, string) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://spine.invalid/metrics", nil)
	if err != nil {
		return nil, err.Error()
	}
	resp, err := api.HTTP.Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "this node serves no metrics on its API listener (spine serve --metrics)"
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, "the metrics could not be read: " + err.Error()
	}
	names := make([]string, 0, len(fams))
	for n := range fams {
		if strings.HasPrefix(n, "spine_") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var rows []metricRow
	for _, n := range names {
		f := fams[n]
		for _, m := range f.GetMetric() {
			if len(rows) == maxMetricRows {
				return rows, fmt.Sprintf("the first %d samples; GET /metrics has them all", maxMetricRows)
			}
			var labels []string
			tenant := false
			for _, l := range m.GetLabel() {
				tenant = tenant || slices.Contains(tenantLabels, l.GetName())
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if tenant {
				continue
			}
			rows = append(rows, metricRow{Name: n, Help: f.GetHelp(), Labels: strings.Join(labels, " "), Value: sampleValue(f.GetType(), m)})
		}
	}
	return rows, ""
}

func sampleValue(t dto.MetricType, m *dto.Metric) string {
	switch t {
	case dto.MetricType_COUNTER:
		return fmt.Sprint(m.GetCounter().GetValue())
	case dto.MetricType_GAUGE:
		return fmt.Sprint(m.GetGauge().GetValue())
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		return fmt.Sprintf("%d observations, sum %.4g", h.GetSampleCount(), h.GetSampleSum())
	case dto.MetricType_SUMMARY:
		s := m.GetSummary()
		return fmt.Sprintf("%d observations, sum %.4g", s.GetSampleCount(), s.GetSampleSum())
	}
	return fmt.Sprint(m.GetUntyped().GetValue())
}
