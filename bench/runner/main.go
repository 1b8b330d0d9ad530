// Command runner is the side-by-side benchmark (BENCHMARKS.md). It starts each
// server under test pinned to one core (one worker, GOMAXPROCS=1 for Go
// servers), runs a fixed amount of work against it from the other core, reads
// the server's CPU time and resident memory from /proc before and after, and
// writes a markdown report with the median and min–max spread of every
// figure over the repetitions. Servers alternate within each repetition, in
// a rotated order.
//
// bench/run.sh builds it and its helpers and is the way to run it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runner holds the settings of one benchmark run.
type runner struct {
	bin, confDir, work, pki string
	spineBin, spineSkip     string
	upstream                string // host:port of the plain upstream
	serverCore, loadCore    string

	reps                        int
	hsN, staticN, proxyN        int
	hsConc                      int
	h1Conns, h2Conns, h2Streams int
	holds, scaleSizes           []int
	issueMax                    time.Duration
	spineDomain                 string
	spineStore                  string // PostgreSQL DSN for the scale figures; "" for SQLite
	coldN                       int    // handshakes per cold-handshake figure
	scaleProcs                  int    // GOMAXPROCS of Spine in its scale figures
	scaleOnly                   bool
	spineFlags                  []string // more flags for spine serve (an A/B of one setting)
	fdLimit                     int      // RLIMIT_NOFILE the servers and load run under

	res *results
}

