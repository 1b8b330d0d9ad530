#!/usr/bin/env python3
"""ana.py RUN...: each run's forced collections (idle and with the cache full: median mark CPU,
assist+background+idle, and live heap) and the collections during the cold handshakes (count,
median mark wall and CPU), beside the cold handshakes' latency line."""
import re, statistics, sys
for run in sys.argv[1:]:
    phase, by = None, {}
    for line in open(run + '.node.log'):
        if line.startswith('--- '):
            phase = line[4:].strip()
            continue
        m = re.match(r'gc \d+ @[\d.]+s \d+%: [\d.]+\+([\d.]+)\+[\d.]+ ms clock, [\d.]+\+([\d.]+)/([\d.]+)/([\d.]+)\+[\d.]+ ms cpu, \d+->\d+->(\d+) MB', line)
        if m and phase and (phase == 'cold' or '(forced)' in line):
            wall, a, b, i, live = map(float, m.groups())
            by.setdefault(phase, []).append((wall, a + b + i, live))
    out = [run]
    for p in ('forced idle', 'forced full'):
        g = by.get(p, [])
        if g:
            g = g[:5]
            out.append(f'{p}: mark {statistics.median(x[1] for x in g):.0f} ms cpu (n={len(g)}, live {g[-1][2]:.0f} MB)')
    g = by.get('cold', [])
    if g:
        out.append(f'cold: {len(g)} gcs, mark wall {statistics.median(x[0] for x in g):.0f} ms, cpu {statistics.median(x[1] for x in g):.0f} ms')
    print('; '.join(out))
    try:
        print('   ', open(run + '.cold').read().strip().splitlines()[-1])
    except OSError:
        pass
