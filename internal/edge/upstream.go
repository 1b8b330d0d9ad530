package edge

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// upstream is one upstream URL with its transport, reverse proxy and health
// state. It is shared by every route that names the URL and kept across
// route swaps for as long as some route names it.
//
// The health state is a cache of the upstream's answers: a request goes
// to an upstream whose last active check (every health.interval: the
// route's HealthInterval, default Config.HealthInterval) passed and that
// had no transport error in the last Config.FailCooldown; a verdict is at
// most one interval old. One state per URL and health check of the route
// table; it goes with the last route naming them.
type upstream struct {
	key    string // canonical URL
	target *url.URL
	health healthCheck
	// mapKey is health.key(key), its key in the Server's maps: made once,
	// not at each route naming it (a string per route of a build, a
	// million at a million hostnames).
	mapKey string
	proxy  *httputil.ReverseProxy
	tr     *http.Transport
	direct *direct // nil unless target is plain HTTP without a path
	log    *slog.Logger

	// healthy is the verdict of the last active check (true until one fails).
	healthy atomic.Bool
	// downUntil is set by a passive failure: the upstream is out of the
	// rotation until this monotonic instant (nanoseconds since clockBase);
	// 0 when never failed, so the request path reads no clock.
	downUntil atomic.Int64

	// active counts the requests on the ReverseProxy path (tr) under way;
	// once stopped, the last one to end closes the connections it left
	// idle, so that a removed upstream's kept-alive connections are
	// drained, not cut. (The direct path closes its own: direct.put.)
	active  atomic.Int64
	stopped atomic.Bool

	stopOnce sync.Once
	cancel   context.CancelFunc
	ctx      context.Context
	done     chan struct{} // closed when the health checker has ended
}

// clockBase anchors the monotonic clock used by downUntil.
var clockBase = time.Now()

func nanotime() int64 { return int64(time.Since(clockBase)) }

// healthCheck is how an upstream's health is checked actively.
type healthCheck struct {
	path     string // with an optional query, after the upstream URL's path
	interval time.Duration
}

// key identifies url checked this way: routes to one URL with different
// health checks get upstreams of their own.
func (h healthCheck) key(url string) string {
	return url + " " + h.path + " " + h.interval.String()
}

func newUpstream(key string, target *url.URL, health healthCheck, cfg *Config) *upstream {
	u := &upstream{
		key:    key,
		target: target,
		health: health,
		mapKey: health.key(key),
		log:    cfg.Logger.With("upstream", key),
		done:   make(chan struct{}),
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	u.healthy.Store(true)
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	u.tr = &http.Transport{
		Proxy:                 nil, // never route upstream traffic through an environment proxy
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   upstreamIdleConnsPerHost,
		IdleConnTimeout:       upstreamIdleConnTimeout,
		TLSHandshakeTimeout:   upstreamTLSTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// The client's Accept-Encoding goes through untouched; the transport
		// must not add gzip and decompress behind the client's back.
		DisableCompression: true,
		ForceAttemptHTTP2:  target.Scheme == "https",
		TLSClientConfig:    &tls.Config{MinVersion: tls.VersionTLS12},
		WriteBufferSize:    32 << 10,
		ReadBufferSize:     32 << 10,
	}
	u.direct = newDirect(target, cfg, dialer)
	u.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The upstream sees its own host name in Host (as with a plain
			// SetURL); the name the client asked for is in X-Forwarded-Host.
			pr.SetURL(target)
			pr.SetXForwarded()
		},
		Transport:     u.tr,
		FlushInterval: -1, // stream: every write reaches the client at once
		BufferPool:    &copyBuffers,
		ErrorHandler:  recordError,
		ErrorLog:      slog.NewLogLogger(u.log.Handler(), slog.LevelWarn),
	}
	return u
}

// available reports whether the upstream may take a request.
func (u *upstream) available() bool {
	if !u.healthy.Load() {
		return false
	}
	d := u.downUntil.Load()
	return d == 0 || nanotime() >= d
}

// markDown takes the upstream out of the rotation for cooldown.
func (u *upstream) markDown(cooldown time.Duration) {
	u.downUntil.Store(nanotime() + int64(cooldown))
}

// start runs the active health checker until stop.
func (u *upstream) start(cfg *Config) {
	go u.checkLoop(cfg)
}

