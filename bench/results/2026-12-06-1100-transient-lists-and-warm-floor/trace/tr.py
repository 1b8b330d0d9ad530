import re, sys, collections
f = open(sys.argv[1])
run_start = {}
long = []
stacks = {}
cur_ev = None
pat = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) (\w+) Time=(\d+)(.*)$')
tr = re.compile(r'GoID=(\d+) (\w+)->(\w+)')
last_g_event = None
total = collections.Counter()
want_stack_for = None
for line in f:
    if line.startswith('M='):
        m = pat.match(line)
        if not m: continue
        g = int(m.group(3)); kind = m.group(4); t = int(m.group(5)); rest = m.group(6)
        want_stack_for = None
        if kind == 'StateTransition':
            x = tr.search(rest)
            if not x: continue
            gid, a, b = int(x.group(1)), x.group(2), x.group(3)
            if b == 'Running':
                run_start[gid] = t
            elif a == 'Running' and gid in run_start:
                d = t - run_start.pop(gid)
                total[gid] += d
                if d >= 1_000_000:
                    long.append((d, gid, run_start.get(gid), t))
            if gid not in stacks:
                want_stack_for = gid
        continue
    if want_stack_for is not None and line.startswith('\t') and not line.startswith('\t\t'):
        fn = line.strip().split(' @')[0]
        stacks.setdefault(want_stack_for, [])
        if len(stacks[want_stack_for]) < 6:
            stacks[want_stack_for].append(fn)
long.sort(reverse=True)
print("runs >= 1ms:", len(long))
by = collections.Counter()
for d, gid, _, _ in long: by[gid] += 1
for gid, c in by.most_common(15):
    ds = sorted([d for d, g, _, _ in long if g == gid], reverse=True)
    print(gid, c, "max %.1f ms" % (ds[0]/1e6), "total run %.0f ms" % (total[gid]/1e6), stacks.get(gid, [])[:6])
print("top total run:")
for gid, d in total.most_common(8):
    print(gid, "%.0f ms" % (d/1e6), stacks.get(gid, [])[:5])
