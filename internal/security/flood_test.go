package security

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/edge"
)

// Limits the flood node runs with: a short header timeout so that the test
// sees slow clients cut off within seconds (production default: 10s).
const (
	floodHeaderTimeout = 2 * time.Second
	floodHost          = "legit.localhost"
	minAttack          = 3 * time.Second
	// closeSlack bounds the wait for the edge to close an attacking
	// connection past its own limit: a guard against a hang, sized for a
	// loaded 2-core machine running -race, not a speed target (what the
	// edge closes, it closes at once or at the header timeout).
	closeSlack = 30 * time.Second
)

// attackResult is what one attack saw from the attacker's side.
type attackResult struct {
	summary string // one line for the report
	err     error  // the attack's own verdict: the edge did not defend itself
}

// TestFloods runs each attack against one node while a legitimate client
// keeps sending requests on its own connection, and checks that the client
// keeps getting answers, that the edge's goroutines and heap stay bounded and
// come back down, and that the edge closes the attacking connections.
func TestFloods(t *testing.T) {
	raiseFileLimit(t)
	s := startSpine(t, edge.Config{ReadHeaderTimeout: floodHeaderTimeout, IdleTimeout: 10 * time.Second})
	var upstreamHits atomic.Int64
	up := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		io.WriteString(w, "ok")
	})
	s.addService(t, s.admin, client.ServiceCreate{Name: "legit", Upstreams: []string{up}})
	url := "https://" + floodHost + "/"

	// Baseline: the legitimate client alone.
	base := runLegit(s, url, 3*time.Second, nil)
	if base.errs > 0 || len(base.d) == 0 {
		t.Fatalf("baseline: %d answers, %d errors (%v)", len(base.d), base.errs, base.lastErr)
	}
	reportf(t, "baseline (no attack): legit client p50 %v, p99 %v, %d answers, 0 errors", base.pct(50), base.pct(99), len(base.d))

	attacks := []struct {
		name string
		run  func(t *testing.T) attackResult
		// heap and goroutines the attack may add at its peak
		maxHeapMiB   uint64
		maxGoroutine int
	}{
		{"slowloris: 2000 TLS connections that never finish their headers", func(t *testing.T) attackResult { return slowloris(t, s, 2000) }, 400, 2*2000 + 200},
		{"TLS handshakes that stop half way (600 connections)", func(t *testing.T) attackResult { return halfHandshakes(t, s, 600) }, 200, 2*600 + 200},
		{"1 MB request headers over HTTP/1.1 (40 requests)", func(t *testing.T) attackResult { return bigHeadersH1(t, s, 40) }, 200, 400},
		{"1 MB request headers over HTTP/2 (40 connections)", func(t *testing.T) attackResult { return bigHeadersH2(t, s, 40) }, 200, 400},
		{"HTTP/2 rapid reset (4 connections × 5000 streams opened and reset)", func(t *testing.T) attackResult { return rapidReset(t, s, 4, 5000, &upstreamHits) }, 300, 4*1100 + 300},
		{"HTTP/2 frames announced at 1 MiB, then silence (300 connections)", func(t *testing.T) attackResult { return bigFrames(t, s, 300) }, 200, 7*300 + 200}, // per connection: the attacker's reader and the edge's TLS, HTTP/2 read and serve goroutines, at most 7
		{"HTTP/2 CONTINUATION flood (8 connections)", func(t *testing.T) attackResult { return continuationFlood(t, s, 8) }, 200, 400},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			g0, h0 := settle(0)
			var peakG atomic.Int64
			var peakH atomic.Uint64
			stop := make(chan struct{})
			var sampler sync.WaitGroup
			sampler.Go(func() {
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for {
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					if g := int64(runtime.NumGoroutine()); g > peakG.Load() {
						peakG.Store(g)
					}
					if ms.HeapAlloc > peakH.Load() {
						peakH.Store(ms.HeapAlloc)
					}
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			})
			// Quick attacks are repeated for at least minAttack, so that the
			// legitimate client gets enough answers under attack to have a p99.
			var res attackResult
			rounds := 0
			legit := runLegit(s, url, 0, func() {
				start := time.Now()
				for rounds == 0 || (time.Since(start) < minAttack && res.err == nil) {
					res = a.run(t)
					rounds++
				}
			})
			if rounds > 1 {
				res.summary = fmt.Sprintf("%d rounds, the last: %s", rounds, res.summary)
			}
			close(stop)
			sampler.Wait()
			g1, h1 := settle(g0 + 20)

			reportf(t, "%s: legit p99 %v (baseline %v), p50 %v, %d answers, %d errors; goroutines %d → peak %d → %d; heap %d → peak %d → %d MiB; %s",
				a.name, legit.pct(99), base.pct(99), legit.pct(50), len(legit.d), legit.errs,
				g0, peakG.Load(), g1, h0>>20, peakH.Load()>>20, h1>>20, res.summary)
			if res.err != nil {
				t.Error(res.err)
			}
			if legit.errs > 0 || len(legit.d) == 0 {
				t.Errorf("the legitimate client got %d answers and %d errors during the attack (last: %v)", len(legit.d), legit.errs, legit.lastErr)
			}
			if extra := int(peakG.Load()) - g0; extra > a.maxGoroutine {
				t.Errorf("goroutines grew by %d during the attack; bound %d", extra, a.maxGoroutine)
			}
			if g1 > g0+20 {
				t.Errorf("goroutines did not come back down after the attack: %d before, %d after", g0, g1)
			}
			if peakH.Load() > h0 && (peakH.Load()-h0)>>20 > a.maxHeapMiB {
				t.Errorf("heap grew by %d MiB during the attack; bound %d MiB", (peakH.Load()-h0)>>20, a.maxHeapMiB)
			}
			if h1 > h0 && (h1-h0)>>20 > 32 {
				t.Errorf("heap stayed %d MiB above its level before the attack", (h1-h0)>>20)
			}
		})
	}
}

