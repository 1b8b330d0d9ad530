// Command scale is the million-hostname scale run: for each hostname count and each
// store it seeds the store (bench/seed, a top-up if it is there already),
// starts `spine serve` with GOMAXPROCS=1 (-gomaxprocs) pinned to one core, probes it from
// the other, and reports what a platform with that many names sees:
//
//   - first HTTPS answer after exec;
//   - every hostname servable: a sample spread over the whole range (the
//     first and last names included) each answered with its certificate;
//   - resident memory 2 s after the first answer, after the warm-up (its
//     peak still held; and the peak itself, VmHWM) and settled (-settle
//     after the first sync, once the node gave the peak back), and the
//     per-hostname slopes between counts;
//   - handshakes needing a certificate from the store (dial + handshake, one
//     at a time, each another name): p50 and p99 during the warm-up and
//     once the node is idle; with -warm-probe, also over the rest of the
//     warm-up, one after the other until the first sync is applied (p50,
//     p99, p99.9 and the share over 5 ms);
//   - the collections the node ran until its first sync was applied, and
//     their mark phases' wall time (the runtime's gctrace in the node's
//     log: GODEBUG=gctrace=1 is set for it unless GODEBUG is set);
//   - a configuration change: a service created through the API until its
//     hostname answers HTTPS, one deleted until its hostname is refused;
//   - the snapshot files in the data folder, their size, and how many times
//     they are rewritten in 30 s.
//
// The machine's load average (/proc/loadavg) is recorded next to each
// figure. With -db-core, PostgreSQL's processes are pinned to those cores
// while a node runs, so that the kernel does not run its backends on the
// node's core (a fleet's database has a machine of its own); with
// -db-nice, they run at that nice value, so that on the core they share
// with this probe they do not delay the probe's own half of a handshake
// (a client on another machine would not wait for them). With -prewarm,
// the store is read into the page cache before the node starts and again
// before the idle handshakes, for a machine that pages out page cache left
// unread (the benchmark VM's DAMON: a minute). Typical use, from the repository's root:
//
//	go build -o /tmp/b/ ./bench/seed ./bench/scale ./cmd/spine
//	/tmp/b/scale -bin /tmp/b -work /tmp/scale -n 100000,250000 -stores sqlite,postgres
//
// Results: a JSON line per run appended to -out (raw figures), and a
// Markdown table on standard output.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	bin, work, pg, domain, out string
	sizes                      []int
	stores                     []string
	serverCore, probeCore      string
	dbCore                     string
	dbNice                     int
	cold, sample, changes      int
	idleMax, changeGap, settle time.Duration
	procs                      int
	warmProbe, prewarm         bool
}