// stop ends the health checker and drains the connections: idle ones are
// closed now, and those of requests still in flight once those requests
// end (the last request on the ReverseProxy path to end closes what it
// left idle; the direct path closes each as it is put back).
func (u *upstream) stop() {
	u.stopOnce.Do(func() {
		u.stopped.Store(true)
		u.cancel()
		u.tr.CloseIdleConnections()
		u.direct.closeIdle(0, true)
	})
}

// serveProxy sends r through the ReverseProxy. After stop, http.Transport
// closes each connection that becomes idle, but only until it is asked for
// a connection again, which a late request (one that took its route from
// the table before the swap) does. So the last request to end on a
// stopped upstream closes the idle connections itself: its own is idle by
// then (http.Transport puts a connection back before the body's EOF
// reaches the reader, and closes one whose body was not read to the end).
// Either that request sees stopped, or stop's CloseIdleConnections comes
// after the request had put its connection back.
func (u *upstream) serveProxy(w http.ResponseWriter, r *http.Request) {
	u.active.Add(1)
	defer u.end() // ReverseProxy panics with http.ErrAbortHandler when a client goes away
	u.proxy.ServeHTTP(w, r)
}

func (u *upstream) end() {
	if u.active.Add(-1) == 0 && u.stopped.Load() {
		u.tr.CloseIdleConnections()
	}
}

func (u *upstream) checkLoop(cfg *Config) {
	defer close(u.done)
	healthURL := u.target.Scheme + "://" + u.target.Host + strings.TrimSuffix(u.target.Path, "/") + u.health.path
	client := &http.Client{
		Transport: u.tr,
		Timeout:   cfg.HealthTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer
		},
	}
	t := time.NewTicker(u.health.interval)
	defer t.Stop()
	for {
		u.check(client, healthURL)
		select {
		case <-u.ctx.Done():
			return
		case <-t.C:
		}
		u.direct.closeIdle(upstreamIdleConnTimeout, false)
	}
}

// check runs one active health check: healthy if the upstream answers with a
// status below 500.
func (u *upstream) check(client *http.Client, healthURL string) {
	req, err := http.NewRequestWithContext(u.ctx, http.MethodGet, healthURL, nil)
	if err != nil {
		u.log.Error("building health check", "err", err)
		return
	}
	req.Header.Set("User-Agent", "spine-edge-health/1")
	resp, err := client.Do(req)
	if u.ctx.Err() != nil {
		return // stopped: the verdict no longer matters
	}
	ok := false
	if err == nil {
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10) // let the connection be reused
		resp.Body.Close()
		ok = resp.StatusCode < 500
	}
	if was := u.healthy.Swap(ok); was != ok {
		if ok {
			u.log.Info("upstream healthy again")
		} else if err != nil {
			u.log.Warn("upstream unhealthy", "err", err)
		} else {
			u.log.Warn("upstream unhealthy", "status", resp.StatusCode)
		}
	}
}

// pool is the upstreams of one route, used round robin.
type pool struct {
	ups  []*upstream
	next atomic.Uint32
}

// pick returns the next available upstream in turn. When none is available
// it still returns one: health verdicts can be stale, and trying costs less
// than refusing outright (a failure is answered with 502 all the same).
func (p *pool) pick() *upstream {
	n := len(p.ups)
	if n == 1 {
		return p.ups[0]
	}
	start := int(p.next.Add(1) % uint32(n))
	for i := range n {
		if u := p.ups[(start+i)%n]; u.available() {
			return u
		}
	}
	return p.ups[start]
}

// other returns an available upstream other than failed, or nil.
func (p *pool) other(failed *upstream) *upstream {
	n := len(p.ups)
	if n == 1 {
		return nil
	}
	start := int(p.next.Add(1) % uint32(n))
	for i := range n {
		if u := p.ups[(start+i)%n]; u != failed && u.available() {
			return u
		}
	}
	return nil
}

// copyBuffers recycles the 32 KiB buffers ReverseProxy copies bodies with.
// Pooling array pointers (not slices) keeps Put free of allocations.
var copyBuffers bufferPool

type bufferPool struct{ p sync.Pool }

const copyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return new([copyBufferSize]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}

var _ httputil.BufferPool = (*bufferPool)(nil)
