#!/bin/bash
# series.sh: the per-hostname curve's two ends with the index build (/tmp/bi, 9e7629a): liveheap.sh with
# FILL=10000 COLD=2000 at 100k and 1M, SQLite then PostgreSQL (PostgreSQL's processes on core 1)
cd /work/res/curve
for st in sqlite postgres; do
  for n in 100000 1000000; do
    DSN=""; [ $st = postgres ] && DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_$n"
    FILL=10000 FILL_TOTAL=$n COLD=2000 DB_CORE=1 bash /work/main/bench/scale/liveheap.sh /tmp/bi/spine /work/scale/$st-$n /work/res/curve/$st-$n-1 $DSN > /dev/null 2>&1
  done
done
echo SERIESDONE