// run is the figures of one hostname count on one store.
type run struct {
	Store      string   `json:"store"`
	N          int      `json:"n"`
	Seed       []string `json:"seed"`      // the seed tool's report lines
	SeedSec    float64  `json:"seed_sec"`  // its wall time (0 work for a store seeded before)
	FirstSec   float64  `json:"first_sec"` // first HTTPS answer after exec
	AllSec     float64  `json:"all_sec"`   // every name of the sample answered
	RSSFirstMi float64  `json:"rss_first_mib"`
	RSSWarmMi  float64  `json:"rss_warm_mib"`
	RSSPeakMi  float64  `json:"rss_peak_mib"` // the most RSS until the idle point (VmHWM): the first sync's peak
	// RSSSettledMi is read once the node has given the first sync's peak
	// back (-settle after the first sync: the node releases it after the
	// sync and the two after it, a --resync-interval apart), after the
	// changes and the snapshot figures; SettledSec is when, after exec.
	RSSSettledMi float64 `json:"rss_settled_mib,omitempty"`
	SettledSec   float64 `json:"settled_sec,omitempty"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	DBCore       string  `json:"db_core,omitempty"`        // PostgreSQL's processes pinned there (-db-core)
	DBNice       int     `json:"db_nice,omitempty"`        // PostgreSQL's processes' nice value (-db-nice)
	WarmSec      float64 `json:"warm_sec"`                 // until the node was idle
	VacuumSec    float64 `json:"vacuum_sec,omitempty"`     // PostgreSQL: VACUUM (ANALYZE) of the schema after seeding
	SyncSec      float64 `json:"first_sync_sec,omitempty"` // the warm-up's first sync, from the node's log
	// WarmGC is the collections the node ran until its first sync was
	// applied, from the runtime's trace in its log (GODEBUG=gctrace=1,
	// set unless GODEBUG is): on one processor each mark phase holds it
	// in slices of up to 10 ms, the warm-up's tail.
	WarmGC   *gcFigure  `json:"warm_gc,omitempty"`
	ColdWarm [2]float64 `json:"cold_warmup_p50_p99_ms"`
	ColdIdle [2]float64 `json:"cold_idle_p50_p99_ms"`
	// PrewarmSec is how long -prewarm's reads of the store into the page
	// cache took: before the node's start, and right before ColdIdle.
	PrewarmSec [2]float64 `json:"prewarm_sec,omitzero"`
	// ColdIdleSlow are ColdIdle's handshakes over 5 ms: when each began,
	// in seconds after the node's exec (its gctrace's clock), and its ms.
	ColdIdleSlow [][2]float64 `json:"cold_idle_slow,omitempty"`
	// WarmProbe is -warm-probe's figure: handshakes from the store one
	// after the other from the warm-up figure until the first sync was
	// applied (it takes the node's processor from the sync, which then
	// takes longer).
	WarmProbe *probeFigure      `json:"warm_probe,omitempty"`
	CreateMs  []float64         `json:"create_ms"`
	DeleteMs  []float64         `json:"delete_ms"`
	Snapshots map[string]int64  `json:"snapshot_bytes"`        // by kind of file
	Rewrites  map[string]int    `json:"snapshot_rewrites_30s"` // files written anew, by kind
	Load      map[string]string `json:"load"`                  // /proc/loadavg at each figure
	Errors    []string          `json:"errors,omitempty"`      // a figure not taken, and why
}

func main() {
	var c config
	var sizes, stores, upAddr string
	flag.StringVar(&c.bin, "bin", "", "folder holding the spine and seed binaries")
	flag.StringVar(&c.work, "work", "/tmp/spine-scale", "scratch folder: a data folder per store and count, the nodes' logs")
	flag.StringVar(&c.pg, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL DSN: each count gets a schema spine_scale_N in it")
	flag.StringVar(&c.domain, "domain", "bench.test", "the seeded domain")
	flag.StringVar(&c.out, "out", "", "append each run's figures as a JSON line to this file")
	flag.StringVar(&sizes, "n", "100000,250000,500000,1000000", "hostname counts")
	flag.StringVar(&stores, "stores", "sqlite,postgres", "stores: sqlite, postgres")
	flag.StringVar(&c.serverCore, "server-core", "0", "core spine is pinned to")
	flag.StringVar(&c.probeCore, "probe-core", "1", "core this probe is pinned to once seeding is done")
	flag.StringVar(&c.dbCore, "db-core", "", "cores PostgreSQL's processes are pinned to while a node runs (its backends, forked later, too), then given every core back; empty: not pinned, so the kernel may run them on the node's core")
	flag.IntVar(&c.dbNice, "db-nice", 0, "nice value PostgreSQL's processes run at while a node runs (its backends, forked later, too), then 0 again, with the kernel's autogroups off meanwhile: 10 keeps them from delaying this probe's own handshakes on the core they share (0: left as they are)")
	flag.StringVar(&upAddr, "upstream", "127.0.0.1:19000", "address of the upstream this run serves (200 \"ok\") for every seeded service")
	flag.IntVar(&c.cold, "cold", 200, "handshakes timed in each cold-handshake figure")
	flag.DurationVar(&c.idleMax, "idle-max", 15*time.Minute, "longest wait for the node to be idle after its warm-up (under 5 % of a core for a second)")
	flag.IntVar(&c.changes, "changes", 3, "services created and deleted, one after the other, in the configuration-change figure")
	flag.DurationVar(&c.changeGap, "change-gap", 0, "wait between two changes (spread over a --resync-interval, they meet the node's full resync)")
	flag.IntVar(&c.sample, "sample", 100, "hostnames in the servable sample")
	flag.DurationVar(&c.settle, "settle", 75*time.Second, "time after the first sync at which the settled RSS is read (0: not read)")
	flag.IntVar(&c.procs, "gomaxprocs", 1, "GOMAXPROCS of the node (it is pinned to one core whatever this says)")
	flag.BoolVar(&c.prewarm, "prewarm", false, "read the store into the page cache before the node starts and again right before the idle cold handshakes (SQLite: its files; PostgreSQL: pg_prewarm's read of the schema's tables and indexes): the figure is then the node's, not the disk's, on a machine that pages out cold page cache (DAMON's reclaim: a certificate's row untouched for a minute is read from the disk again)")
	flag.BoolVar(&c.warmProbe, "warm-probe", false, "time handshakes from the store one after the other over the rest of the warm-up, until the first sync is applied (the sync takes longer under them)")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1000 {
			fatal(fmt.Errorf("-n: %q is not a count of at least 1000", s))
		}
		c.sizes = append(c.sizes, n)
	}
	c.stores = strings.Split(stores, ",")
	if c.bin == "" {
		fatal(errors.New("-bin is required"))
	}
	up, err := upstream(upAddr)
	if err != nil {
		fatal(err)
	}
	var runs []run
	for _, st := range c.stores {
		for _, n := range c.sizes {
			r := c.measure(st, n, up)
			runs = append(runs, r)
			if c.out != "" {
				b, _ := json.Marshal(r)
				if f, err := os.OpenFile(c.out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
					f.Write(append(b, '\n'))
					f.Close()
				}
			}
		}
	}
	table(os.Stdout, runs)
	notes(os.Stdout, runs)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "scale:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// upstream serves 200 "ok" on addr and returns its URL.
func upstream(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	return "http://" + l.Addr().String(), nil
}

func schemaOf(n int) string { return fmt.Sprintf("spine_scale_%d", n) }

// vacuum runs VACUUM (ANALYZE) on every table of schema, one statement
// each (VACUUM runs outside a transaction block).
func vacuum(dsn, schema string) error {
	cmd := exec.Command("psql", dsn, "-qv", "ON_ERROR_STOP=1")
	cmd.Stdin = strings.NewReader(`SELECT format('VACUUM (ANALYZE) %I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = '` +
		schema + `' \gexec` + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vacuuming %s: %v: %s", schema, err, out)
	}
	return nil
}

