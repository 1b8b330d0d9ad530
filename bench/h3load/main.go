// Command h3load is the HTTP/3 load generator of bench/h3.sh: full QUIC
// handshakes (each a new connection with one GET), keep-alive requests on a
// few connections, or idle connections held open, against one server, and
// the CPU time (user + system, from /proc) that server's process spent on
// them. Certificates are not verified: the figures are the server's.
//
//	h3load -addr 127.0.0.1:8443 -host bench.localhost -pid PID -mode handshakes|requests|hold -n N [-c C]
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "server UDP address")
	host := flag.String("host", "bench.localhost", "SNI and :authority")
	path := flag.String("path", "/", "request path")
	pid := flag.Int("pid", 0, "server process whose CPU time and RSS are reported")
	mode := flag.String("mode", "handshakes", "handshakes, requests or hold")
	n := flag.Int("n", 1000, "handshakes, requests, or connections to hold")
	c := flag.Int("c", 8, "concurrency: connections at once (handshakes) or connections (requests)")
	flag.Parse()

	tlsCfg := &tls.Config{ServerName: *host, InsecureSkipVerify: true, NextProtos: []string{"h3"}}
	qcfg := &quic.Config{HandshakeIdleTimeout: 10 * time.Second, MaxIdleTimeout: 5 * time.Minute, KeepAlivePeriod: 0}
	newTransport := func() *http3.Transport {
		return &http3.Transport{TLSClientConfig: tlsCfg, QUICConfig: qcfg,
			Dial: func(ctx context.Context, _ string, tc *tls.Config, qc *quic.Config) (*quic.Conn, error) {
				return quic.DialAddr(ctx, *addr, tc, qc)
			}}
	}
	url := "https://" + *host + *path
	get := func(cl *http.Client) error {
		resp, err := cl.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}

	cpu0, rss0 := procStat(*pid)
	start := time.Now()
	var done, failed atomic.Int64
	var firstErr atomic.Value
	note := func(err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		done.Add(1)
	}
	var wg sync.WaitGroup
	switch *mode {
	case "handshakes":
		jobs := make(chan struct{}, *n)
		for range *n {
			jobs <- struct{}{}
		}
		close(jobs)
		for range *c {
			wg.Go(func() {
				for range jobs {
					tr := newTransport()
					note(get(&http.Client{Transport: tr, Timeout: 30 * time.Second}))
					tr.Close()
				}
			})
		}
		wg.Wait()
	case "requests":
		per := *n / *c
		for range *c {
			wg.Go(func() {
				tr := newTransport()
				defer tr.Close()
				cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
				for range per {
					note(get(cl))
				}
			})
		}
		wg.Wait()
	case "hold":
		// Each connection does one request, then stays open and idle.
		trs := make([]*http3.Transport, *n)
		sem := make(chan struct{}, *c)
		for i := range *n {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				trs[i] = newTransport()
				note(get(&http.Client{Transport: trs[i], Timeout: 30 * time.Second}))
			})
		}
		wg.Wait()
		time.Sleep(3 * time.Second) // let the server settle
		_, rss1 := procStat(*pid)
		fmt.Printf("mode=hold n=%d ok=%d failed=%d rss_before_kib=%d rss_held_kib=%d kib_per_conn=%.1f\n",
			*n, done.Load(), failed.Load(), rss0, rss1, float64(rss1-rss0)/float64(max(done.Load(), 1)))
		for _, tr := range trs {
			if tr != nil {
				tr.Close()
			}
		}
		report(&firstErr)
		return
	default:
		fmt.Fprintln(os.Stderr, "h3load: -mode handshakes, requests or hold")
		os.Exit(2)
	}
	el := time.Since(start)
	cpu1, _ := procStat(*pid)
	cpuMs := float64(cpu1-cpu0) * 1000 / 100 // clock ticks of 10 ms
	fmt.Printf("mode=%s n=%d ok=%d failed=%d seconds=%.2f per_second=%.0f server_cpu_ms=%.0f server_cpu_us_each=%.1f\n",
		*mode, *n, done.Load(), failed.Load(), el.Seconds(), float64(done.Load())/el.Seconds(), cpuMs, cpuMs*1000/float64(max(done.Load(), 1)))
	report(&firstErr)
}

func report(firstErr *atomic.Value) {
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "h3load: first error:", e)
	}
}

// procStat returns a process's CPU time (user + system, in clock ticks)
// and resident memory (KiB); zeros without a pid.
func procStat(pid int) (ticks, rssKiB int64) {
	if pid == 0 {
		return 0, 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	b, _ = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rssKiB, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
		}
	}
	return ut + st, rssKiB
}
