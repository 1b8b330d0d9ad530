import json, sys, glob
for f in sys.argv[1:]:
    for l in open(f):
        r = json.loads(l); p = r.get('warm_probe') or {}; g = r.get('warm_gc') or {}
        print(f.replace('warm-','').replace('.jsonl','').ljust(22), 'sync %5.1f s' % r.get('first_sync_sec'), 'peak %4.0f' % r['rss_peak_mib'], 'warm %3.0f' % r['rss_warm_mib'], 'settled %3.0f' % r.get('rss_settled_mib', 0),
              'probe N %5d p50 %.2f p99 %.2f p99.9 %.1f over5 %.2f%%' % (p['N'], p['P50'], p['P99'], p['P999'], p['Over5']), 'gc %d/%d %4.0f ms' % (g.get('N',0), g.get('Forced',0), g.get('MarkMs',0)),
              'idle', r.get('cold_idle_p50_p99_ms'), 'create', [round(x) for x in (r.get('create_ms') or [])])
