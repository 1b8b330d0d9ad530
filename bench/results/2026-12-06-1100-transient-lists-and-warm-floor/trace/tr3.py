import re, sys, collections
pat = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+)')
runnable = set()
running = None; run_t = None
blame = collections.Counter(); busy = collections.Counter()
last_t = None
gcmark = False
for line in open(sys.argv[1]):
    if 'GC concurrent mark phase' in line:
        gcmark = 'RangeBegin' in line
        continue
    m = pat.match(line)
    if not m: continue
    t = int(m.group(4)); gid = int(m.group(5)); a, b = m.group(6), m.group(7)
    if last_t is not None and running is not None:
        d = t - last_t
        busy[running] += d
        if runnable - {running}:
            blame[running] += d
            if gcmark: blame['(in mark) ' + str(running)] += d
    last_t = t
    if b == 'Runnable': runnable.add(gid)
    elif gid in runnable: runnable.discard(gid)
    if b == 'Running': running = gid
    elif a == 'Running' and running == gid: running = None
tot = sum(v for k, v in blame.items() if not str(k).startswith('(in'))
print("time someone waited while X ran: total %.0f ms" % (tot/1e6))
for k, v in blame.most_common(14):
    print(k, "%.0f ms" % (v/1e6), "(busy %.0f ms)" % (busy[k]/1e6) if k in busy else "")
