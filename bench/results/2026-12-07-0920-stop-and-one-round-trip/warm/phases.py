import re, sys, datetime, gzip
# phases.py NODELOG.gz: the diag.patch build's slow handshakes by phase of the first sync (the phases'
# durations from its "first sync applied" line, counted back from that line's time).
kv = re.compile(r'(\w+)=("[^"]*"|\S+)')
def at(line):
    ts = line.split()[0].split('=')[1]
    return datetime.datetime.fromisoformat(ts.replace('Z', '+00:00')).timestamp() * 1e6
hs, lk, ph, start, end = {}, {}, {}, None, None
names = ('read', 'compute', 'certificates', 'routes', 'record')
for line in gzip.open(sys.argv[1], 'rt'):
    if 'spine is serving' in line: start = at(line)
    if 'first sync applied' in line:
        end = at(line)
        for k in names:
            m = re.search(r'phases\.%s=([0-9.]+)(ms|s)\b' % k, line)
            ph[k] = float(m.group(1)) * (1e3 if m.group(2) == 'ms' else 1e6)
    if 'DIAG' not in line: continue
    d = {k: v.strip('"') for k, v in kv.findall(line)}
    (hs if 'DIAG hs' in line else lk)[d['host']] = d
t = end - sum(ph.values())
print('the sync began %.2f s after the node served' % ((t - start) / 1e6))
for k in names:
    a, b = t, t + ph[k]; t = b
    slow = [h for h in hs.values() if a <= int(h['t']) < b and int(h['tot']) >= 5000]
    half = sum(1 for h in slow if h['host'] in lk and 2 * int(lk[h['host']]['tot']) >= int(h['tot']))
    print('%-12s %5.2f s: %3d handshakes of 5 ms or more (%4.1f a second), the look-up half or more in %3d' % (k, (b - a) / 1e6, len(slow), len(slow) / ((b - a) / 1e6), half))
