#!/bin/bash
# series.sh: the final build (/tmp/bf, 9688b59) with the certificate cache full: FILL=10000 names, then
# COLD=3000 handshakes one at a time for names not in memory (bench/scale/liveheap.sh), PostgreSQL
# (its processes on core 1) and SQLite, two rounds
cd /work/res/cold
DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_1000000"
for r in 1 2; do
  DB_CORE=1 FILL=10000 FILL_TOTAL=1000000 COLD=3000 bash /work/main/bench/scale/liveheap.sh /tmp/bf/spine /work/scale/postgres-1000000 /work/res/cold/postgres-$r "$DSN"
  FILL=10000 FILL_TOTAL=1000000 COLD=3000 bash /work/main/bench/scale/liveheap.sh /tmp/bf/spine /work/scale/sqlite-1000000 /work/res/cold/sqlite-$r
done
