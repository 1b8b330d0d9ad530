# tr6.py T.txt GOID MIN_NS: the handshake goroutines alive during each run of GOID of at least
# MIN_NS (a release's debug.FreeOSMemory: did a handshake wait for it?)
import re, sys
pat = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+) Reason="([^"]*)"')
goid, mn = int(sys.argv[2]), int(sys.argv[3])
lines = open(sys.argv[1]).read().split('\n')
hs = {}; pending = None; runs = []; start = None; t_first = None
for line in lines:
    if pending is not None and not line.startswith('M='):
        if 'acceptLoop' in line:
            hs[pending[1]] = [pending[0], None]; pending = None
        continue
    pending = None
    m = pat.match(line)
    if not m: continue
    t = int(m.group(4)); g = int(m.group(5)); a, b = m.group(6), m.group(7)
    if t_first is None: t_first = t
    if a == 'NotExist' and b == 'Runnable': pending = (t, g); continue
    if g in hs and b == 'NotExist': hs[g][1] = t
    if g == goid:
        if b == 'Running': start = t
        elif a == 'Running' and start is not None:
            if t - start >= mn: runs.append((start, t))
            start = None
for s, e in runs:
    alive = [g for g, (c, d) in hs.items() if c < e and (d is None or d > s)]
    last = max((c for c, d in hs.values() if c < s), default=None)
    print("run %.1f ms at %.3f s of the trace: %d handshakes alive during it; the last one before it began %.1f ms earlier"
          % ((e - s) / 1e6, (s - t_first) / 1e9, len(alive), (s - last) / 1e6 if last else -1))
