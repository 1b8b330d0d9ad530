#!/usr/bin/env python3
"""forced.py RUN...: the forced collections after a run's first-sync Release (its first forced one),
when (seconds after it), their mark phase (ms, wall) and what they freed (MB), from the node's gctrace;
and the idle cold handshakes' window (bench/scale's warm_sec to the last slow one)."""
import json, re, sys
for run in sys.argv[1:]:
    gcs = []
    for l in open(run + '.node.log'):
        m = re.match(r'gc (\d+) @([\d.]+)s .*?: [\d.]+\+([\d.]+)\+.*?(\d+)->(\d+)->(\d+) MB.*?(\(forced\))?$', l.strip())
        if m:
            gcs.append((float(m.group(2)), float(m.group(3)), int(m.group(4)) - int(m.group(6)), bool(m.group(7))))
    forced = [g for g in gcs if g[3]]
    r = json.loads(open(run + '.jsonl').read().splitlines()[-1])
    slow = r.get('cold_idle_slow') or []
    end = max([a for a, _ in slow] + [r['warm_sec']])
    if not forced:
        print(run, 'no forced collection')
        continue
    t = forced[0][0]
    print('%-28s release @%.1f s; forced after it: %s; idle window %.1f-%.1f s' % (run.split('/')[-1], t,
          ', '.join('+%.0f s %.0f ms freed %d MB' % (g[0] - t, g[1], g[2]) for g in forced[1:]), r['warm_sec'], end))
