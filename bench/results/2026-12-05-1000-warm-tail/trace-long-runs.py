import sys, re, collections
# reads `go tool trace -d=parsed` on stdin; prints goroutine runs longer than THRESH ms with the stack where they stopped
TH = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
ev = re.compile(r'^M=\S+ P=(\S+) G=(\S+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+) Reason="([^"]*)"')
rng = re.compile(r'^M=\S+ P=\S+ G=(\S+) (RangeBegin|RangeEnd) Time=(\d+) Name="([^"]*)"')
start = {}
pending = None
stack = []
pending_done=[False]
runs = []
gcmark = []
cur_range = {}
t0 = None
def flush():
    global pending, stack
    if pending:
        g, dur, t, to, reason = pending
        runs.append((dur, g, t, to, reason, [x for x in stack if not x.startswith('runtime.')][:8] or stack[:3]))
    pending = None; stack = []
for line in sys.stdin:
    if not line.startswith('M='):
        if pending is not None and ' @ 0x' in line and not pending_done[0]:
            f = line.strip().split(' @ ')[0]
            if not f.startswith('runtime.') or not stack:
                stack.append(f)
        if line.startswith('Stack=') and pending is not None:
            pending_done[0] = True
        continue
    if pending is not None:
        flush()
    m = ev.match(line)
    if m:
        p, gg, t, goid, frm, to, reason = m.groups()
        t = int(t)
        if t0 is None: t0 = t
        if to == 'Running':
            start[goid] = t
        elif frm == 'Running' and goid in start:
            d = (t - start.pop(goid)) / 1e6
            if d >= TH:
                pending = (goid, d, (t - t0)/1e9, to, reason)
                stack = []; pending_done[0] = False
        continue
    m = rng.match(line)
    if m:
        g, kind, t, name = m.groups()
        t = int(t)
        if kind == 'RangeBegin': cur_range[name] = t
        elif name in cur_range:
            gcmark.append((name, (cur_range[name]-(t0 or 0))/1e9, (t-cur_range.pop(name))/1e6))
flush()
runs.sort(key=lambda r: -r[0])
print("runs >= %.1f ms: %d" % (TH, len(runs)))
agg = collections.Counter(); aggn = collections.Counter()
for dur, g, t, to, reason, st in runs:
    key = st[0] if st else '?'
    agg[key] += dur; aggn[key] += 1
for k, v in agg.most_common(25):
    print("%8.1f ms %4d  %s" % (v, aggn[k], k))
print()
for dur, g, t, to, reason, st in runs[:40]:
    print("%.1f ms G%s at %.2fs ->%s %s" % (dur, g, t, to, reason)); print("   " + " | ".join(st[:6]))
print()
print("ranges:", collections.Counter(n for n,_,_ in gcmark))
for n, t, d in sorted(gcmark, key=lambda x: -x[2])[:15]:
    print("%s at %.2fs: %.1f ms" % (n, t, d))