// prewarmStore is prewarm, timed and logged.
func (c *config) prewarmStore(st string, n int, data string) (float64, error) {
	t := time.Now()
	if err := prewarm(st, data, c.pg, schemaOf(n)); err != nil {
		return 0, err
	}
	d := time.Since(t).Seconds()
	logf("%s %d: the store read into the page cache in %.1f s", st, n, d)
	return d, nil
}

// prewarm reads a store into the page cache: SQLite's files in data
// (spine.db and its WAL), or with pg_prewarm's "read" mode (into the
// operating system's cache, not PostgreSQL's buffers) every table and
// index of schema, their TOAST (a certificate's PEM) included. The database is the probe's to read: the node is left
// alone on its core.
func prewarm(st, data, dsn, schema string) error {
	if st != "postgres" {
		files, _ := filepath.Glob(filepath.Join(data, "spine.db*"))
		for _, name := range files {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, f)
			f.Close()
			if err != nil {
				return fmt.Errorf("prewarming %s: %v", name, err)
			}
		}
		return nil
	}
	cmd := exec.Command("psql", dsn, "-qAtv", "ON_ERROR_STOP=1")
	cmd.Stdin = strings.NewReader(`CREATE EXTENSION IF NOT EXISTS pg_prewarm;
WITH rel AS (SELECT c.oid, c.relkind, c.reltoastrelid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = '` + schema + `'),
toast AS (SELECT reltoastrelid AS oid FROM rel WHERE reltoastrelid <> 0)
SELECT sum(pg_prewarm(oid, 'read')) FROM (
  SELECT oid FROM rel WHERE relkind IN ('r', 'i', 'm')
  UNION SELECT oid FROM toast
  UNION SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT oid FROM toast)) AS each;` + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("prewarming %s: %v: %s", schema, err, out)
	}
	return nil
}

// firstSync returns the duration of the warm-up's first sync that the
// node logged ("first sync applied ... duration=...") in log, 0 if none.
func firstSync(log string) float64 {
	b, _ := os.ReadFile(log)
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "first sync applied") {
			continue
		}
		if _, v, ok := strings.Cut(l, " duration="); ok {
			if d, err := time.ParseDuration(strings.Fields(v)[0]); err == nil {
				return d.Seconds()
			}
		}
	}
	return 0
}

// gcFigure is the collections of a stretch of a node's run: how many,
// how many forced, and their concurrent mark phases' wall time in all.
type gcFigure struct {
	N, Forced int
	MarkMs    float64
}

// warmCollections reads the collections the runtime traced (gctrace) in
// log before its first "first sync applied" line; nil if it traced none
// (GODEBUG without gctrace=1) or the sync was not applied.
func warmCollections(log string) *gcFigure {
	b, _ := os.ReadFile(log)
	var f gcFigure
	for l := range strings.Lines(string(b)) {
		if strings.Contains(l, "first sync applied") {
			if f.N == 0 {
				return nil
			}
			return &f
		}
		if ms, forced, ok := parseGCTrace(l); ok {
			f.N++
			f.MarkMs += ms
			if forced {
				f.Forced++
			}
		}
	}
	return nil
}

// parseGCTrace reads one line of the runtime's gctrace ("gc 3 @1.512s 2%:
// 0.010+120+0.020 ms clock, ...", with "(forced)" at its end for
// runtime.GC): the concurrent mark phase's wall time in ms, and whether the
// collection was forced.
func parseGCTrace(l string) (markMs float64, forced, ok bool) {
	f := strings.Fields(l)
	if len(f) < 6 || f[0] != "gc" || !strings.HasPrefix(f[2], "@") {
		return 0, false, false
	}
	for i := 3; i+2 < len(f); i++ {
		if f[i+1] != "ms" || f[i+2] != "clock," {
			continue
		}
		parts := strings.Split(f[i], "+")
		if len(parts) != 3 {
			return 0, false, false
		}
		ms, err := strconv.ParseFloat(parts[1], 64)
		if err != nil {
			return 0, false, false
		}
		return ms, strings.Contains(l, "(forced)"), true
	}
	return 0, false, false
}

func (c *config) host(i int) string { return fmt.Sprintf("s%06d.%s", i, c.domain) }