func main() {
	r := &runner{res: newResults()}
	var serverList, holds, scale, out, mode string
	flag.StringVar(&mode, "mode", "quick", "quick (small counts, about 10 minutes) or full")
	flag.StringVar(&serverList, "servers", "spine,nginx,haproxy,caddy,go", "servers to measure, comma-separated")
	flag.IntVar(&r.reps, "reps", 0, "repetitions (default 3 quick, 5 full)")
	flag.StringVar(&r.bin, "bin", "", "folder with the built helpers (baseline, upstream, loadgen, certgen, seed)")
	flag.StringVar(&r.confDir, "conf", "bench/conf", "folder with the server config templates")
	flag.StringVar(&r.work, "work", "", "scratch folder (configs, logs, data)")
	flag.StringVar(&r.spineBin, "spine", "", "spine binary; empty skips Spine with -spine-skip as the reason")
	flag.StringVar(&r.spineSkip, "spine-skip", "no spine binary given", "why Spine is skipped when -spine is empty")
	flag.StringVar(&r.serverCore, "server-core", "0", "core the server under test is pinned to")
	flag.StringVar(&r.loadCore, "load-core", "1", "core the load generator and the upstream are pinned to")
	flag.StringVar(&holds, "holds", "5000,20000", "idle connection counts for the memory figure")
	flag.StringVar(&scale, "spine-hostnames", "", "hostname counts for Spine's startup figures (default 10000 quick, 10000,100000 full; 0 skips)")
	flag.DurationVar(&r.issueMax, "spine-issue-max", 10*time.Minute, "bound on Spine's first issuance of every seeded hostname")
	flag.StringVar(&r.spineDomain, "spine-domain", "localhost", "Spine's domain; services are NAME.DOMAIN (localhost: `service create --wait` dials *.localhost on loopback without DNS)")
	flag.StringVar(&r.spineStore, "spine-store", "", "PostgreSQL DSN (postgres://...) for Spine's scale figures: each hostname count gets a schema spine_bench_N in it, dropped and created afresh; empty: SQLite in the scratch folder. The report shows it: give a password through PGPASSWORD or ~/.pgpass")
	flag.IntVar(&r.coldN, "spine-cold", 200, "handshakes per figure of handshakes needing a certificate from the store, each for another hostname")
	flag.IntVar(&r.scaleProcs, "spine-scale-procs", 1, "GOMAXPROCS of Spine in its scale figures, still pinned to the server core (the side-by-side suite always uses 1)")
	flag.BoolVar(&r.scaleOnly, "spine-scale-only", false, "measure only Spine's scale figures, not the side-by-side suite")
	var spineFlags string
	flag.StringVar(&spineFlags, "spine-flags", "", "more flags for spine serve, space-separated, for an A/B of one setting (e.g. \"--access-log /tmp/access.log\"); the report names them")
	flag.StringVar(&out, "out", "", "markdown report to write (also printed)")
	flag.IntVar(&r.hsN, "handshakes", 0, "handshakes per measurement (default 2000 quick, 20000 full)")
	flag.IntVar(&r.staticN, "static-requests", 0, "static requests per measurement (default 50000 quick, 500000 full)")
	flag.IntVar(&r.proxyN, "proxy-requests", 0, "proxied requests per measurement (default 20000 quick, 200000 full)")
	flag.IntVar(&r.hsConc, "c", 8, "concurrent handshakes")
	flag.IntVar(&r.h1Conns, "h1-conns", 16, "HTTP/1.1 keep-alive connections (one request in flight each)")
	flag.IntVar(&r.h2Conns, "h2-conns", 4, "HTTP/2 connections")
	flag.IntVar(&r.h2Streams, "h2-streams", 4, "HTTP/2 streams in flight per connection")
	flag.Parse()
	r.spineFlags = strings.Fields(spineFlags)

	quick := mode == "quick"
	if !quick && mode != "full" {
		fail(fmt.Errorf("-mode %q: want quick or full", mode))
	}
	def := func(v *int, q, f int) {
		if *v == 0 {
			*v = f
			if quick {
				*v = q
			}
		}
	}
	def(&r.reps, 3, 5)
	def(&r.hsN, 2000, 20000)
	def(&r.staticN, 50000, 500000)
	def(&r.proxyN, 20000, 200000)
	if scale == "" {
		scale = "10000,100000"
		if quick {
			scale = "10000"
		}
	}
	var err error
	if r.holds, err = ints(holds); err != nil {
		fail(err)
	}
	if r.scaleSizes, err = ints(scale); err != nil {
		fail(err)
	}
	if r.bin == "" || r.work == "" {
		fail(fmt.Errorf("-bin and -work are required (bench/run.sh sets them)"))
	}
	procs.pgidLog = filepath.Join(r.work, "pgids")
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fail(err)
	}
	r.fdLimit = int(min(lim.Max, 1<<20))
	r.holdFigures()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "runner: interrupted; stopping every server")
		stopAll()
		os.Exit(130)
	}()
	defer stopAll()

	var chosen []server
	for _, name := range strings.Split(serverList, ",") {
		i := slices.IndexFunc(servers(), func(s server) bool { return s.name == strings.TrimSpace(name) })
		if i < 0 {
			fail(fmt.Errorf("unknown server %q", name))
		}
		chosen = append(chosen, servers()[i])
	}
	if err := r.setup(); err != nil {
		stopAll()
		fail(err)
	}
	began := time.Now()
	var runnable []server
	for _, s := range chosen {
		if err := s.check(r); err != nil {
			log("%s skipped: %v", s.name, err)
			r.res.skip(s.name, err.Error())
			continue
		}
		runnable = append(runnable, s)
	}
	if r.scaleOnly {
		r.res.note("spine_new_host", "spine", "not measured (-spine-scale-only)")
	}
	for rep := range r.reps {
		if r.scaleOnly {
			break
		}
		for i := range runnable {
			s := runnable[(i+rep)%len(runnable)]
			log("rep %d/%d: %s", rep+1, r.reps, s.name)
			r.suite(s, rep)
		}
	}
	if slices.ContainsFunc(runnable, func(s server) bool { return s.name == "spine" }) {
		for _, n := range r.scaleSizes {
			if n > 0 {
				r.spineScale(n)
			}
		}
	}
	report := r.report(chosen, mode, time.Since(began))
	fmt.Print(report)
	if out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			fail(err)
		}
		log("report written to %s", out)
	}
}

