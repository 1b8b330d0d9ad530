package accesslog

import (
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/spine-platform/spine/internal/logging"
)

// BenchmarkLog measures one line: Log on the caller's side and the
// writer's formatting, to io.Discard. cpu-ns/op is the process's CPU per
// line, the writer goroutine's included.
func BenchmarkLog(b *testing.B) {
	for _, format := range []logging.Format{logging.JSON, logging.Text} {
		b.Run(string(format), func(b *testing.B) {
			l := New(io.Discard, Config{Format: format, Buffer: b.N})
			e := sample()
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				l.Log(&e)
			}
			l.Close()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			if s := l.Stats(); s.Dropped > 0 {
				b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
			}
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFormat measures the writer's share of a line: formatting it
// into the batch (written to io.Discard).
func BenchmarkFormat(b *testing.B) {
	for _, format := range []logging.Format{logging.JSON, logging.Text} {
		b.Run(string(format), func(b *testing.B) {
			l := newLog(Config{Format: format}, fileBatch)
			l.out = io.Discard
			e := sample()
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				l.format(&e)
			}
			l.batch.flushNow()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