// latencies are the legitimate client's answers.
type latencies struct {
	d       []time.Duration
	errs    int
	lastErr error
}

func (l *latencies) pct(p int) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(10 * time.Microsecond)
}

// runLegit sends a request every 20 ms over one keep-alive HTTP/1.1
// connection (reopened if the edge closes it), for d, or while during runs.
func runLegit(s *spine, url string, d time.Duration, during func()) *latencies {
	c := s.httpClient(false)
	defer c.CloseIdleConnections()
	c.Timeout = time.Minute // a guard: an answer later than this is an error
	done := make(chan struct{})
	if during != nil {
		go func() { defer close(done); during() }()
	} else {
		time.AfterFunc(d, func() { close(done) })
	}
	l := &latencies{}
	for {
		select {
		case <-done:
			return l
		default:
		}
		start := time.Now()
		resp, err := c.Get(url)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode != 200 {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			l.errs++
			l.lastErr = err
		} else {
			l.d = append(l.d, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits (up to a minute) until the goroutine count is at most target,
// then returns it and the live heap after a collection. target 0 only
// lets in-flight work finish for a moment.
func settle(target int) (int, uint64) {
	deadline := time.Now().Add(time.Minute)
	if target == 0 {
		deadline = time.Now().Add(300 * time.Millisecond)
	}
	for {
		runtime.GC()
		g := runtime.NumGoroutine()
		if (target > 0 && g <= target) || time.Now().After(deadline) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return g, ms.HeapAlloc
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func raiseFileLimit(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Logf("raising the open-file limit: %v", err)
		}
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if lim.Cur < 5000 {
		t.Fatalf("open-file limit is %d; the floods need 5000 (raise it with ulimit -n 8192)", lim.Cur)
	}
}

func startUpstream(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// dialMany opens n connections with 16 dialers and returns those that opened.
func dialMany(n int, dial func() (net.Conn, error)) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := dial()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	return slices.DeleteFunc(conns, func(c net.Conn) bool { return c == nil }), firstErr
}

// closedByPeer reports whether the other side has closed c (or sent
// something, which a silent attacker never asks for).
func closedByPeer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := c.Read(b[:])
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// waitAllClosed trickles one header line to every open connection (if
// trickle) every 500 ms, and returns how many the edge has closed by limit.
func waitAllClosed(conns []net.Conn, trickle bool, limit time.Time) (closed int, took time.Duration) {
	start := time.Now()
	open := slices.Clone(conns)
	for len(open) > 0 && time.Now().Before(limit) {
		time.Sleep(500 * time.Millisecond)
		open = slices.DeleteFunc(open, func(c net.Conn) bool {
			if closedByPeer(c) {
				return true
			}
			if trickle {
				c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
				if _, err := io.WriteString(c, "X-Slow: 1\r\n"); err != nil {
					return true
				}
			}
			return false
		})
	}
	for _, c := range conns {
		c.Close()
	}
	return len(conns) - len(open), time.Since(start)
}

func slowloris(t *testing.T, s *spine, n int) attackResult {
	start := time.Now()
	conns, err := dialMany(n, func() (net.Conn, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 30 * time.Second}, "tcp", s.n.HTTPSAddr(),
			&tls.Config{ServerName: floodHost, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			return nil, err
		}
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+floodHost+"\r\nUser-Agent: slowloris\r\n")
		return c, err
	})
	opened := time.Since(start)
	if len(conns) < n*9/10 {
		return attackResult{err: fmt.Errorf("only %d of %d attacking connections opened (%v)", len(conns), n, err)}
	}
	// Every connection must be cut within the header timeout of its own
	// start, whatever it trickles; allow the dial phase and some slack.
	closed, took := waitAllClosed(conns, true, time.Now().Add(floodHeaderTimeout+closeSlack))
	sum := fmt.Sprintf("%d connections opened in %v, %d closed by the edge %v after the last opened (header timeout %v)", len(conns), opened.Round(time.Millisecond), closed, took.Round(100*time.Millisecond), floodHeaderTimeout)
	if closed != len(conns) {
		return attackResult{sum, fmt.Errorf("the edge left %d slowloris connections open", len(conns)-closed)}
	}
	return attackResult{summary: sum}
}

// clientHello returns the bytes of a real TLS ClientHello for floodHost.
func clientHello(t *testing.T) []byte {
	a, b := net.Pipe()
	go func() {
		tls.Client(a, &tls.Config{ServerName: floodHost, NextProtos: []string{"h2", "http/1.1"}}).Handshake()
	}()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatalf("reading a ClientHello: %v", err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatalf("reading a ClientHello: %v", err)
	}
	a.Close()
	b.Close()
	return append(hdr, body...)
}

func halfHandshakes(t *testing.T, s *spine, n int) attackResult {
	hello := clientHello(t)
	var i atomic.Int64
	conns, err := dialMany(n, func() (net.Conn, error) {
		c, err := net.DialTimeout("tcp", s.n.HTTPSAddr(), 5*time.Second)
		if err != nil {
			return nil, err
		}
		// A third send nothing, a third half a ClientHello, a third all of
		// it (and never answer the server's flight).
		switch i.Add(1) % 3 {
		case 1:
			_, err = c.Write(hello[:len(hello)/2])
		case 2:
			_, err = c.Write(hello)
		}
		return c, err
	})
	if len(conns) < n*9/10 {
		return attackResult{err: fmt.Errorf("only %d of %d connections opened (%v)", len(conns), n, err)}
	}
	closed, took := waitAllClosed(conns, false, time.Now().Add(floodHeaderTimeout+closeSlack))
	sum := fmt.Sprintf("%d half-open handshakes, %d closed by the edge %v after the last opened", len(conns), closed, took.Round(100*time.Millisecond))
	if closed != len(conns) {
		return attackResult{sum, fmt.Errorf("the edge left %d half-done TLS handshakes open", len(conns)-closed)}
	}
	return attackResult{summary: sum}
}

func bigHeadersH1(t *testing.T, s *spine, n int) attackResult {
	big := strings.Repeat("a", 1<<20)
	var statuses sync.Map
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range n {
		wg.Go(func() {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.n.HTTPSAddr(),
				&tls.Config{ServerName: floodHost, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			if err != nil {
				statuses.Store("dial error", true)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			go func() { // write while reading: the edge answers before it has read it all
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+floodHost+"\r\nX-Big: "+big+"\r\n\r\n")
			}()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				refused.Add(1) // cut off without an answer: also a refusal
				statuses.Store("closed", true)
				return
			}
			resp.Body.Close()
			statuses.Store(resp.StatusCode, true)
			if resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	var seen []string
	statuses.Range(func(k, _ any) bool { seen = append(seen, fmt.Sprint(k)); return true })
	sum := fmt.Sprintf("%d requests with a 1 MiB header: %d refused (answers seen: %s)", n, refused.Load(), strings.Join(seen, ", "))
	if int(refused.Load()) != n {
		return attackResult{sum, fmt.Errorf("%d requests with a 1 MiB header were not refused", n-int(refused.Load()))}
	}
	return attackResult{summary: sum}
}

// h2Conn is a raw HTTP/2 connection for attacks.
type h2Conn struct {
	c    net.Conn
	host string
	bw   *bufio.Writer
	fr   *http2.Framer
	enc  *hpack.Encoder
	hb   bytes.Buffer

	closed   chan struct{} // closed when the edge closes the connection
	goAway   atomic.Pointer[http2.GoAwayFrame]
	statuses sync.Map // status code → count
}

func dialH2(s *spine) (*h2Conn, error) { return dialH2Host(s, floodHost) }

func dialH2Host(s *spine, host string) (*h2Conn, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.n.HTTPSAddr(),
		&tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		return nil, err
	}
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		c.Close()
		return nil, errors.New("h2 not negotiated")
	}
	h := &h2Conn{c: c, host: host, bw: bufio.NewWriterSize(c, 64<<10), closed: make(chan struct{})}
	h.fr = http2.NewFramer(h.bw, c)
	h.enc = hpack.NewEncoder(&h.hb)
	if _, err := io.WriteString(h.bw, http2.ClientPreface); err != nil {
		return nil, err
	}
	if err := h.fr.WriteSettings(); err != nil {
		return nil, err
	}
	if err := h.bw.Flush(); err != nil {
		return nil, err
	}
	go h.read()
	return h, nil
}

// read drains the edge's frames until the connection ends.
func (h *h2Conn) read() {
	defer close(h.closed)
	rfr := http2.NewFramer(io.Discard, h.c)
	rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	for {
		f, err := rfr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			h.goAway.Store(f)
		case *http2.MetaHeadersFrame:
			st := f.PseudoValue("status")
			v, _ := h.statuses.LoadOrStore(st, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
	}
}

func (h *h2Conn) isClosed() bool {
	select {
	case <-h.closed:
		return true
	default:
		return false
	}
}

func (h *h2Conn) headerBlock(fields ...string) []byte {
	h.hb.Reset()
	base := []string{":method", "GET", ":scheme", "https", ":authority", h.host, ":path", "/"}
	if len(fields) >= 2 && fields[0] == ":method" {
		base[1], fields = fields[1], fields[2:]
	}
	for _, kv := range [][]string{base, fields} {
		for i := 0; i+1 < len(kv); i += 2 {
			h.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
	}
	return bytes.Clone(h.hb.Bytes())
}

func (h *h2Conn) describe() string {
	var st []string
	h.statuses.Range(func(k, v any) bool { st = append(st, fmt.Sprintf("%v×%d", k, v.(*atomic.Int64).Load())); return true })
	slices.Sort(st)
	ga := "no GOAWAY"
	if g := h.goAway.Load(); g != nil {
		ga = "GOAWAY " + g.ErrCode.String()
	}
	return fmt.Sprintf("%s, answers [%s]", ga, strings.Join(st, " "))
}

func bigHeadersH2(t *testing.T, s *spine, n int) attackResult {
	big := strings.Repeat("a", 1<<20)
	var refused atomic.Int64
	var desc sync.Map
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			h, err := dialH2(s)
			if err != nil {
				// Under load the edge may cut a connection whose handshake
				// outlasts the header timeout: the header never got in.
				refused.Add(1)
				desc.Store("cut before the request", true)
				return
			}
			defer h.c.Close()
			h.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			block := h.headerBlock("x-big", big)
			// HEADERS then CONTINUATION frames of 16 KiB, the last with END_HEADERS.
			const max = 16 << 10
			err = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:max], EndStream: true})
			for rest := block[max:]; err == nil && len(rest) > 0 && !h.isClosed(); {
				k := min(max, len(rest))
				err = h.fr.WriteContinuation(1, k == len(rest), rest[:k])
				rest = rest[k:]
			}
			h.bw.Flush()
			select {
			case <-h.closed:
			case <-time.After(closeSlack):
			}
			if v, ok := h.statuses.Load("200"); ok && v.(*atomic.Int64).Load() > 0 {
				desc.Store("answered 200", true)
				return
			}
			if h.isClosed() || h.goAway.Load() != nil {
				refused.Add(1)
			} else if v, ok := h.statuses.Load("431"); ok && v.(*atomic.Int64).Load() > 0 {
				refused.Add(1)
			}
			desc.Store(h.describe(), true)
		})
	}
	wg.Wait()
	var seen []string
	desc.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	sum := fmt.Sprintf("%d HTTP/2 requests with a 1 MiB header: %d refused or cut (%s)", n, refused.Load(), strings.Join(seen, "; "))
	if int(refused.Load()) != n {
		return attackResult{sum, fmt.Errorf("%d HTTP/2 requests with a 1 MiB header were not refused", n-int(refused.Load()))}
	}
	return attackResult{summary: sum}
}

