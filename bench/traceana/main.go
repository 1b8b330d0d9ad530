// traceana reads a Go execution trace (a node's /debug/pprof/trace) and
// reports how long goroutines waited to run once runnable: a histogram of
// the waits of 1 ms and more, the collector's mark phases, and, over the
// waits of at least -min, which goroutines ran meanwhile, by the stack at
// which each stopped (HOG lines; overlapping waits count a run once per
// wait), then the first 30 such waits one by one. -full shows the stacks'
// Spine frames only, after the first.
//
// A node's handshakes from the store during its warm-up waited on the one
// processor behind what these lines name (BENCHMARKS.md, "What held the
// processor during the warm-up"). It is a module of its own so that the
// trace parser (golang.org/x/exp/trace) is not a dependency of Spine:
//
//	cd bench/traceana && go run . -min 4ms /path/to/trace.out
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

type seg struct {
	g          trace.GoID
	start, end trace.Time
	what       string
}

var full = flag.Bool("full", false, "whole stacks")

func frames(s trace.Stack, n int) string {
	var out []string
	if *full {
		n = 0
	}
	for f := range s.Frames() {
		if *full && !strings.Contains(f.Func, "spine") && len(out) > 0 && !strings.Contains(out[len(out)-1], "...") {
			out = append(out, "...")
			continue
		}
		if *full && !strings.Contains(f.Func, "spine") && len(out) > 0 {
			continue
		}
		fn := f.Func
		if i := strings.LastIndex(fn, "/"); i >= 0 {
			fn = fn[i+1:]
		}
		out = append(out, fn)
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, " < ")
}

func main() {
	thr := flag.Duration("min", 4*time.Millisecond, "wait threshold")
	flag.Parse()
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	r, err := trace.NewReader(f)
	if err != nil {
		log.Fatal(err)
	}
	runnable := map[trace.GoID]trace.Time{}
	runStart := map[trace.GoID]trace.Time{}
	what := map[trace.GoID]string{}
	var segs []seg
	type wait struct {
		g          trace.GoID
		start, end trace.Time
		stack      string
	}
	var waits []wait
	var gcMark [][2]trace.Time
	var ranges []string // the runtime's ranges (GC phases, assists, stops), as they begin and end
	var markStart trace.Time
	var first, last trace.Time
	hist := map[int]int{}
	rangeNames := map[string]int{}
	blocked := map[trace.GoID]string{}
	total := 0
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		switch ev.Kind() {
		case trace.EventRangeBegin:
			rangeNames[ev.Range().Name]++
			ranges = append(ranges, fmt.Sprintf("%s begins at %.3f s", ev.Range().Name, time.Duration(ev.Time()-first).Seconds()))
			if strings.HasPrefix(ev.Range().Name, "GC concurrent mark") {
				markStart = ev.Time()
			}
		case trace.EventRangeEnd:
			ranges = append(ranges, fmt.Sprintf("%s ends at %.3f s", ev.Range().Name, time.Duration(ev.Time()-first).Seconds()))
			if strings.HasPrefix(ev.Range().Name, "GC concurrent mark") {
				gcMark = append(gcMark, [2]trace.Time{markStart, ev.Time()})
				markStart = 0
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			if st.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			g := st.Resource.Goroutine()
			from, to := st.Goroutine()
			if to == trace.GoRunnable {
				runnable[g] = ev.Time()
			}
			if to == trace.GoRunning {
				s := blocked[g]
				runStart[g] = ev.Time()
				if t, ok := runnable[g]; ok {
					d := time.Duration(ev.Time() - t)
					total++
					hist[int(d/time.Millisecond)]++
					if d >= *thr {
						waits = append(waits, wait{g, t, ev.Time(), s})
					}
					delete(runnable, g)
				}
			}
			if from == trace.GoRunning && to != trace.GoRunning {
				fs := frames(st.Stack, 6)
				if fs == "" {
					fs = "(no stack) " + what[g]
				}
				blocked[g] = fs
				if t, ok := runStart[g]; ok {
					segs = append(segs, seg{g, t, ev.Time(), to.String() + ": " + fs})
					delete(runStart, g)
				}
			}
			if to == trace.GoRunnable || to == trace.GoRunning {
				if fs := frames(st.Stack, 6); fs != "" {
					what[g] = fs
				}
			}
		}
	}
	if markStart != 0 { // a mark phase the trace ends in
		gcMark = append(gcMark, [2]trace.Time{markStart, last})
	}
	fmt.Printf("trace %.2f s, %d runnable->running, %d waits >= %v, %d GC mark phases\n",
		time.Duration(last-first).Seconds(), total, len(waits), *thr, len(gcMark))
	var ks []int
	for k := range hist {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	for _, k := range ks {
		if k >= 1 {
			fmt.Printf("  wait %d ms: %d\n", k, hist[k])
		}
	}
	var markTotal time.Duration
	for _, m := range gcMark {
		markTotal += time.Duration(m[1] - m[0])
	}
	fmt.Printf("GC mark total %v; ranges %v\n", markTotal, rangeNames)
	for _, r := range ranges {
		fmt.Println("  " + r)
	}
	// Who held the processor: total running time by stack, over waits.
	hog := map[string]time.Duration{}
	for _, w := range waits {
		ran(segs, w.start, w.end, hog)
	}
	for _, x := range top(hog, 15) {
		fmt.Printf("HOG %v: %s\n", x.v, x.k)
	}
	for i, m := range gcMark {
		if i < 40 {
			fmt.Printf("  mark at %.3f s: %v\n", time.Duration(m[0]-first).Seconds(), time.Duration(m[1]-m[0]))
		}
	}
	for i, w := range waits {
		if i >= 30 {
			break
		}
		inMark := false
		for _, m := range gcMark {
			if w.start < m[1] && w.end > m[0] {
				inMark = true
			}
		}
		fmt.Printf("\nwait %v at %.3f s (g%d %s) in GC mark: %v\n", time.Duration(w.end-w.start), time.Duration(w.start-first).Seconds(), w.g, w.stack, inMark)
		agg := map[string]time.Duration{}
		ran(segs, w.start, w.end, agg)
		for _, x := range top(agg, 5) {
			fmt.Printf("   ran %v: %s\n", x.v, x.k)
		}
	}
}

// ran adds to by, per stack, how long the segments ran between start and
// end.
func ran(segs []seg, start, end trace.Time, by map[string]time.Duration) {
	for _, s := range segs {
		if s.end <= start || s.start >= end {
			continue
		}
		by[s.what] += time.Duration(min(s.end, end) - max(s.start, start))
	}
}

type kv struct {
	k string
	v time.Duration
}

// top returns the n longest of by, longest first.
func top(by map[string]time.Duration, n int) []kv {
	var out []kv
	for k, v := range by {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].v > out[j].v })
	return out[:min(n, len(out))]
}