func (c *config) measure(st string, n int, up string) (r run) {
	r = run{Store: st, N: n, Load: map[string]string{}, Snapshots: map[string]int64{}, Rewrites: map[string]int{}}
	fail := func(err error) run {
		logf("%s %d: %v", st, n, err)
		r.Errors = append(r.Errors, err.Error())
		return r
	}
	data := filepath.Join(c.work, fmt.Sprintf("%s-%d", st, n))
	var dsn string
	if st == "postgres" {
		schema := schemaOf(n)
		if out, err := exec.Command("psql", c.pg, "-qc", "CREATE SCHEMA IF NOT EXISTS "+schema).CombinedOutput(); err != nil {
			return fail(fmt.Errorf("creating schema %s: %v: %s", schema, err, out))
		}
		u, err := url.Parse(c.pg)
		if err != nil {
			return fail(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}

	// Seed on every core, whatever this process is pinned to.
	if dsn != "" {
		// A top-up's reads need the planner's statistics too: without
		// them, reading one service by name scans every hostname (0.4 s
		// at 1M).
		if err := vacuum(c.pg, schemaOf(n)); err != nil {
			return fail(err)
		}
	}
	logf("%s %d: seeding (a top-up if seeded before)", st, n)
	args := []string{"-c", "0-" + strconv.Itoa(cores()-1), filepath.Join(c.bin, "seed"), "-data", data, "-n", strconv.Itoa(n), "-certs",
		"-domain", c.domain, "-upstream", up}
	if dsn != "" {
		args = append(args, "-store", dsn)
	}
	t := time.Now()
	out, err := exec.Command("taskset", args...).CombinedOutput()
	r.SeedSec = time.Since(t).Seconds()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "seed: ") && !strings.Contains(l, " of ") {
			r.Seed = append(r.Seed, l)
		}
	}
	if err != nil {
		return fail(fmt.Errorf("seeding: %v: %s", err, out))
	}
	r.Load["seed"] = loadavg()
	if st == "postgres" {
		// What autovacuum does within a minute of a bulk load on a
		// default server (statistics for the planner, the visibility map
		// for index-only scans); a server with autovacuum off, as a test
		// database may be, would otherwise be measured never analysed.
		t := time.Now()
		if err := vacuum(c.pg, schemaOf(n)); err != nil {
			return fail(err)
		}
		r.VacuumSec = time.Since(t).Seconds()
		logf("%s %d: VACUUM (ANALYZE) of the schema took %.1f s", st, n, r.VacuumSec)
	}
	pin(c.probeCore)
	if c.dbCore != "" && st == "postgres" {
		if err := pinPostgres(c.dbCore); err != nil {
			return fail(err)
		}
		defer pinPostgres("0-" + strconv.Itoa(cores()-1))
		r.DBCore = c.dbCore
	}
	if c.dbNice != 0 && st == "postgres" {
		restore, err := noAutogroups()
		if err != nil {
			return fail(err)
		}
		defer restore()
		if err := renicePostgres(c.dbNice); err != nil {
			return fail(err)
		}
		defer renicePostgres(0)
		r.DBNice = c.dbNice
	}

	if c.prewarm {
		if r.PrewarmSec[0], err = c.prewarmStore(st, n, data); err != nil {
			return fail(err)
		}
	}

	// The node, on its core.
	ports := [3]int{freePort(), freePort(), freePort()}
	https := fmt.Sprintf("127.0.0.1:%d", ports[0])
	api := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	logFile, err := os.Create(filepath.Join(c.work, fmt.Sprintf("%s-%d-spine.log", st, n)))
	if err != nil {
		return fail(err)
	}
	defer logFile.Close()
	sargs := []string{"-c", c.serverCore, filepath.Join(c.bin, "spine"), "serve", "--data", data, "--https-addr", https,
		"--http-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--api-addr", strings.TrimPrefix(api, "http://"), "--domain", c.domain}
	if dsn != "" {
		sargs = append(sargs, "--store", dsn)
	}
	cmd := exec.Command("taskset", sargs...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(c.procs))
	if os.Getenv("GODEBUG") == "" {
		cmd.Env = append(cmd.Env, "GODEBUG=gctrace=1") // one line a collection, for WarmGC
	}
	r.GOMAXPROCS = c.procs
	cmd.Stdout, cmd.Stderr = logFile, logFile
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid // taskset execs spine: same process

	// First HTTPS answer.
	for {
		if _, err := get(https, c.host(0)); err == nil {
			break
		}
		select {
		case <-exited:
			return fail(fmt.Errorf("spine exited before answering (log %s)", logFile.Name()))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Since(t0) > 10*time.Minute {
			return fail(errors.New("no HTTPS answer within 10 minutes"))
		}
	}
	r.FirstSec = time.Since(t0).Seconds()
	r.Load["first"] = loadavg()
	logf("%s %d: first HTTPS answer after %.2f s", st, n, r.FirstSec)
	first := time.Now()

	// Every name servable: a sample over the whole range, the last included.
	var sample []int
	for i := range c.sample {
		sample = append(sample, i*n/c.sample)
	}
	sample = append(sample, n-1)
	inSample := map[int]bool{}
	for _, i := range sample {
		inSample[i] = true
	}
	rssDone := false
	for len(sample) > 0 {
		if !rssDone && time.Since(first) >= 2*time.Second {
			r.RSSFirstMi, rssDone = rssMiB(pid), true
		}
		if _, err := get(https, c.host(sample[0])); err == nil {
			sample = sample[1:]
			continue
		}
		if time.Since(t0) > 10*time.Minute {
			return fail(fmt.Errorf("%d names of the sample not served within 10 minutes, %s the first", len(sample), c.host(sample[0])))
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.AllSec = time.Since(t0).Seconds()
	r.Load["all"] = loadavg()
	logf("%s %d: every name of the sample served after %.2f s", st, n, r.AllSec)
	if !rssDone {
		time.Sleep(time.Until(first.Add(2 * time.Second)))
		r.RSSFirstMi = rssMiB(pid)
	}
	r.Load["rss_first"] = loadavg()

	// Handshakes needing the store, during the warm-up: names from 95 %
	// on, which a warm-up that fills the cache in name order reaches last.
	r.ColdWarm, _ = c.coldHandshakes(https, n*95/100, n, inSample, t0)
	r.Load["cold_warmup"] = loadavg()
	logf("%s %d: from the store during the warm-up p50 %.2f ms p99 %.2f ms", st, n, r.ColdWarm[0], r.ColdWarm[1])

	if c.warmProbe {
		r.WarmProbe = c.probeWarmUp(https, n*50/100, n*90/100, inSample, logFile.Name(), t0)
		r.Load["warm_probe"] = loadavg()
		p := r.WarmProbe
		logf("%s %d: over the rest of the warm-up (%d handshakes from the store): p50 %.2f ms p99 %.2f ms p99.9 %.2f ms, %.2f %% over 5 ms",
			st, n, p.N, p.P50, p.P99, p.P999, p.Over5)
	}
	r.WarmSec = waitIdle(pid, c.idleMax, t0).Seconds()
	r.SyncSec = firstSync(logFile.Name())
	r.WarmGC = warmCollections(logFile.Name())
	if g := r.WarmGC; g != nil {
		logf("%s %d: until the first sync was applied, %d collections (%d forced), their mark phases %.0f ms", st, n, g.N, g.Forced, g.MarkMs)
	}
	r.RSSWarmMi = rssMiB(pid)
	r.RSSPeakMi = peakMiB(pid)
	r.Load["rss_warm"] = loadavg()
	if c.prewarm {
		if r.PrewarmSec[1], err = c.prewarmStore(st, n, data); err != nil {
			return fail(err)
		}
	}
	r.ColdIdle, r.ColdIdleSlow = c.coldHandshakes(https, n*90/100, n*95/100, inSample, t0)
	r.Load["cold_idle"] = loadavg()
	logf("%s %d: idle %.0f s after exec, RSS %.0f MiB (%.0f 2 s after the first answer); from the store p50 %.2f ms p99 %.2f ms",
		st, n, r.WarmSec, r.RSSWarmMi, r.RSSFirstMi, r.ColdIdle[0], r.ColdIdle[1])

	// A configuration change, three times.
	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		return fail(err)
	}
	for k := range c.changes {
		if k > 0 {
			time.Sleep(c.changeGap)
		}
		name := fmt.Sprintf("zz%d-%d", time.Now().UnixNano()%1e9, k)
		cms, dms, err := c.change(api, strings.TrimSpace(string(token)), https, name, up)
		if err != nil { // noted; the snapshot is still measured
			logf("%s %d: %v", st, n, err)
			r.Errors = append(r.Errors, err.Error())
			break
		}
		r.CreateMs, r.DeleteMs = append(r.CreateMs, cms), append(r.DeleteMs, dms)
	}
	r.Load["change"] = loadavg()
	logf("%s %d: create until served %v ms, delete until refused %v ms", st, n, r.CreateMs, r.DeleteMs)

	// Snapshot files and their rewrites over 30 s: the top-level files
	// polled every 200 ms, the certs/ folder's files counted by mtime.
	start := time.Now()
	seen := snapshots(data)
	for end := start.Add(30 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		now := snapshots(data)
		for f, fi := range now {
			if old, ok := seen[f]; (!ok || !old.ModTime().Equal(fi.ModTime()) || old.Size() != fi.Size()) && group(f) != "" {
				r.Rewrites[group(f)]++
			}
		}
		seen = now
	}
	for f, fi := range seen {
		if group(f) != "" {
			r.Snapshots[group(f)] += fi.Size()
		}
	}
	files, bytes, written := certFiles(filepath.Join(data, "snapshot", "certs"), start)
	if files > 0 {
		r.Snapshots[fmt.Sprintf("snapshot/certs/ (%d files)", files)] = bytes
		r.Rewrites["snapshot/certs/ files"] = written
	}
	r.Load["snapshot"] = loadavg()
	logf("%s %d: snapshot files %v, rewrites in 30 s %v", st, n, r.Snapshots, r.Rewrites)

	if c.settle > 0 && r.SyncSec > 0 {
		time.Sleep(time.Until(t0.Add(time.Duration(r.SyncSec*float64(time.Second)) + c.settle)))
		r.RSSSettledMi, r.SettledSec = rssMiB(pid), time.Since(t0).Seconds()
		r.Load["rss_settled"] = loadavg()
		logf("%s %d: RSS %.0f MiB %.0f s after exec, the first sync's peak released", st, n, r.RSSSettledMi, r.SettledSec)
	}
	return r
}

// get does one HTTPS request for host on addr, on a new connection, and
// fails unless the certificate names host.
func get(addr, host string) (time.Duration, error) {
	t := time.Now()
	conn, err := handshake(addr, host)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	buf := make([]byte, 12)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return 0, err
	}
	if !bytes.HasPrefix(buf, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("not an HTTP answer: %q", buf)
	}
	return time.Since(t), nil
}

// handshake dials addr and completes a TLS handshake for host, checking
// that the certificate names host (the chain is not verified: the probe
// starts before the node writes its root).
func handshake(addr, host string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return nil, err
	}
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 || certs[0].VerifyHostname(host) != nil {
		conn.Close()
		return nil, fmt.Errorf("the certificate does not name %s", host)
	}
	return conn, nil
}

