#!/usr/bin/env python3
"""coldslow.py RUN: the idle figure's slow cold handshakes (bench/scale's cold_idle_slow) beside the
node's collections (gctrace) that overlap them. RUN is e.g. warm-c1000-postgres-2."""
import json, re, sys
run = sys.argv[1]
r = json.loads(open(run + '.jsonl').read().splitlines()[-1])
slow = r.get('cold_idle_slow') or []
print(run, 'idle p50/p99', r.get('cold_idle_p50_p99_ms'), 'slow', len(slow))
gcs = []
for line in open(run + '.node.log'):
    m = re.match(r'gc (\d+) @([\d.]+)s \d+%: [\d.]+\+([\d.]+)\+', line)
    if m:
        gcs.append((int(m.group(1)), float(m.group(2)), float(m.group(3)) / 1000, '(forced)' in line))
if not slow:
    sys.exit()
lo, hi = slow[0][0] - 2, slow[-1][0] + 2
for n, at, mark, forced in gcs:
    if at + mark >= lo and at <= hi:
        print(f'  gc {n} {"forced " if forced else ""}mark {at:.3f}-{at + mark:.3f} s')
inmark = 0
for began, ms in slow:
    g = [n for n, at, mark, _ in gcs if at <= began <= at + mark]
    inmark += bool(g)
    print(f'  {began:8.3f} s  {ms:6.1f} ms  {"during gc %d" % g[0] if g else ""}')
print(f'  {inmark} of {len(slow)} begun during a mark phase')
