#!/bin/bash
# trace.sh BIN DATADIR OUT: mark.sh's steps without the forced collections, with a runtime trace
# of the node over its 6,000 cold handshakes (the first 12 s of them).
set -u
BIN=$1; DIR=$2; OUT=$3
: > $OUT.node.log; pkill -f "serve --data" ; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
GOMAXPROCS=1 taskset -c 0 $BIN/spine serve --data $DIR --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test >> $OUT.node.log 2>&1 &
PID=$!
for i in $(seq 1 600); do grep -q "first sync applied" $OUT.node.log && break; sleep 0.5; done
H="Authorization: Bearer $(cat $DIR/admin.token)"
sleep 40
taskset -c 1 $BIN/handshakes -n 10000 -total 1000000 -parallel 1 -latency > $OUT.fill 2>&1
sleep 10
curl -s -H "$H" "http://127.0.0.1:18081/debug/pprof/trace?seconds=12" -o $OUT.trace &
CURL=$!
sleep 0.5
taskset -c 1 $BIN/handshakes -n 6000 -total 1000000 -offset 1 -parallel 1 -latency > $OUT.cold 2>&1
wait $CURL; sleep 1
kill $PID; wait $PID 2>/dev/null
cat $OUT.fill $OUT.cold; ls -la $OUT.trace