// timeHandshake times one handshake (dial included) for name i, in ms;
// false for a name of the sample (skip) or a handshake that failed.
func (c *config) timeHandshake(addr string, i int, skip map[int]bool) (float64, bool) {
	if skip[i] {
		return 0, false
	}
	t := time.Now()
	conn, err := handshake(addr, c.host(i))
	if err != nil {
		return 0, false
	}
	d := float64(time.Since(t).Microseconds()) / 1000
	conn.Close()
	return d, true
}

// coldHandshakes times c.cold handshakes (dial included), one at a time,
// each for another name between from and to that the sample left alone,
// and returns their p50 and p99 in ms, and those over 5 ms with when each
// began, in seconds after t0 (the node's exec), as probeFigure.Slow.
func (c *config) coldHandshakes(addr string, from, to int, skip map[int]bool, t0 time.Time) ([2]float64, [][2]float64) {
	var ms []float64
	var slow [][2]float64
	step := max(1, (to-from)/c.cold)
	for i := from; i < to && len(ms) < c.cold; i += step {
		began := time.Since(t0).Seconds()
		if d, ok := c.timeHandshake(addr, i, skip); ok {
			ms = append(ms, d)
			if d > 5 && len(slow) < maxSlow {
				slow = append(slow, [2]float64{began, d})
			}
		}
	}
	if len(ms) == 0 {
		return [2]float64{}, nil
	}
	slices.Sort(ms)
	return [2]float64{ms[len(ms)/2], ms[min(len(ms)-1, len(ms)*99/100)]}, slow
}