func rapidReset(t *testing.T, s *spine, conns, streams int, hits *atomic.Int64) attackResult {
	hits0 := hits.Load()
	var sent, cut atomic.Int64
	var desc sync.Map
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Minute)
	for range conns {
		wg.Go(func() {
			h, err := dialH2(s)
			if err != nil {
				desc.Store("dial: "+err.Error(), true)
				return
			}
			defer h.c.Close()
			block := h.headerBlock()
			h.c.SetWriteDeadline(deadline)
			for i := range streams {
				id := uint32(2*i + 1)
				if h.isClosed() || time.Now().After(deadline) {
					break
				}
				if h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil ||
					h.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
					break
				}
				sent.Add(1)
				if i%50 == 49 && h.bw.Flush() != nil {
					break
				}
			}
			h.bw.Flush()
			// The edge ends the connection, or goes quiet once it has
			// dealt with every stream: wait for either.
			select {
			case <-h.closed:
				cut.Add(1)
			case <-time.After(closeSlack):
			}
			desc.Store(h.describe(), true)
		})
	}
	wg.Wait()
	forwarded := hits.Load() - hits0
	var seen []string
	desc.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	slices.Sort(seen)
	sum := fmt.Sprintf("%d streams opened and reset on %d connections, %d reached the upstream, %d connections closed by the edge (%s)",
		sent.Load(), conns, forwarded, cut.Load(), strings.Join(seen, "; "))
	if int(cut.Load()) != conns {
		return attackResult{sum, fmt.Errorf("the edge kept %d rapid-reset connections open", conns-int(cut.Load()))}
	}
	return attackResult{summary: sum}
}

