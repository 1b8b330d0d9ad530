import sys, re, collections, datetime
# diag.py NODELOG: a node log of the diag.patch build. Joins its "DIAG hs" lines (a server-side
# handshake over 2 ms) and "DIAG lookup" lines (a warm-up look-up over 1 ms: tot, and when each of
# its four reads ended: svc, dom, up, cert) by host, over the warm-up (from "spine is serving" to
# "first sync applied"): for the handshakes of 5 ms and more, whether the look-up took half or more.
kv = re.compile(r'(\w+)=("[^"]*"|\S+)')
hs, lk, start, end = {}, {}, None, None
def at(line):
    ts = line.split()[0].split('=')[1]
    return datetime.datetime.fromisoformat(ts.replace('Z', '+00:00')).timestamp() * 1e6
for line in open(sys.argv[1]):
    if 'spine is serving' in line: start = at(line)
    if 'first sync applied' in line: end = at(line)
    if 'DIAG' not in line: continue
    d = {k: v.strip('"') for k, v in kv.findall(line)}
    (hs if 'DIAG hs' in line else lk)[d['host']] = d
warm = [h for h in hs.values() if start <= int(h['t']) < end]
print('warm-up %.1f s: %d handshakes over 2 ms (%d after it), %d look-ups over 1 ms' % ((end - start) / 1e6, len(warm), len(hs) - len(warm), len(lk)))
for thr in (5000, 7000):
    c, rest = collections.Counter(), []
    for h in warm:
        tot = int(h['tot'])
        if tot < thr: continue
        l = lk.get(h['host']); lt = int(l['tot']) if l else 0
        c['look-up >= half' if 2 * lt >= tot else 'the rest > half'] += 1
        if l: c['slowest read ' + max(('svc', 'dom', 'up', 'cert'), key=lambda k: int(l[k]))] += 1
        rest.append(tot - lt)
    rest.sort()
    print('handshakes >= %d us: %d' % (thr, sum(1 for h in warm if int(h['tot']) >= thr)), dict(c), 'the rest: p50 %d us' % rest[len(rest) // 2])