// probeFigure is a series of handshake times: their count, p50, p99 and
// p99.9 in ms, and the percentage over 5 ms. Slow are the handshakes over
// 5 ms (the first maxSlow): when each began, in seconds after the node's
// exec (the clock of its gctrace lines, to a few ms), and its ms.
type probeFigure struct {
	N              int
	P50, P99, P999 float64
	Over5          float64
	Slow           [][2]float64 `json:",omitempty"`
}

const maxSlow = 5000

// probeWarmUp times handshakes, one at a time, each for another name from
// from on that the sample left alone, until the node logs its first sync
// applied (read every half second) or the names run out before to.
func (c *config) probeWarmUp(addr string, from, to int, skip map[int]bool, log string, t0 time.Time) *probeFigure {
	var ms []float64
	var slow [][2]float64
	checked := time.Now()
	for i := from; i < to; i++ {
		if time.Since(checked) >= 500*time.Millisecond {
			if b, _ := os.ReadFile(log); bytes.Contains(b, []byte("first sync applied")) {
				break
			}
			checked = time.Now()
		}
		began := time.Since(t0).Seconds()
		if d, ok := c.timeHandshake(addr, i, skip); ok {
			ms = append(ms, d)
			if d > 5 && len(slow) < maxSlow {
				slow = append(slow, [2]float64{began, d})
			}
		}
	}
	f := &probeFigure{N: len(ms), Slow: slow}
	if len(ms) == 0 {
		return f
	}
	slices.Sort(ms)
	at := func(q float64) float64 { return ms[min(len(ms)-1, int(float64(len(ms))*q))] }
	f.P50, f.P99, f.P999 = at(0.5), at(0.99), at(0.999)
	over := len(ms) - sort.SearchFloat64s(ms, 5.0000001)
	f.Over5 = 100 * float64(over) / float64(len(ms))
	return f
}

// change creates the service name through the API and times until its
// hostname answers HTTPS, then deletes it and times until its hostname
// is refused.
func (c *config) change(api, token, addr, name, up string) (float64, float64, error) {
	host := name + "." + c.domain
	body, _ := json.Marshal(map[string]any{"name": name, "upstreams": []string{up}})
	t := time.Now()
	if err := call("POST", api+"/v1/services", token, body); err != nil {
		return 0, 0, fmt.Errorf("creating %s: %w", name, err)
	}
	for {
		if _, err := get(addr, host); err == nil {
			break
		}
		if time.Since(t) > 5*time.Minute {
			return 0, 0, fmt.Errorf("%s not served 5 minutes after its creation", host)
		}
		time.Sleep(time.Millisecond)
	}
	created := float64(time.Since(t).Microseconds()) / 1000
	t = time.Now()
	if err := call("DELETE", api+"/v1/services/"+name, token, nil); err != nil {
		return 0, 0, fmt.Errorf("deleting %s: %w", name, err)
	}
	for {
		conn, err := handshake(addr, host)
		if err != nil {
			break
		}
		conn.Close()
		if time.Since(t) > 5*time.Minute {
			return 0, 0, fmt.Errorf("%s still served 5 minutes after its deletion", host)
		}
		time.Sleep(time.Millisecond)
	}
	return created, float64(time.Since(t).Microseconds()) / 1000, nil
}