func continuationFlood(t *testing.T, s *spine, conns int) attackResult {
	var cut atomic.Int64
	var maxSent atomic.Int64
	var desc sync.Map
	var wg sync.WaitGroup
	const limit = 64 << 20 // give up after 64 MiB
	for range conns {
		wg.Go(func() {
			h, err := dialH2(s)
			if err != nil {
				desc.Store("dial: "+err.Error(), true)
				return
			}
			defer h.c.Close()
			h.c.SetWriteDeadline(time.Now().Add(15 * time.Second))
			block := h.headerBlock()
			sent := int64(len(block))
			err = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true})
			// Endless CONTINUATION frames, each full of small new headers,
			// never END_HEADERS.
			var frag bytes.Buffer
			enc := hpack.NewEncoder(&frag)
			for i := 0; frag.Len() < 15<<10; i++ {
				enc.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-flood-%d", i), Value: "v"})
			}
			chunk := frag.Bytes()
			for err == nil && sent < limit && !h.isClosed() {
				err = h.fr.WriteContinuation(1, false, chunk)
				sent += int64(len(chunk))
			}
			h.bw.Flush()
			select {
			case <-h.closed:
				cut.Add(1)
			case <-time.After(closeSlack):
			}
			for {
				m := maxSent.Load()
				if sent <= m || maxSent.CompareAndSwap(m, sent) {
					break
				}
			}
			desc.Store(h.describe(), true)
		})
	}
	wg.Wait()
	var seen []string
	desc.Range(func(k, _ any) bool { seen = append(seen, k.(string)); return true })
	sum := fmt.Sprintf("%d connections flooding CONTINUATION frames: %d closed by the edge, at most %d KiB written before the cut (%s)", conns, cut.Load(), maxSent.Load()>>10, strings.Join(seen, "; "))
	if int(cut.Load()) != conns {
		return attackResult{sum, fmt.Errorf("the edge kept %d CONTINUATION-flood connections open", conns-int(cut.Load()))}
	}
	if maxSent.Load() >= limit {
		return attackResult{sum, fmt.Errorf("the edge read %d MiB of CONTINUATION frames without closing", limit>>20)}
	}
	return attackResult{summary: sum}
}

