#!/bin/bash
# coldtracenow.sh (coldnow.sh with a runtime trace of SECS=8 s from the cold phase's start) LABEL BIN STORE [R]: liveheap.sh's FILL=10000 COLD=3000 phases without its 60 s tail: a 1M node
# (GOMAXPROCS=1, core 0), its cache filled with 10,000 names once its first sync is applied, 10 s later 3,000
# cold handshakes one at a time (core 1); PostgreSQL's processes on core 1. Also the node's
# spine_background_held_seconds_total at the end (absent before e7ecca0).
L=$1; BIN=$2; ST=$3; O=/work/res/cold/trace-$L-$ST-${4:-1}
DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_1000000"
pkill -f "serve --data"; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
EXTRA=""; [ $ST = postgres ] && EXTRA="--store $DSN"
[ $ST = postgres ] && for p in $(pgrep -x postgres); do taskset -a -p -c 1 $p > /dev/null 2>&1; done
GOMAXPROCS=1 taskset -c 0 $BIN/spine serve --data /work/scale/$ST-1000000 $EXTRA --https-addr 127.0.0.1:18443 \
  --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test > $O.node.log 2>&1 &
P=$!
until grep -q "first sync applied" $O.node.log 2>/dev/null; do sleep 0.2; done
taskset -c 1 $BIN/handshakes -n 10000 -total 1000000 > $O.fill 2>&1
sleep 10
curl -s -o $O.trace -H "Authorization: Bearer $(cat /work/scale/$ST-1000000/admin.token)" "http://127.0.0.1:18081/debug/pprof/trace?seconds=${SECS:-8}" &
C=$!
sleep 0.3
taskset -c 1 $BIN/handshakes -n 3000 -total 1000000 -offset 1 -parallel 1 -latency > $O.cold 2>&1
wait $C
TOK=$(cat /work/scale/$ST-1000000/admin.token)
curl -s -H "Authorization: Bearer $TOK" http://127.0.0.1:18081/metrics | grep -E "^spine_background_held|^go_gc_duration_seconds_count" >> $O.cold
kill -TERM $P; wait $P
[ $ST = postgres ] && for p in $(pgrep -x postgres); do taskset -a -p -c 0,1 $p > /dev/null 2>&1; done
gzip -f $O.node.log
echo "== $O"; grep -E "p99|p50|over" $O.cold | head -5; tail -2 $O.cold
