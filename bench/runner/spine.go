package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

type probeOut struct {
	WaitedMs    float64 `json:"waited_ms"`
	HandshakeMs float64 `json:"handshake_ms"`
	LastError   string  `json:"last_error"`
}

// probe retries a handshake for host on the node until it succeeds.
func (r *runner) probe(n *spineNode, host string, max time.Duration) (probeOut, error) {
	ctx, cancel := context.WithTimeout(context.Background(), max+time.Minute)
	defer cancel()
	// The node writes its root a moment after its API answers.
	root := filepath.Join(n.data, "ca", "root.pem")
	for deadline := time.Now().Add(max); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(root); err == nil {
			break
		}
	}
	out, err := runLoad(ctx, r.loadCore, filepath.Join(r.bin, "loadgen"), "probe", "-addr", n.https, "-sni", host,
		"-ca", root, "-max", max.String(), "-every", "5ms")
	var res probeOut
	json.Unmarshal([]byte(out), &res)
	return res, err
}

// spineScale measures Spine with size hostnames in its store: the first
// start, which issues every certificate; then, reps times, a restart with
// every certificate in storage: time to the first HTTPS answer, how long a
// hostname whose certificate is not yet in memory waits and how long its
// handshake takes, the latency of handshakes that load their certificate
// from the store (during the background warm-up, and once the node is
// idle), and the resident memory once every hostname answers.
func (r *runner) spineScale(size int) {
	sfx := strconv.Itoa(size)
	label := fmt.Sprintf("%d", size)
	store := fmt.Sprintf("%s, %d hostnames", r.storeKind(), size)
	if r.scaleProcs != 1 {
		label += fmt.Sprintf(" (GOMAXPROCS=%d on one core)", r.scaleProcs)
		store += fmt.Sprintf(", GOMAXPROCS=%d on one core", r.scaleProcs)
	}
	figs := []figure{
		{key: "spine_issue_" + sfx, label: "First start with " + label + " hostnames seeded: until the last one answers HTTPS (all certificates issued)", unit: "s", spine: true},
		{key: "spine_start_" + sfx, label: "Restart with " + label + " hostnames (certificates in the store): until the first answers HTTPS", unit: "s", spine: true},
		{key: "spine_cold_wait_" + sfx, label: "Right after that restart, a hostname whose certificate is not yet in memory: wait until its handshake succeeds", unit: "ms", spine: true},
		{key: "spine_cold_hs_" + sfx, label: "… and the latency of that first successful handshake (dial + handshake)", unit: "ms", spine: true},
		{key: "spine_rss_" + sfx, label: "Resident memory after the restart, every hostname answering", unit: "MiB", spine: true},
		{key: "spine_load_warm_p50_" + sfx, label: fmt.Sprintf("Handshake needing a certificate from the store (%s), during the warm-up: p50 of %d, one at a time, each for another hostname, dial included", store, r.coldN), unit: "ms", spine: true},
		{key: "spine_load_warm_p99_" + sfx, label: "… p99", unit: "ms", spine: true},
		{key: "spine_load_idle_p50_" + sfx, label: fmt.Sprintf("Handshake needing a certificate from the store (%s), node idle after the warm-up: p50", store), unit: "ms", spine: true},
		{key: "spine_load_idle_p99_" + sfx, label: "… p99", unit: "ms", spine: true},
	}
	for _, f := range figs {
		addSpineFigure(f)
	}
	failAll := func(err error) {
		log("  spine %d hostnames: %v", size, err)
		for _, f := range figs {
			r.res.fail(f.key, "spine", err)
		}
	}
	data := filepath.Join(r.work, "scale-"+sfx)
	os.RemoveAll(data)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var dsn string
	if r.spineStore != "" {
		var err error
		if dsn, err = freshSchema(ctx, r.spineStore, "spine_bench_"+sfx); err != nil {
			failAll(err)
			return
		}
	}
	log("spine: seeding %d hostnames", size)
	seed := []string{filepath.Join(r.bin, "seed"), "-data", data, "-n", sfx, "-domain", r.spineDomain, "-upstream", "http://" + r.upstream}
	if dsn != "" {
		seed = append(seed, "-store", dsn)
	}
	if _, err := runLoad(ctx, r.loadCore, seed...); err != nil {
		failAll(fmt.Errorf("seeding: %w", err))
		return
	}
	first := "s000000." + r.spineDomain
	last := fmt.Sprintf("s%06d.%s", size-1, r.spineDomain)

	t0 := time.Now()
	n, err := r.startSpineNode(data, dsn, "scale-"+sfx+"-first", r.scaleProcs)
	if err != nil {
		failAll(err)
		return
	}
	if _, err := r.probe(n, last, r.issueMax); err != nil {
		n.p.stop()
		failAll(fmt.Errorf("first start: %s not served within %s: %w", last, r.issueMax, err))
		return
	}
	r.res.add(figs[0].key, "spine", time.Since(t0).Seconds())
	log("  spine first start with %d hostnames: all served after %s", size, time.Since(t0).Round(time.Millisecond))
	// Let it record every certificate's status, which it writes a moment
	// after serving it: a restart manages the names without one at start.
	waitIdle(n.p, 10*time.Minute)
	n.p.stop()

	for rep := range r.reps {
		t0 := time.Now()
		n, err := r.startSpineNode(data, dsn, fmt.Sprintf("scale-%s-r%d", sfx, rep+1), r.scaleProcs)
		if err != nil {
			failAll(err)
			return
		}
		if _, err := r.probe(n, first, 5*time.Minute); err != nil {
			n.p.stop()
			failAll(fmt.Errorf("restart: %s not served: %w", first, err))
			return
		}
		up := time.Since(t0)
		r.res.add(figs[1].key, "spine", up.Seconds())
		cold, err := r.probe(n, last, 5*time.Minute)
		if err != nil {
			n.p.stop()
			failAll(fmt.Errorf("restart: %s not served: %w", last, err))
			return
		}
		r.res.add(figs[2].key, "spine", cold.WaitedMs)
		r.res.add(figs[3].key, "spine", cold.HandshakeMs)
		// The warm-up fills the cache up to nine tenths of it (10,000 by
		// default) in name order: the last 5 % of the names are not
		// reached, the 90-95 % range is with fewer than 11,112 names.
		loads := r.recordColdHandshakes(n, size*95/100, size, figs[5].key, figs[6].key, fmt.Sprintf("%d hostnames, during the warm-up", size))
		time.Sleep(2 * time.Second)
		r.res.add(figs[4].key, "spine", rssKB(n.p.pid())/1024)
		log("  spine restart with %d hostnames: first answer %s, cold name waited %.1f ms, handshake %.2f ms; from the store during the warm-up p50 %.2f ms, p99 %.2f ms",
			size, up.Round(time.Millisecond), cold.WaitedMs, cold.HandshakeMs, loads.P50, loads.P99)
		idle := waitIdle(n.p, 10*time.Minute)
		loads = r.recordColdHandshakes(n, size*90/100, size*95/100, figs[7].key, figs[8].key, fmt.Sprintf("%d hostnames, when idle", size))
		log("  spine idle %s after the restart; from the store p50 %.2f ms, p99 %.2f ms", idle.Round(time.Second), loads.P50, loads.P99)
		n.p.stop()
	}
}

