#!/bin/bash
# mark.sh BIN DATADIR OUT [DSN]: the node at 1M (GOMAXPROCS=1, core 0, gctrace); after the first
# sync and 40 s, five forced collections (idle, nothing cached); the cache filled with 10,000
# handshakes (core 1, one at a time), then five forced collections again; then 6,000 cold
# handshakes one at a time (the cache full) with their latency. PREWARM=1: see below.
set -u
BIN=$1; DIR=$2; OUT=$3; DSN=${4:-}; extra=""; [ -n "$DSN" ] && extra="--store $DSN"
: > $OUT.node.log; pkill -f "serve --data" ; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
GOMAXPROCS=1 GODEBUG=gctrace=1 taskset -c 0 $BIN/spine serve --data $DIR --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test $extra >> $OUT.node.log 2>&1 &
PID=$!
for i in $(seq 1 600); do grep -q "first sync applied" $OUT.node.log && break; sleep 0.5; done
H="Authorization: Bearer $(cat $DIR/admin.token)"
forced() { echo "--- forced $1" >> $OUT.node.log; for i in 1 2 3 4 5; do curl -s -H "$H" "http://127.0.0.1:18081/debug/pprof/heap?gc=1" -o /dev/null; sleep 1; done; }
sleep 40
forced idle
taskset -c 1 $BIN/handshakes -n 10000 -total 1000000 -parallel 1 -latency > $OUT.fill 2>&1
sleep 10
forced full
# PREWARM=1: the SQLite store read into the page cache right before (this machine's DAMON reclaim
# pages out what was not read for a minute: a cold handshake's row then comes from the disk).
[ -n "${PREWARM:-}" ] && cat $DIR/spine.db > /dev/null
echo "--- cold" >> $OUT.node.log
taskset -c 1 $BIN/handshakes -n 6000 -total 1000000 -offset 1 -parallel 1 -latency > $OUT.cold 2>&1
echo "--- end" >> $OUT.node.log
kill $PID; wait $PID 2>/dev/null
cat $OUT.fill $OUT.cold
