package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/pebbletest"
)

// BenchmarkACMEFirstHTTPS measures, for new hostnames of a verified domain,
// the time from service create to the first HTTPS answer whose chain
// verifies against Pebble's root (Pebble's VA sleep off, HTTP-01 or
// TLS-ALPN-01 through the edge). It reports p50 and p95 over 20 hostnames
// per run and where the time goes, from Pebble's view of the requests:
//
//	create→order      store write, change notice, sync, certmagic start
//	order→challenge   authorization fetched, challenge presented
//	challenge→final   validation by Pebble and authorization polling
//	final→cert        finalize, order polling and download
//	cert→https        saved, cached, and the client's first handshake
//
// "default" runs with Spine's order limiter as shipped (a burst of
// certs.DefaultACMEOrderBurst, then one per certs.DefaultACMEOrderInterval
// per CA and account); "burst-10" with a burst of 10 (ACMEConfig.OrderBurst),
// which is certmagic's own limiter (10 orders per 10 s), to show what a
// batch of 20 costs there.
//
// go test ./internal/node -run '^$' -bench ACMEFirstHTTPS -benchtime 1x
func BenchmarkACMEFirstHTTPS(b *testing.B) {
	b.Run("default", func(b *testing.B) { benchFirstHTTPS(b, nil) })
	b.Run("burst-10", func(b *testing.B) {
		benchFirstHTTPS(b, func(c *config.Config) { c.ACME.OrderBurst = 10 })
	})
}

func benchFirstHTTPS(b *testing.B, mod func(*config.Config)) {
	s := newACMESetup(b, 0, mod)
	ctx := context.Background()
	s.addVerified(b, s.admin, "example.test")
	// The ACME account is made once per CA; make it before measuring.
	if _, err := s.admin.CreateService(ctx, client.ServiceCreate{Name: "warm", Domain: "example.test", Upstreams: []string{s.upstream}}); err != nil {
		b.Fatal(err)
	}
	s.waitServed(b, "warm.example.test")

	const perRun = 20
	var total []time.Duration
	phases := map[string][]time.Duration{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range perRun {
			name := fmt.Sprintf("s%d-%d", i, j)
			host := name + ".example.test"
			start := time.Now()
			if _, err := s.admin.CreateService(ctx, client.ServiceCreate{Name: name, Domain: "example.test", Upstreams: []string{s.upstream}}); err != nil {
				b.Fatal(err)
			}
			for {
				if _, _, err := s.get(host); err == nil {
					break
				}
				if time.Since(start) > time.Minute {
					b.Fatalf("%s not served after a minute", host)
				}
				time.Sleep(2 * time.Millisecond)
			}
			end := time.Now()
			total = append(total, end.Sub(start))
			if testing.Verbose() {
				b.Logf("%s: %v %v", host, end.Sub(start), kinds(s.pebble.Events(start)))
			}
			split(start, end, s.pebble.Events(start), phases)
		}
	}
	b.StopTimer()
	b.ReportMetric(pct(total, 50).Seconds(), "p50-s")
	b.ReportMetric(pct(total, 95).Seconds(), "p95-s")
	for _, ph := range []string{"create→order", "order→challenge", "challenge→final", "final→cert", "cert→https"} {
		b.ReportMetric(pct(phases[ph], 50).Seconds()*1000, ph+"-p50-ms")
	}
}

// split attributes [start, end] to phases by the first event of each kind.
func split(start, end time.Time, evs []pebbletest.Event, phases map[string][]time.Duration) {
	first := map[string]time.Time{}
	for _, e := range evs {
		if _, ok := first[e.Kind]; !ok && !e.Time.After(end) {
			first[e.Kind] = e.Time
		}
	}
	marks := []struct{ name, kind string }{
		{"create→order", "order"}, {"order→challenge", "challenge"}, {"challenge→final", "finalize"}, {"final→cert", "certificate"},
	}
	prev := start
	for _, m := range marks {
		t, ok := first[m.kind]
		if !ok {
			return
		}
		phases[m.name] = append(phases[m.name], t.Sub(prev))
		prev = t
	}
	phases["cert→https"] = append(phases["cert→https"], end.Sub(prev))
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// kinds lists the requests with their offsets from the first, for -v.
func kinds(evs []pebbletest.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s+%dms", e.Kind, e.Time.Sub(evs[0].Time).Milliseconds()))
	}
	return out
}