func call(method, url, token string, body []byte) error {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, b)
	}
	return nil
}

// snapshots returns the snapshot files of the data folder (an older
// release's snapshot.json, the files of snapshot/ but those of its certs/
// folder), by path relative to it.
func snapshots(data string) map[string]os.FileInfo {
	out := map[string]os.FileInfo{}
	if fi, err := os.Stat(filepath.Join(data, "snapshot.json")); err == nil {
		out["snapshot.json"] = fi
	}
	des, _ := os.ReadDir(filepath.Join(data, "snapshot"))
	for _, de := range des {
		if de.IsDir() {
			continue
		}
		if fi, err := de.Info(); err == nil {
			out["snapshot/"+de.Name()] = fi
		}
	}
	return out
}

// group names the kind of a snapshot file: its name up to its first "-"
// (services-<shard>-<hash>.json: "services-*.json"), so that the shards of
// a kind, and a file rewritten under a new name, count together. A
// temporary file being written is "".
func group(f string) string {
	dir, base := filepath.Split(f)
	if strings.HasPrefix(base, ".") {
		return ""
	}
	if i := strings.IndexByte(base, '-'); i > 0 {
		return dir + base[:i] + "-*" + filepath.Ext(base)
	}
	return f
}

// certFiles counts the files of dir, their bytes, and those modified
// since t.
func certFiles(dir string, t time.Time) (files int, bytes int64, since int) {
	filepath.WalkDir(dir, func(_ string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return nil
		}
		files++
		bytes += fi.Size()
		if fi.ModTime().After(t) {
			since++
		}
		return nil
	})
	return files, bytes, since
}

func rssMiB(pid int) float64 { return statusMiB(pid, "VmRSS:") }

// peakMiB is the most RSS pid has had (VmHWM).
func peakMiB(pid int) float64 { return statusMiB(pid, "VmHWM:") }

// statusMiB reads one of /proc/pid/status's memory lines, in MiB.
func statusMiB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuTicks returns the user and system time pid has used, in clock ticks.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return u + k
}

// waitIdle waits until pid used under 5 % of a core for a whole second
// (at most max) and returns the time since t0.
func waitIdle(pid int, max time.Duration, t0 time.Time) time.Duration {
	start := time.Now()
	before := cpuTicks(pid)
	for time.Since(start) < max {
		time.Sleep(time.Second)
		now := cpuTicks(pid)
		if now-before < 5 { // 100 ticks a second
			break
		}
		before = now
	}
	return time.Since(t0)
}

func pin(core string) {
	exec.Command("taskset", "-a", "-p", "-c", core, strconv.Itoa(os.Getpid())).Run()
}

// pinPostgres pins every running PostgreSQL process to cores; the
// backends the postmaster forks later inherit its affinity. A fleet's
// database runs on its own machine: pinned, this machine's PostgreSQL
// does not take the node's core from it, as it does unpinned when a read
// wakes its backend there.
func pinPostgres(cores string) error {
	out, err := exec.Command("pgrep", "-x", "postgres").Output()
	if err != nil {
		return fmt.Errorf("-db-core: no PostgreSQL process found (pgrep -x postgres): %v", err)
	}
	for _, pid := range strings.Fields(string(out)) {
		if out, err := exec.Command("taskset", "-a", "-p", "-c", cores, pid).CombinedOutput(); err != nil {
			return fmt.Errorf("-db-core: pinning PostgreSQL process %s: %v: %s", pid, err, out)
		}
	}
	return nil
}

// renicePostgres sets the nice value of every running PostgreSQL process;
// the backends the postmaster forks later inherit it. On a machine of
// two cores, this probe shares its core with PostgreSQL (-db-core): at the
// same priority, a backend busy with the node's read of every service
// kept the probe from reading the node's answer for a scheduler slice,
// and the probe timed that wait as the node's (a runtime trace of the
// node, BENCHMARKS.md). A client on a machine of its own does not wait
// so; -db-nice keeps the probe's figure the node's, and the database
// still gets every cycle the probe leaves.
//
// With the kernel's autogroups on (sched_autogroup_enabled), a nice value
// orders a process only against the processes of its own session, and
// each PostgreSQL backend is a session of its own (it calls setsid): a
// backend got as much of the core as this probe whatever the nice values.
// So -db-nice also turns autogroups off while the node runs (noAutogroups).
func renicePostgres(nice int) error {
	out, err := exec.Command("pgrep", "-x", "postgres").Output()
	if err != nil {
		return fmt.Errorf("-db-nice: no PostgreSQL process found (pgrep -x postgres): %v", err)
	}
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		// A process of one thread (PostgreSQL's are): PRIO_PROCESS sets it.
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, pid, nice); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("-db-nice: setting PostgreSQL process %d's nice to %d: %v (lowering it back needs root)", pid, nice, err)
		}
	}
	return nil
}

