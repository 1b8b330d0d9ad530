#!/bin/bash
# prof.sh BIN DATADIR OUT: node at 1M (GOMAXPROCS=1, core 0, gctrace), first sync, fill 10,000,
# heap in use (after a forced collection), then an allocation profile delta over 5,000 cold
# handshakes one at a time (the cache full), with their latency.
set -u
BIN=$1; DIR=$2; OUT=$3; DSN=${4:-}; extra=""; [ -n "$DSN" ] && extra="--store $DSN"
pkill -f "serve --data" ; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
GOMAXPROCS=1 GODEBUG=gctrace=1 taskset -c 0 $BIN/spine serve --data $DIR --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test $extra > $OUT.node.log 2>&1 &
PID=$!
for i in $(seq 1 600); do grep -q "first sync applied" $OUT.node.log && break; sleep 0.5; done
TOK=$(cat $DIR/admin.token)
H="Authorization: Bearer $TOK"
sleep 5
taskset -c 1 $BIN/handshakes -n 10000 -total 1000000 -parallel 1 -latency > $OUT.fill 2>&1
sleep 15
curl -s -H "$H" "http://127.0.0.1:18081/debug/pprof/heap?gc=1" -o $OUT.inuse.pb.gz
echo "--- cold" >> $OUT.node.log
curl -s -H "$H" "http://127.0.0.1:18081/debug/pprof/heap" -o $OUT.alloc0.pb.gz
taskset -c 1 $BIN/handshakes -n 5000 -total 1000000 -offset 1 -parallel 1 -latency > $OUT.cold 2>&1
curl -s -H "$H" "http://127.0.0.1:18081/debug/pprof/heap" -o $OUT.alloc1.pb.gz
echo "--- end" >> $OUT.node.log
kill $PID; wait $PID 2>/dev/null
cat $OUT.fill $OUT.cold
