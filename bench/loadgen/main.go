// Command loadgen is the benchmark's TLS load generator. Every mode does a
// fixed amount of work, so the server's CPU per operation does not depend on
// how fast the load generator is, and every mode is bounded in time.
//
//	loadgen handshake -addr A -sni S -n N -c C -curve x25519|mlkem [-resume]
//	    N TLS 1.3 handshakes, each on a new connection that is closed right
//	    after. Full handshakes offer session tickets off and only the chosen
//	    key exchange; with -resume every handshake resumes a ticket got
//	    once up front (PSK with X25519). Prints one JSON line.
//	loadgen hold -addr A -sni S -n K -c C [-max 120s]
//	    opens K TLS connections, sends one HTTP/1.1 keep-alive request on
//	    each, reads the answer, prints "ready K" and holds them idle until
//	    standard input closes, SIGTERM, or -max. Source addresses rotate over
//	    127.0.0.2.. so that ports do not run short.
//	loadgen probe -addr A -sni S [-max 60s]
//	    retries one handshake until it succeeds; prints how long that took and
//	    the latency of the successful handshake (JSON).
//	loadgen names -addr A -names FORMAT -from I -n N
//	    N TLS 1.3 handshakes one at a time, each for another server name
//	    (fmt.Sprintf(FORMAT, i) for i = I..I+N-1), each on a new connection;
//	    prints the latency (dial + handshake) percentiles (JSON). With names
//	    whose certificate the server does not hold in memory, this times the
//	    server's load from its store.
//
// Only loopback addresses (127.0.0.0/8) are accepted as targets.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen handshake|hold|probe|names [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "handshake":
		err = handshakeCmd(os.Args[2:])
	case "hold":
		err = holdCmd(os.Args[2:])
	case "probe":
		err = probeCmd(os.Args[2:])
	case "names":
		err = namesCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// common are the flags of every mode.
type common struct {
	addr, sni, ca string
	srcIPs        int
	timeout       time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8443", "server address (loopback only)")
	fs.StringVar(&c.sni, "sni", "bench.test", "server name sent and verified")
	fs.StringVar(&c.ca, "ca", "", "root CA (PEM) to verify the server with; empty skips verification")
	fs.IntVar(&c.srcIPs, "src-ips", 8, "number of source addresses 127.0.0.2.. to rotate over")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound on one connection's dial and handshake")
}

func (c *common) check() error {
	host, _, err := net.SplitHostPort(c.addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %s: only loopback targets are allowed", c.addr)
	}
	if c.srcIPs < 1 || c.srcIPs > 250 {
		return errors.New("-src-ips must be 1..250")
	}
	return nil
}

func (c *common) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName: c.sni,
		MinVersion: tls.VersionTLS13,
		MaxVersion: tls.VersionTLS13,
	}
	if c.ca == "" {
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	b, err := os.ReadFile(c.ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no certificate in %s", c.ca)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

func (c *common) dialer(i int) *net.Dialer {
	src := net.IPv4(127, 0, 0, byte(2+i%c.srcIPs))
	return &net.Dialer{Timeout: c.timeout, LocalAddr: &net.TCPAddr{IP: src}}
}

// dial opens one TLS connection and completes the handshake.
func (c *common) dial(i int, cfg *tls.Config) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	raw, err := c.dialer(i).DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

var curves = map[string]tls.CurveID{
	"x25519": tls.X25519,
	"mlkem":  tls.X25519MLKEM768,
	"p256":   tls.CurveP256,
}

type handshakeResult struct {
	Mode       string  `json:"mode"`
	Curve      string  `json:"curve"`
	N          int     `json:"n"`
	OK         int64   `json:"ok"`
	Failed     int64   `json:"failed"`
	Resumed    int64   `json:"resumed"`
	Seconds    float64 `json:"seconds"`
	FirstError string  `json:"first_error,omitempty"`
}

func handshakeCmd(args []string) error {
	fs := flag.NewFlagSet("handshake", flag.ExitOnError)
	var c common
	c.register(fs)
	n := fs.Int("n", 1000, "number of handshakes")
	conc := fs.Int("c", 8, "concurrent connections")
	curve := fs.String("curve", "x25519", "key exchange offered: x25519, mlkem (X25519MLKEM768) or p256")
	resume := fs.Bool("resume", false, "resume a session ticket in every handshake")
	max := fs.Duration("max", 5*time.Minute, "give up after this long")
	fs.Parse(args)
	if err := c.check(); err != nil {
		return err
	}
	id, ok := curves[*curve]
	if !ok {
		return fmt.Errorf("-curve %q: want x25519, mlkem or p256", *curve)
	}
	if *n < 1 || *conc < 1 {
		return errors.New("-n and -c must be positive")
	}
	cfg, err := c.tlsConfig()
	if err != nil {
		return err
	}
	cfg.CurvePreferences = []tls.CurveID{id}
	res := handshakeResult{Mode: "full", Curve: *curve, N: *n}
	if *resume {
		res.Mode = "resumed"
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		if err := prime(&c, cfg); err != nil {
			return fmt.Errorf("getting a session ticket: %w", err)
		}
	} else {
		cfg.SessionTicketsDisabled = true
	}

	deadline := time.Now().Add(*max)
	var next atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) || time.Now().After(deadline) {
					return
				}
				conn, err := c.dial(int(i), cfg)
				if err != nil {
					atomic.AddInt64(&res.Failed, 1)
					firstErr.Do(func() { res.FirstError = err.Error() })
					continue
				}
				atomic.AddInt64(&res.OK, 1)
				if conn.ConnectionState().DidResume {
					atomic.AddInt64(&res.Resumed, 1)
				}
				conn.Close()
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// prime does one handshake and reads until a TLS 1.3 session ticket, which
// servers send after the handshake, has landed in the cache.
func prime(c *common, cfg *tls.Config) error {
	conn, err := c.dial(0, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Ask for something so that every server writes; the ticket arrives
	// before or with the answer.
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", c.sni)
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, conn)
	if _, ok := cfg.ClientSessionCache.Get(c.sni); !ok {
		return errors.New("the server sent no session ticket")
	}
	return nil
}

func holdCmd(args []string) error {
	fs := flag.NewFlagSet("hold", flag.ExitOnError)
	var c common
	c.register(fs)
	n := fs.Int("n", 1000, "connections to hold")
	conc := fs.Int("c", 8, "connections opened at once")
	max := fs.Duration("max", 2*time.Minute, "release everything after this long at the latest")
	path := fs.String("path", "/", "path of the one request sent on each connection")
	fs.Parse(args)
	if err := c.check(); err != nil {
		return err
	}
	cfg, err := c.tlsConfig()
	if err != nil {
		return err
	}
	cfg.NextProtos = []string{"http/1.1"}
	cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	cfg.SessionTicketsDisabled = true

	deadline := time.Now().Add(*max)
	conns := make([]*tls.Conn, *n)
	var next, failed atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(*n) || time.Now().After(deadline) {
					return
				}
				conn, err := c.dial(int(i), cfg)
				if err == nil {
					err = request(conn, c.sni, *path, c.timeout)
					if err != nil {
						conn.Close()
					}
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				conns[i] = conn
			}
		})
	}
	wg.Wait()
	held := 0
	for _, cn := range conns {
		if cn != nil {
			held++
		}
	}
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %d connections failed, first: %v\n", failed.Load(), firstErr)
	}
	fmt.Printf("ready %d\n", held)

	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-done:
	case <-sig:
	case <-time.After(time.Until(deadline)):
	}
	for _, cn := range conns {
		if cn != nil {
			cn.Close()
		}
	}
	return nil
}

