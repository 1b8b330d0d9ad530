# timeline.py RUN (warm-LABEL-STORE-R): the probe's slow handshakes per second
# after exec, beside the node's collections (gctrace) and log events.
import json, sys, re, datetime
base = sys.argv[1]
r = json.loads(open(base + '.jsonl').readline())
slow = r['warm_probe'].get('Slow') or []
gcs, events, t_first = [], [], None
for l in open(base + '.node.log'):
    m = re.match(r'gc (\d+) @([\d.]+)s \d+%: [\d.]+\+([\d.]+)\+', l)
    if m:
        gcs.append((float(m.group(2)), float(m.group(3)) / 1000, 'forced' in l)); continue
    m = re.match(r'time=(\S+) level=\w+ msg="([^"]*)"', l)
    if m:
        t = datetime.datetime.fromisoformat(m.group(1).replace('Z', '+00:00')).timestamp()
        if t_first is None: t_first = t - r['first_sec']
        events.append((t - t_first, m.group(2)[:60]))
        if 'first sync applied' in l:
            def secs(v): return float(v[:-2]) / 1000 if v.endswith('ms') else float(v[:-1]) if v.endswith('s') and v[-2].isdigit() else float(v[:-2]) * 60 if v.endswith('m') else 0
            dur = re.search(r'duration=(\S+)', l).group(1)
            d = secs(dur) if not dur.endswith('m0s') else 0
            ph = re.findall(r'phases\.(\w+)=(\S+)', l)
            at = t - t_first - d
            events.append((at, 'sync starts'))
            for name, v in ph:
                at += secs(v)
                events.append((at, name + ' done (' + v + ')'))
print('probe N', r['warm_probe']['N'], 'p99', r['warm_probe']['P99'], 'over5 %.2f%%' % r['warm_probe']['Over5'], 'sync', r['first_sync_sec'])
end = int(max([s[0] for s in slow] + [e[0] for e in events if 'first sync' in e[1]] + [0])) + 2
for sec in range(0, end):
    ss = [d for t, d in slow if sec <= t < sec + 1]
    gc = [g for g in gcs if g[0] < sec + 1 and g[0] + g[1] >= sec]
    ev = [e[1] for e in events if sec <= e[0] < sec + 1]
    if ss or gc or ev:
        print('%4d s  slow %3d  max %6.1f  %s %s' % (sec, len(ss), max(ss) if ss else 0,
              ('GC' + ('f' if any(g[2] for g in gc) else ' ')) if gc else '   ', '; '.join(ev)))
ingc = sum(1 for t, d in slow if any(g[0] - 0.05 <= t <= g[0] + g[1] + 0.05 for g in gcs))
print('slow handshakes: %d, %d of them begun during a collection\'s mark phase (%.1f s of mark in all before the end of the probe), %d outside' % (
      len(slow), ingc, sum(g[1] for g in gcs if g[0] <= max([s[0] for s in slow] + [0])), len(slow) - ingc))
