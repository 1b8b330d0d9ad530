import re, sys, collections
pat = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+) Reason="([^"]*)"')
lines = open(sys.argv[1]).read().split('\n')
hs = {}  # gid -> [created, state, since, Counter]
pending_create = None
gcmark = False
for i, line in enumerate(lines):
    if line.startswith('M=') and 'GC concurrent mark phase' in line:
        gcmark = 'RangeBegin' in line
    if pending_create is not None and not line.startswith('M='):
        if 'acceptLoop' in line:
            t, gid = pending_create
            hs[gid] = {'t0': t, 'state': 'Runnable', 'since': t, 'acc': collections.Counter(), 'mark': False, 'reason': ''}
            pending_create = None
        continue
    pending_create = None
    m = pat.match(line)
    if not m: continue
    t = int(m.group(4)); gid = int(m.group(5)); a, b, reason = m.group(6), m.group(7), m.group(8)
    if a == 'NotExist' and b == 'Runnable':
        pending_create = (t, gid); continue
    h = hs.get(gid)
    if not h or 'end' in h: continue
    key = h['state'] + ('/' + h['reason'] if h['state'] == 'Waiting' else '')
    h['acc'][key] += t - h['since']
    if gcmark: h['mark'] = True
    h['state'], h['since'], h['reason'] = b, t, reason
    if b == 'NotExist': h['end'] = t
done = [h for h in hs.values() if 'end' in h]
durs = sorted((h['end'] - h['t0']) for h in done)
print(len(done), "handshake goroutines; p50 %.2f p99 %.2f ms" % (durs[len(durs)//2]/1e6, durs[int(len(durs)*0.99)]/1e6))
slow = [h for h in done if h['end'] - h['t0'] > 5e6]
print(len(slow), "over 5 ms;", sum(1 for h in slow if h['mark']), "of them touched a mark phase;", sum(1 for h in done if h['mark']), "of all")
tot = collections.Counter()
for h in slow: tot.update(h['acc'])
for k, v in tot.most_common(10): print("  slow:", k, "%.1f ms avg" % (v/len(slow)/1e6))
tot = collections.Counter()
for h in done: tot.update(h['acc'])
for k, v in tot.most_common(8): print("  all:", k, "%.2f ms avg" % (v/len(done)/1e6))
# second pass: P occupancy timeline
occ = []  # (t0, t1, gid)
running = None; since = None
for line in lines:
    m = pat.match(line)
    if not m: continue
    t = int(m.group(4)); gid = int(m.group(5)); a, b = m.group(6), m.group(7)
    if b == 'Running':
        running, since = gid, t
    elif a == 'Running' and running == gid:
        occ.append((since, t, gid)); running = None
# runnable intervals of slow handshakes: re-walk
slow_ids = set(g for g, h in hs.items() if h in slow)
iv = []
st = {}
for line in lines:
    m = pat.match(line)
    if not m: continue
    t = int(m.group(4)); gid = int(m.group(5)); a, b = m.group(6), m.group(7)
    if gid not in slow_ids: continue
    if b == 'Runnable': st[gid] = t
    elif a == 'Runnable' and gid in st: iv.append((st.pop(gid), t))
import bisect
starts = [o[0] for o in occ]
bl = collections.Counter()
for (a, b) in iv:
    j = max(0, bisect.bisect_right(starts, a) - 1)
    while j < len(occ) and occ[j][0] < b:
        s, e, g = occ[j]
        ov = min(e, b) - max(s, a)
        if ov > 0: bl[g] += ov
        j += 1
hsids = set(hs)
cat = collections.Counter()
for g, v in bl.items():
    cat['handshake' if g in hsids else str(g)] += v
print("who ran while slow handshakes were runnable:")
for k, v in cat.most_common(10): print("  ", k, "%.0f ms" % (v/1e6))
