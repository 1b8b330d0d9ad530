// Command handshakes fills a node's certificate cache the way traffic
// does: one TLS handshake for each of -n distinct hostnames of a seeded
// store (bench/seed names them s000000.DOMAIN on), spread evenly over the
// -total seeded, -parallel at a time. It reports how many handshakes
// succeeded and how long they took; bench/scale/liveheap.sh runs it
// (FILL=n) before reading the node's memory. With -latency it also reports
// the distribution of the handshakes' times (connect included): run with
// -parallel 1 on a node whose cache is full, the cost of a handshake that
// loads its certificate from the store.
//
//	handshakes -addr 127.0.0.1:18443 -n 10000 -total 1000000
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18443", "the node's HTTPS address")
	domain := flag.String("domain", "bench.test", "the seeded domain")
	n := flag.Int("n", 10000, "distinct hostnames to shake hands for")
	total := flag.Int("total", 1000000, "hostnames seeded")
	parallel := flag.Int("parallel", 4, "handshakes at a time")
	offset := flag.Int("offset", 0, "added to each hostname's number: with 0 < offset < total/n, n names none of which -offset 0 names")
	latency := flag.Bool("latency", false, "also report the handshakes' times: p50, p90, p99, p99.9, max, and how many took over 5 ms")
	flag.Parse()
	if *n <= 0 || *total < *n || *parallel <= 0 || *offset < 0 || *offset >= *total / *n {
		fmt.Fprintln(os.Stderr, "handshakes: want 0 < -n <= -total, -parallel > 0 and 0 <= -offset < total/n")
		os.Exit(2)
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	took := make([]time.Duration, *n) // by hostname index: each written by one worker
	start := time.Now()
	for range *parallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				host := fmt.Sprintf("s%06d.%s", i*(*total / *n)+*offset, *domain)
				t0 := time.Now()
				err := handshake(*addr, host)
				took[i] = time.Since(t0)
				if err != nil {
					if failed.Add(1) <= 5 {
						fmt.Fprintf(os.Stderr, "handshakes: %s: %v\n", host, err)
					}
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("handshakes: %d of %d hostnames (every %d of %d, from %d) in %s, %d failed\n",
		int64(*n)-failed.Load(), *n, *total / *n, *total, *offset, time.Since(start).Round(time.Millisecond), failed.Load())
	if *latency {
		slices.Sort(took)
		at := func(q float64) time.Duration { return took[min(len(took)-1, int(q*float64(len(took))))] }
		over := len(took) - sort.Search(len(took), func(i int) bool { return took[i] > 5*time.Millisecond })
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", d.Seconds()*1000) }
		fmt.Printf("latency: p50 %s, p90 %s, p99 %s, p99.9 %s, max %s; over 5 ms: %d (%.2f %%)\n",
			ms(at(0.5)), ms(at(0.9)), ms(at(0.99)), ms(at(0.999)), ms(took[len(took)-1]), over, 100*float64(over)/float64(len(took)))
	}
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

// handshake dials addr and completes a TLS handshake for host. The
// certificate is not verified: the figure is the node's memory, and the
// seeded certificates come from the node's own internal CA.
func handshake(addr, host string) error {
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: host, InsecureSkipVerify: true})
	if err != nil {
		return err
	}
	return conn.Close()
}
