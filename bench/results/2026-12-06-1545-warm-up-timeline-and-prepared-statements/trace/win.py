# win.py TRACE.txt: streaming. Per 250 ms bucket from the trace's start:
# processor time by goroutine kind (sync, handshake, gc, other), and
# for the sync goroutine the Spine functions its runs ended in.
import re, sys, collections
pat = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) (\w+) Time=(\d+)(.*)$')
tr = re.compile(r'GoID=(\d+) (\w+)->(\w+)')
B = 250_000_000
t0 = None
kind = {}            # gid -> kind
run_start = {}
cpu = collections.defaultdict(collections.Counter)   # bucket -> kind -> ns
syncfn = collections.defaultdict(collections.Counter)
want = None; stack = []; pending_create = None; ended = None
def classify(gid, frames):
    s = ' '.join(frames)
    if 'firstSyncAsync' in s or 'syncer.(*Loop).sync' in s: return 'sync'
    if 'acceptLoop' in s or 'serveConn' in s or 'tls.(*Conn)' in s or 'edge.(*Server).handle' in s: return 'hs'
    if 'gcBgMarkWorker' in s: return 'gcw'
    return None
def flush():
    global want, stack, ended
    if want is not None and stack:
        gid = want
        k = classify(gid, stack)
        if k and kind.get(gid) in (None, 'other'): kind[gid] = k
        elif gid not in kind: kind[gid] = 'other'
        if ended is not None and kind.get(gid) == 'sync':
            fn = next((f for f in stack if 'spine' in f and 'sched.' not in f), stack[-1] if stack else '?')
            syncfn[ended // B][fn.split('spine-platform/spine/internal/')[-1][:70]] += 1
    want, stack, ended = None, [], None
for line in open(sys.argv[1]):
    if line.startswith('M='):
        flush()
        m = pat.match(line)
        if not m: continue
        t = int(m.group(5))
        if t0 is None: t0 = t
        t -= t0
        if m.group(4) != 'StateTransition': continue
        x = tr.search(m.group(6))
        if not x: continue
        gid, a, b = int(x.group(1)), x.group(2), x.group(3)
        if b == 'Running':
            run_start[gid] = t
        elif a == 'Running' and gid in run_start:
            s = run_start.pop(gid)
            k = kind.get(gid, 'other')
            # split the run over buckets
            while s < t:
                e = min(t, (s // B + 1) * B)
                cpu[s // B][k] += e - s
                s = e
            if k == 'sync': ended = t
        want = gid
        continue
    if want is not None and line.startswith('\t') and not line.startswith('\t\t'):
        stack.append(line.strip().split(' @')[0])
flush()
for b in sorted(cpu):
    c = cpu[b]
    tot = sum(c.values())
    top = ', '.join('%s %d' % (f, n) for f, n in syncfn[b].most_common(3))
    print('%5.2f s  busy %3.0f%%  sync %3.0f%%  hs %3.0f%%  gcw %3.0f%%  other %3.0f%%  | %s' % (b * B / 1e9, 100 * tot / B,
          100 * c['sync'] / B, 100 * c['hs'] / B, 100 * c['gcw'] / B, 100 * c['other'] / B, top))
