# tr5.py T.txt: for the handshakes over 5 ms, how much of their network waits the node's
# processor was busy with other goroutines (a wake-up the scheduler's network poll may have
# found late) or idle (the client's or the kernel's time), and who was running.
import re, sys, collections, bisect
pat = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+) Reason="([^"]*)"')
lines = open(sys.argv[1]).read().split('\n')
hs = {}; pending = None
occ = []; running = None; since = None
waits = collections.defaultdict(list)  # gid -> [(a,b)]
wstart = {}
for line in lines:
    if pending is not None and not line.startswith('M='):
        if 'acceptLoop' in line:
            hs[pending[1]] = {'t0': pending[0]}
            pending = None
        continue
    pending = None
    m = pat.match(line)
    if not m: continue
    t = int(m.group(4)); gid = int(m.group(5)); a, b, reason = m.group(6), m.group(7), m.group(8)
    if a == 'NotExist' and b == 'Runnable':
        pending = (t, gid); continue
    if b == 'Running':
        running, since = gid, t
    elif a == 'Running' and running == gid:
        occ.append((since, t, gid)); running = None
    if gid in hs:
        if b == 'Waiting' and reason == 'network': wstart[gid] = t
        elif a == 'Waiting' and gid in wstart: waits[gid].append((wstart.pop(gid), t))
        if b == 'NotExist': hs[gid]['end'] = t
slow = [g for g, h in hs.items() if 'end' in h and h['end'] - h['t0'] > 5e6]
starts = [o[0] for o in occ]
busy = idle = 0; who = collections.Counter(); late = collections.Counter()
for g in slow:
    for (a, b) in waits[g]:
        j = max(0, bisect.bisect_right(starts, a) - 1); used = 0
        while j < len(occ) and occ[j][0] < b:
            s, e, o = occ[j]; ov = min(e, b) - max(s, a)
            if ov > 0:
                used += ov; who['handshake' if o in hs else str(o)] += ov
            j += 1
        busy += used; idle += (b - a) - used
        # the run that ended last before the wake-up, if within 20 us of it
        k = bisect.bisect_right(starts, b) - 1
        while k >= 0 and occ[k][1] > b: k -= 1
        if k >= 0 and b - occ[k][1] < 20000 and occ[k][1] - occ[k][0] >= 1e6:
            late['handshake' if occ[k][2] in hs else str(occ[k][2])] += 1
n = len(slow)
print(n, "handshakes over 5 ms; their network waits: %.2f ms avg with the processor busy, %.2f ms idle" % (busy/n/1e6, idle/n/1e6))
print("busy with:"); [print("  ", k, "%.0f ms" % (v/1e6)) for k, v in who.most_common(8)]
print("wake-ups right after a run of 1 ms or more, by whose run:"); [print("  ", k, v) for k, v in late.most_common(8)]