// setup writes the test PKI and the static body and starts the upstream.
func (r *runner) setup() error {
	r.pki = filepath.Join(r.work, "pki")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := runLoad(ctx, r.loadCore, filepath.Join(r.bin, "certgen"), "-out", r.pki); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.work, "body.txt"), []byte("hello, bench"), 0o644); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	r.upstream = fmt.Sprintf("127.0.0.1:%d", port)
	p, err := start("upstream", r.loadCore, []string{"GOMAXPROCS=1"}, filepath.Join(r.work, "upstream.log"),
		filepath.Join(r.bin, "upstream"), "-addr", r.upstream)
	if err != nil {
		return err
	}
	_ = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := dialTCP(r.upstream); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the upstream did not listen on %s", r.upstream)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// suite measures every figure of one server once.
func (r *runner) suite(s server, rep int) {
	tag := fmt.Sprintf("r%d-%s", rep+1, s.name)
	in, err := startRetry(r, s, tag)
	if err != nil {
		log("  %s did not start: %v", s.name, err)
		for _, f := range figures {
			r.res.fail(f.key, s.name, err)
		}
		return
	}
	if in.newHostMs > 0 {
		r.res.add("spine_new_host", s.name, in.newHostMs)
	}
	type job struct {
		key  string
		n    int
		load func(int) (int, error)
		skip string
	}
	noStatic := ""
	if in.staticPath == "" {
		noStatic = s.name + " has no static answers: every hostname proxies to its service's upstream"
	}
	jobs := []job{
		{key: "hs_x25519", n: r.hsN, load: r.handshakes(in, "x25519", false)},
		{key: "hs_mlkem", n: r.hsN, load: r.handshakes(in, "mlkem", false)},
		{key: "hs_resumed", n: r.hsN, load: r.handshakes(in, "x25519", true)},
		{key: "ka_static_h1", n: r.staticN, load: r.requests(in, in.staticPath, false), skip: noStatic},
		{key: "ka_static_h2", n: r.staticN, load: r.requests(in, in.staticPath, true), skip: noStatic},
		{key: "ka_proxy_h1", n: r.proxyN, load: r.requests(in, in.proxyPath, false)},
		{key: "ka_proxy_h2", n: r.proxyN, load: r.requests(in, in.proxyPath, true)},
	}
	for _, j := range jobs {
		if j.skip != "" {
			r.res.note(j.key, s.name, j.skip)
			continue
		}
		v, err := cpuPerOp(in, j.n, j.load)
		if err != nil {
			log("  %s %s: %v", s.name, j.key, err)
			r.res.fail(j.key, s.name, err)
			continue
		}
		log("  %s %s: %.1f µs", s.name, j.key, v)
		r.res.add(j.key, s.name, v)
	}
	in.stop()
	for _, k := range r.holds {
		key := "idle_" + strconv.Itoa(k)
		v, err := r.idleKB(s, fmt.Sprintf("%s-idle%d", tag, k), k)
		if err != nil {
			log("  %s %s: %v", s.name, key, err)
			r.res.fail(key, s.name, err)
			continue
		}
		log("  %s %s: %.1f KiB/conn", s.name, key, v)
		r.res.add(key, s.name, v)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q is not a count", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func log(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "runner:", err)
	os.Exit(1)
}

// startRetry starts s, and once more if the first try fails (a port taken
// between picking it and binding it), logging the first failure.
func startRetry(r *runner, s server, tag string) (*instance, error) {
	in, err := s.start(r, tag)
	if err == nil {
		return in, nil
	}
	log("  %s did not start (%v); log: %s; trying once more", s.name, err, tailFile(filepath.Join(r.work, tag+"-"+s.name+".log")))
	return s.start(r, tag+"-retry")
}

func tailFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return strings.TrimSpace(string(b))
}
