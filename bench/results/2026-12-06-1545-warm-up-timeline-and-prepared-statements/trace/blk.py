# blk.py TRACE.txt FROM TO: streaming. For goroutines that are not the sync
# goroutine, the time they spent Waiting / Syscall / Runnable between FROM
# and TO (s after the trace's start), by reason and the first Spine frame of the
# stack at the transition.
import re, sys, collections
pat = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) (\w+) Time=(\d+)(.*)$')
tr = re.compile(r'GoID=(\d+) (\w+)->(\w+) Reason="([^"]*)"')
lo, hi = float(sys.argv[2]) * 1e9, float(sys.argv[3]) * 1e9
t0 = None
state = {}   # gid -> (state, since, key)
acc = collections.Counter()
kind = {}
cur = None; stack = []
syscalls = collections.Counter()
def flush():
    global cur, stack
    if cur is not None:
        gid, b, t, reason = cur
        fn = next((f.split('internal/')[-1] for f in stack if 'spine-platform' in f and 'sched.' not in f), '')
        low = stack[0] if stack else ''
        j = ' '.join(stack)
        if 'firstSyncAsync' in j: kind[gid] = 'SYNC'
        elif ('handshakeListener).handshake' in j or 'Loop).lookup' in j or 'edge.(*Server).handle' in j) and gid not in kind: kind[gid] = 'hs'
        state[gid] = (b, t, '%s %s | %s | %s' % (b, reason, fn[:60], low[:50]))
    cur, stack = None, []
for line in open(sys.argv[1]):
    if line.startswith('M='):
        flush()
        m = pat.match(line)
        if not m or m.group(4) != 'StateTransition': continue
        t = int(m.group(5))
        if t0 is None: t0 = t
        t -= t0
        if t > hi + 1e9: break
        x = tr.search(m.group(6))
        if not x: continue
        gid, a, b, reason = int(x.group(1)), x.group(2), x.group(3), x.group(4)
        if gid in state:
            s, since, key = state[gid]
            a0, b0 = max(since, lo), min(t, hi)
            if b0 > a0 and s != 'Running':
                if kind.get(gid): acc[kind[gid] + ' ' + key] += b0 - a0
        cur = (gid, b, t, reason)
        continue
    if cur is not None and line.startswith('\t') and not line.startswith('\t\t'):
        stack.append(line.strip().split(' @')[0])
flush()
for k, v in acc.most_common(30):
    print('%8.1f ms  %s' % (v / 1e6, k))
