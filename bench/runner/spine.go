package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
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
	out, err := runLoad(ctx, r.loadCore, filepath.Join(r.bin, "loadgen"), "probe", "-addr", n.https, "-sni", host,
		"-ca", filepath.Join(n.data, "ca", "root.pem"), "-max", max.String(), "-every", "5ms")
	var res probeOut
	json.Unmarshal([]byte(out), &res)
	return res, err
}

// spineScale measures Spine with size hostnames in its store: the first
// start, which issues every certificate; then, reps times, a restart with
// every certificate in storage: time to the first HTTPS answer, how long a
// hostname whose certificate is not yet in memory waits and how long its
// handshake takes, and the resident memory once every hostname answers.
func (r *runner) spineScale(size int) {
	sfx := strconv.Itoa(size)
	label := fmt.Sprintf("%d", size)
	figs := []figure{
		{key: "spine_issue_" + sfx, label: "First start with " + label + " hostnames seeded: until the last one answers HTTPS (all certificates issued)", unit: "s", spine: true},
		{key: "spine_start_" + sfx, label: "Restart with " + label + " hostnames (certificates in the store): until the first answers HTTPS", unit: "s", spine: true},
		{key: "spine_cold_wait_" + sfx, label: "Right after that restart, a hostname whose certificate is not yet in memory: wait until its handshake succeeds", unit: "ms", spine: true},
		{key: "spine_cold_hs_" + sfx, label: "… and the latency of that first successful handshake (dial + handshake)", unit: "ms", spine: true},
		{key: "spine_rss_" + sfx, label: "Resident memory after the restart, every hostname answering", unit: "MiB", spine: true},
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
	log("spine: seeding %d hostnames", size)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if _, err := runLoad(ctx, r.loadCore, filepath.Join(r.bin, "seed"), "-data", data, "-n", sfx, "-domain", r.spineDomain,
		"-upstream", "http://"+r.upstream); err != nil {
		failAll(fmt.Errorf("seeding: %w", err))
		return
	}
	first := "s000000." + r.spineDomain
	last := fmt.Sprintf("s%06d.%s", size-1, r.spineDomain)

	t0 := time.Now()
	n, err := r.startSpineNode(data, "scale-"+sfx+"-first")
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
	n.p.stop()

	for rep := range r.reps {
		t0 := time.Now()
		n, err := r.startSpineNode(data, fmt.Sprintf("scale-%s-r%d", sfx, rep+1))
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
		time.Sleep(2 * time.Second)
		r.res.add(figs[4].key, "spine", rssKB(n.p.pid())/1024)
		log("  spine restart with %d hostnames: first answer %s, cold name waited %.1f ms, handshake %.2f ms",
			size, up.Round(time.Millisecond), cold.WaitedMs, cold.HandshakeMs)
		n.p.stop()
	}
}