// bigFrames opens n HTTP/2 connections, each of which announces a DATA
// frame of almost 1 MiB on an open stream and sends only its first bytes:
// an edge that reserves a buffer for the whole announced frame holds n MiB
// for as long as the attacker waits. The edge refuses frames over 16 KiB.
func bigFrames(t *testing.T, s *spine, n int) attackResult {
	var refused atomic.Int64
	var hs []*h2Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				h, err := dialH2(s)
				if err != nil {
					continue
				}
				h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: h.headerBlock(":method", "POST"), EndHeaders: true})
				// Frame header: length 2^20-1, type DATA, no flags, stream 1.
				h.bw.Write([]byte{0x0f, 0xff, 0xff, 0x0, 0x0, 0, 0, 0, 1})
				h.bw.Write(make([]byte, 1024))
				h.bw.Flush()
				mu.Lock()
				hs = append(hs, h)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	time.Sleep(time.Second) // the heap sampler sees what the edge holds now
	// The edge refuses each oversized frame as soon as it reads the frame
	// header; on a loaded machine that may take more than the second above,
	// so wait (bounded) for every connection to be closed by the edge.
	for deadline := time.Now().Add(closeSlack); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		open := 0
		for _, h := range hs {
			if !h.isClosed() {
				open++
			}
		}
		if open == 0 {
			break
		}
	}
	for _, h := range hs {
		if h.isClosed() {
			refused.Add(1)
		}
		h.c.Close()
	}
	for _, h := range hs {
		<-h.closed // the readers are gone before a next round starts
	}
	settle(0)
	sum := fmt.Sprintf("%d connections announced 1 MiB frames: %d refused at once by the edge", len(hs), refused.Load())
	if int(refused.Load()) != len(hs) {
		return attackResult{sum, fmt.Errorf("the edge accepted %d frames announced at 1 MiB", len(hs)-int(refused.Load()))}
	}
	return attackResult{summary: sum}
}
