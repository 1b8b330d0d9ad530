#!/bin/bash
# fillprof.sh BIN DATADIR OUT: the node as in mark.sh; a CPU profile of the node over the first
# 12 s of its 10,000-name fill (the phase whose p99 was 10-13 ms in every trace.sh run).
set -u
BIN=$1; DIR=$2; OUT=$3
: > $OUT.node.log; pkill -f "serve --data" ; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
GOMAXPROCS=1 taskset -c 0 $BIN/spine serve --data $DIR --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test >> $OUT.node.log 2>&1 &
PID=$!
for i in $(seq 1 600); do grep -q "first sync applied" $OUT.node.log && break; sleep 0.5; done
H="Authorization: Bearer $(cat $DIR/admin.token)"
sleep 40
curl -s -H "$H" "http://127.0.0.1:18081/debug/pprof/profile?seconds=12" -o $OUT.cpu.pb.gz &
CURL=$!
sleep 0.3
taskset -c 1 $BIN/handshakes -n 10000 -total 1000000 -parallel 1 -latency > $OUT.fill 2>&1
wait $CURL
kill $PID; wait $PID 2>/dev/null
cat $OUT.fill
