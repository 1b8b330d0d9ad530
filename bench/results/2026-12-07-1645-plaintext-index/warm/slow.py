import json,sys
for f in sys.argv[1:]:
    for l in open(f):
        d=json.loads(l)
        s=d.get('cold_idle_slow',[]) or []
        print(f.split('warm-')[1].split('.jsonl')[0], 'idle', d['cold_idle_p50_p99_ms'], 'slow', len(s), [(round(a-d['warm_sec'],2),b) for a,b in s][:12])
