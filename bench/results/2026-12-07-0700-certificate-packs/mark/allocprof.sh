#!/bin/bash
# allocprof.sh BIN DATADIR OUT [DSN]: mark.sh's steps without the forced collections; the node's
# allocation profile (allocs) taken right before and right after the 6,000 cold handshakes, so that
# `go tool pprof -diff_base OUT.before OUT.after` shows what they allocated; and a CPU profile of
# the first 9 s of them.
set -u
BIN=$1; DIR=$2; OUT=$3; DSN=${4:-}; extra=""; [ -n "$DSN" ] && extra="--store $DSN"
: > $OUT.node.log; pkill -f "serve --data" ; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
GOMAXPROCS=1 GODEBUG=gctrace=1 taskset -c 0 $BIN/spine serve --data $DIR --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test $extra >> $OUT.node.log 2>&1 &
PID=$!
for i in $(seq 1 600); do grep -q "first sync applied" $OUT.node.log && break; sleep 0.5; done
H="Authorization: Bearer $(cat $DIR/admin.token)"
sleep 40
taskset -c 1 $BIN/handshakes -n 10000 -total 1000000 -parallel 1 -latency > $OUT.fill 2>&1
sleep 10
curl -s -H "$H" "http://127.0.0.1:18081/debug/pprof/allocs" -o $OUT.before.pb.gz
echo "--- cold" >> $OUT.node.log
curl -s -H "$H" "http://127.0.0.1:18081/debug/pprof/profile?seconds=9" -o $OUT.cpu.pb.gz &
CURL=$!
taskset -c 1 $BIN/handshakes -n 6000 -total 1000000 -offset 1 -parallel 1 -latency > $OUT.cold 2>&1
curl -s -H "$H" "http://127.0.0.1:18081/debug/pprof/allocs" -o $OUT.after.pb.gz
echo "--- end" >> $OUT.node.log
wait $CURL
kill $PID; wait $PID 2>/dev/null
cat $OUT.fill $OUT.cold
