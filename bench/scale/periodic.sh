#!/bin/bash
# periodic.sh BIN DATADIR OUT SECONDS [DSN]: starts `spine serve` on a seeded store (bench/seed) with GOMAXPROCS=1
# on core 0 and --resync-interval 10s (so the periodic check of every service, a read of every service
# before this change, comes every 100 s), waits for "first sync applied", then samples VmRSS every second for
# SECONDS (OUT.rss) and prints the checks the debug log records and the highest RSS. Nothing else should
# run meanwhile; pass DSN for a PostgreSQL seed. BENCHMARKS.md, "The periodic check of the store", has its figures.
set -u
BIN=$1; DIR=$2; OUT=$3; SECS=$4; DSN=${5:-}
extra=""; [ -n "$DSN" ] && extra="--store $DSN"
pkill -f "serve --data" ; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
GOMAXPROCS=1 taskset -c 0 $BIN serve --data $DIR --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test --resync-interval 10s --log-level debug $extra > $OUT.node.log 2>&1 &
PID=$!
for i in $(seq 1 600); do grep -q "first sync applied" $OUT.node.log && break; sleep 0.5; done
: > $OUT.rss
for i in $(seq 1 $SECS); do echo "$i $(grep VmRSS /proc/$PID/status | awk '{print $2}')" >> $OUT.rss; sleep 1; done
grep VmHWM /proc/$PID/status > $OUT.hwm
kill $PID; wait $PID 2>/dev/null
grep -E "checked every service|full sync|sync applied|read every" $OUT.node.log | grep -v "^$" | cut -c1-220 | head -20
awk 'NR>60 {if ($2>m) m=$2} END {print "max RSS after 60 s: " m " kB"}' $OUT.rss
awk '{if ($2>m) m=$2} END {print "max RSS: " m " kB"}' $OUT.rss
tail -1 $OUT.rss