type namesOut struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

// recordColdHandshakes runs coldHandshakes and records its p50 and p99
// under the two keys, or its error under both.
func (r *runner) recordColdHandshakes(n *spineNode, from, to int, p50Key, p99Key, what string) namesOut {
	loads, err := r.coldHandshakes(n, from, to)
	if err != nil {
		log("  spine %s, handshakes from the store: %v", what, err)
		r.res.fail(p50Key, "spine", err)
		r.res.fail(p99Key, "spine", err)
		return loads
	}
	r.res.add(p50Key, "spine", loads.P50)
	r.res.add(p99Key, "spine", loads.P99)
	return loads
}

// coldHandshakes times r.coldN handshakes on n, one at a time, each for
// another hostname from index from on (at most up to index to).
func (r *runner) coldHandshakes(n *spineNode, from, to int) (namesOut, error) {
	count := min(r.coldN, to-from)
	if count < 1 {
		return namesOut{}, fmt.Errorf("no hostname in the range %d-%d", from, to)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := runLoad(ctx, r.loadCore, filepath.Join(r.bin, "loadgen"), "names", "-addr", n.https,
		"-ca", filepath.Join(n.data, "ca", "root.pem"), "-names", "s%06d."+r.spineDomain,
		"-from", strconv.Itoa(from), "-n", strconv.Itoa(count))
	if err != nil {
		return namesOut{}, err
	}
	var res namesOut
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return namesOut{}, fmt.Errorf("loadgen said %q: %w", out, err)
	}
	return res, nil
}

// waitIdle waits until p (and its children) used under 5 % of a core for a
// whole second, at most max, and returns how long it waited.
func waitIdle(p *proc, max time.Duration) time.Duration {
	start := time.Now()
	before := cpuMicros(p.pid())
	for time.Since(start) < max && !p.exited() {
		time.Sleep(time.Second)
		now := cpuMicros(p.pid())
		if now-before < 50_000 {
			break
		}
		before = now
	}
	return time.Since(start)
}

func (r *runner) storeKind() string {
	if r.spineStore != "" {
		return "PostgreSQL"
	}
	return "SQLite"
}

// freshSchema drops and creates schema in the PostgreSQL database of dsn,
// and returns dsn with that schema as its search path.
func freshSchema(ctx context.Context, dsn, schema string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", fmt.Errorf("-spine-store: %w", err)
	}
	defer conn.Close(context.Background())
	id := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+id+" CASCADE"); err != nil {
		return "", fmt.Errorf("-spine-store: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+id); err != nil {
		return "", fmt.Errorf("-spine-store: %w", err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("-spine-store: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