// autogroupSwitch is the kernel's switch of its autogroups.
const autogroupSwitch = "/proc/sys/kernel/sched_autogroup_enabled"

// noAutogroups turns the kernel's autogroups off, if they are on, and
// returns what turns them on again; on a kernel without them it does
// nothing. With them off, nice values order processes across sessions
// (renicePostgres).
func noAutogroups() (restore func(), err error) {
	b, err := os.ReadFile(autogroupSwitch)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && strings.TrimSpace(string(b)) == "0") {
		return func() {}, nil
	}
	if err == nil {
		err = os.WriteFile(autogroupSwitch, []byte("0"), 0)
	}
	if err != nil {
		return nil, fmt.Errorf("-db-nice: turning the kernel's autogroups off (%s): %v (needs root)", autogroupSwitch, err)
	}
	return func() { os.WriteFile(autogroupSwitch, []byte("1"), 0) }, nil
}

// cores is the number of cores this process could use at its start,
// before pin.
func cores() int { return runtime.NumCPU() }

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// table writes the runs as a Markdown table, with the RSS slope between
// consecutive counts of one store.
func table(w io.Writer, runs []run) {
	fmt.Fprintln(w, "| store | hostnames | seed | first answer | all servable | RSS 2 s after first answer | RSS after warm-up (peak) | slope (warm) | RSS settled | slope (settled) | first sync | from store, warm-up p50/p99 | over the rest of the warm-up (-warm-probe); its collections | from store, idle p50/p99 | create → served | delete → refused | snapshot files | rewrites in 30 s | load (1/5/15 min) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for i, r := range runs {
		slope := "–"
		if i > 0 && runs[i-1].Store == r.Store && r.RSSWarmMi > 0 && runs[i-1].RSSWarmMi > 0 {
			slope = fmt.Sprintf("%.0f B/name", (r.RSSWarmMi-runs[i-1].RSSWarmMi)*1024*1024/float64(r.N-runs[i-1].N))
		}
		settled, sslope := "–", "–"
		if r.RSSSettledMi > 0 {
			settled = fmt.Sprintf("%.0f MiB at %.0f s", r.RSSSettledMi, r.SettledSec)
			if i > 0 && runs[i-1].Store == r.Store && runs[i-1].RSSSettledMi > 0 {
				sslope = fmt.Sprintf("%.0f B/name", (r.RSSSettledMi-runs[i-1].RSSSettledMi)*1024*1024/float64(r.N-runs[i-1].N))
			}
		}
		if r.FirstSec == 0 {
			fmt.Fprintf(w, "| %s | %d | failed: %s |\n", r.Store, r.N, strings.Join(r.Errors, "; "))
			continue
		}
		var files []string
		var total int64
		for f, s := range r.Snapshots {
			files = append(files, fmt.Sprintf("%s %.1f MB", f, float64(s)/1e6))
			total += s
		}
		slices.Sort(files)
		var rw []string
		for f, k := range r.Rewrites {
			rw = append(rw, fmt.Sprintf("%s ×%d", f, k))
		}
		slices.Sort(rw)
		probe := "–"
		if p := r.WarmProbe; p != nil {
			probe = fmt.Sprintf("%d: %.1f / %.1f ms, p99.9 %.1f ms, %.1f %% over 5 ms", p.N, p.P50, p.P99, p.P999, p.Over5)
		}
		if g := r.WarmGC; g != nil {
			probe += fmt.Sprintf("; %d collections (%d forced), mark %.0f ms", g.N, g.Forced, g.MarkMs)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %.2f s | %.2f s | %.0f MiB | %.0f MiB (%.0f) | %s | %s | %s | %.1f s | %.1f / %.1f ms | %s | %.1f / %.1f ms | %s ms | %s ms | %s | %s | %s |\n",
			r.Store, r.N, strings.Join(r.Seed, "<br>"), r.FirstSec, r.AllSec, r.RSSFirstMi, r.RSSWarmMi, r.RSSPeakMi, slope, settled, sslope, r.SyncSec,
			r.ColdWarm[0], r.ColdWarm[1], probe, r.ColdIdle[0], r.ColdIdle[1], joinMs(r.CreateMs), joinMs(r.DeleteMs),
			orNone(strings.Join(files, ", ")), orNone(strings.Join(rw, ", ")), r.Load["first"]+" … "+r.Load["snapshot"])
	}
}

// notes lists, under the table, the figures a run could not take.
func notes(w io.Writer, runs []run) {
	for _, r := range runs {
		if r.FirstSec > 0 && len(r.Errors) > 0 {
			fmt.Fprintf(w, "\n- %s, %d: %s\n", r.Store, r.N, strings.Join(r.Errors, "; "))
		}
	}
}

func joinMs(ms []float64) string {
	var s []string
	for _, m := range ms {
		s = append(s, strconv.FormatFloat(m, 'f', 0, 64))
	}
	return strings.Join(s, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
