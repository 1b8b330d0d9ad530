#!/bin/bash
# scrape.sh BIN DATADIR OUT: starts `spine serve` on a seeded store (bench/seed) with GOMAXPROCS=1 on
# core 0, waits for "first sync applied", then 30 s, and scrapes GET /metrics twice, 20 s apart: the
# time of each scrape, its size and certificate series, and VmRSS/VmHWM before, after each and 20 s
# after (OUT.txt; the last page in OUT.metrics). Nothing else should run meanwhile; it stops any
# `spine serve --data` running first. BENCHMARKS.md, "Metrics at a million hostnames", has its figures.
set -u
BIN=$1; DIR=$2; OUT=$3
pkill -f "serve --data" ; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
GOMAXPROCS=1 taskset -c 0 $BIN serve --data $DIR --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test > $OUT.node.log 2>&1 &
PID=$!
for i in $(seq 1 600); do grep -q "first sync applied" $OUT.node.log && break; sleep 0.5; done
sleep 30
echo "before: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')" > $OUT.txt
for i in 1 2; do
  /usr/bin/time -f "scrape $i: %e s" curl -s http://127.0.0.1:18081/metrics -o $OUT.metrics 2>> $OUT.txt
  echo "scrape $i: $(wc -c < $OUT.metrics) bytes, $(grep -c '^spine_certificate' $OUT.metrics) certificate series; $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')" >> $OUT.txt
  sleep 20
done
echo "20 s after: $(grep -E 'VmRSS|VmHWM' /proc/$PID/status | tr -s ' ' | tr '\n' ' ')" >> $OUT.txt
kill $PID; wait $PID 2>/dev/null
cat $OUT.txt