// request sends one keep-alive GET on conn and reads the whole answer.
func request(conn *tls.Conn, host, path string, timeout time.Duration) error {
	conn.SetDeadline(time.Now().Add(timeout))
	defer conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

type probeResult struct {
	WaitedMillis    float64 `json:"waited_ms"`    // from the first attempt to the successful one
	HandshakeMillis float64 `json:"handshake_ms"` // dial + handshake of the successful attempt
	Attempts        int     `json:"attempts"`
	LastError       string  `json:"last_error,omitempty"`
}

func probeCmd(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	var c common
	c.register(fs)
	max := fs.Duration("max", time.Minute, "give up after this long")
	every := fs.Duration("every", 10*time.Millisecond, "pause between attempts")
	fs.Parse(args)
	if err := c.check(); err != nil {
		return err
	}
	cfg, err := c.tlsConfig()
	if err != nil {
		return err
	}
	cfg.SessionTicketsDisabled = true
	var res probeResult
	start := time.Now()
	for time.Since(start) < *max {
		res.Attempts++
		t := time.Now()
		conn, err := c.dial(res.Attempts, cfg)
		if err == nil {
			res.HandshakeMillis = float64(time.Since(t).Microseconds()) / 1000
			res.WaitedMillis = float64(t.Sub(start).Microseconds()) / 1000
			conn.Close()
			return json.NewEncoder(os.Stdout).Encode(res)
		}
		res.LastError = err.Error()
		time.Sleep(*every)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return fmt.Errorf("no handshake with %s (%s) within %s: %s", c.addr, c.sni, *max, res.LastError)
}

type namesResult struct {
	N          int     `json:"n"`
	OK         int     `json:"ok"`
	Failed     int     `json:"failed"`
	P50Millis  float64 `json:"p50_ms"`
	P99Millis  float64 `json:"p99_ms"`
	MaxMillis  float64 `json:"max_ms"`
	FirstError string  `json:"first_error,omitempty"`
}

func namesCmd(args []string) error {
	fs := flag.NewFlagSet("names", flag.ExitOnError)
	var c common
	c.register(fs)
	format := fs.String("names", "s%06d.localhost", "server names: a format with one integer verb")
	from := fs.Int("from", 0, "index of the first name")
	n := fs.Int("n", 200, "number of handshakes (and names)")
	max := fs.Duration("max", 5*time.Minute, "give up after this long")
	fs.Parse(args)
	if err := c.check(); err != nil {
		return err
	}
	if *n < 1 {
		return errors.New("-n must be positive")
	}
	cfg, err := c.tlsConfig()
	if err != nil {
		return err
	}
	cfg.SessionTicketsDisabled = true
	res := namesResult{N: *n}
	var lat []time.Duration
	deadline := time.Now().Add(*max)
	for i := range *n {
		if time.Now().After(deadline) {
			break
		}
		cfg := cfg.Clone()
		cfg.ServerName = fmt.Sprintf(*format, *from+i)
		t := time.Now()
		conn, err := c.dial(i, cfg)
		if err != nil {
			res.Failed++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("%s: %v", cfg.ServerName, err)
			}
			continue
		}
		lat = append(lat, time.Since(t))
		conn.Close()
	}
	res.OK = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		// Nearest rank: the smallest latency at or above which p% of them lie.
		rank := func(p int) time.Duration { return lat[(len(lat)*p+99)/100-1] }
		res.P50Millis, res.P99Millis, res.MaxMillis = ms(rank(50)), ms(rank(99)), ms(lat[len(lat)-1])
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return err
	}
	if res.OK < *n {
		return fmt.Errorf("%d of %d handshakes did not succeed: %s", *n-res.OK, *n, res.FirstError)
	}
	return nil
}
