import re,os,sys
d=sys.argv[1] if len(sys.argv)>1 else '/work/res/curve'
rows={}
print("| store | N | round | first sync | RSS at 60 s | live | in use | cold p50 / p99 / p99.9, over 5 ms | collections in cold |")
print("|---|---|---|---|---|---|---|---|---|")
for st in ['sqlite','postgres']:
  for n in [100000,250000,500000,1000000]:
    for r in [1,2,3]:
      f=f"{d}/{st}-{n}-{r}"
      if not os.path.exists(f+'.mem'): continue
      rss=int(open(f+'.rss').read().split()[1])/1024
      mem=open(f+'.mem').read()
      ha=int(re.search(r'HeapAlloc = (\d+)',mem).group(1))/1e6
      hi=int(re.search(r'HeapInuse = (\d+)',mem).group(1))/1e6
      ms=re.search(r'duration=([0-9.]+)(ms|s)',open(f+'.sync').read())
      sync=float(ms.group(1))/(1000 if ms.group(2)=='ms' else 1)
      c=open(f+'.cold').read()
      m=re.search(r'p50 ([0-9.]+) ms.*p99 ([0-9.]+) ms, p99.9 ([0-9.]+) ms.*over 5 ms: \d+ \(([0-9.]+) %\)',c)
      g=re.search(r'(\d+) collections',c).group(1)
      rows[(st,n,r)]=(rss,ha,hi)
      print(f"| {st} | {n} | {r} | {float(sync):.1f} s | {rss:.0f} MiB | {ha:.1f} MB | {hi:.1f} MB | {m.group(1)} / {m.group(2)} / {m.group(3)} ms, {m.group(4)} % | {g} |")
print()
print("slopes from 100k (same round): RSS, live, in use, bytes a hostname")
for st in ['sqlite','postgres']:
  for r in [1,2,3]:
    b=rows.get((st,100000,r))
    if not b: continue
    for n in [250000,500000,1000000]:
      x=rows.get((st,n,r))
      if not x: continue
      dn=n-100000
      print(f"{st} round {r} 100k->{n}: RSS {(x[0]-b[0])*1048576/dn:.0f} B, live {(x[1]-b[1])*1e6/dn:.0f} B, in use {(x[2]-b[2])*1e6/dn:.0f} B")
