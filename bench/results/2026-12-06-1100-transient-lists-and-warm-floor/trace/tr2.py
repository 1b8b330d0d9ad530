import re, sys
GID = int(sys.argv[2])
pat = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) (\w+) Time=(\d+)(.*)$')
tr = re.compile(r'GoID=(\d+) (\w+)->(\w+)')
lines = open(sys.argv[1]).read().split('\n')
# first pass: long runs
runs = []; start = None
for i, line in enumerate(lines):
    if not line.startswith('M='): continue
    m = pat.match(line)
    if not m or m.group(4) != 'StateTransition': continue
    x = tr.search(m.group(6))
    if not x or int(x.group(1)) != GID: continue
    t = int(m.group(5))
    if x.group(3) == 'Running': start = (t, i)
    elif x.group(2) == 'Running' and start:
        if t - start[0] >= int(sys.argv[3]) if len(sys.argv) > 3 else 3_000_000: runs.append((start[0], t, start[1], i))
        start = None
print(len(runs), "runs >= 3ms")
for (t0, t1, i0, i1) in runs[:12]:
    print("=== run %.1f ms" % ((t1-t0)/1e6))
    # events by G=GID inside, with first stack frames
    shown = 0
    j = i0
    while j <= i1 and shown < 6:
        line = lines[j]
        if line.startswith('M=') and (' G=%d ' % GID) in line:
            kind = pat.match(line).group(4) if pat.match(line) else '?'
            frames = []
            k = j + 1
            while k < len(lines) and not lines[k].startswith('M='):
                if lines[k].startswith('\t') and not lines[k].startswith('\t\t'):
                    frames.append(lines[k].strip().split(' @')[0])
                k += 1
            if frames:
                print(' ', kind, line[line.find('Time='):][:80]); print('    ', ' <- '.join(f.replace('github.com/spine-platform/spine/internal/','') for f in frames[:9]))
                shown += 1
        j += 1
    # the end event's stack
    k = i1 + 1; frames=[]
    while k < len(lines) and not lines[k].startswith('M='):
        if lines[k].startswith('\t') and not lines[k].startswith('\t\t'): frames.append(lines[k].strip().split(' @')[0])
        k += 1
    print('  END:', lines[i1][lines[i1].find('GoID'):][:60]); print('    ', ' <- '.join(f.replace('github.com/spine-platform/spine/internal/','') for f in frames[:16]))
