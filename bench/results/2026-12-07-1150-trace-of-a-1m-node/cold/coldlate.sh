#!/bin/bash
# coldlate.sh LABEL BIN STORE [R] (OFF=offset of the cold names, 1 if unset): a 1M node (GOMAXPROCS=1, core 0), its cache filled with 10,000 names once
# its first sync is applied, then 90 s later (the start's key check and the snapshot's write done) 3,000 cold handshakes one at a time (core 1),
# as liveheap.sh's COLD phase; PostgreSQL's processes on core 1.
L=$1; BIN=$2; ST=$3; O=/work/res/cold/late-$L-$ST-${4:-1}
DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_1000000"
pkill -f "serve --data"; sleep 1
EXTRA=""; [ $ST = postgres ] && EXTRA="--store $DSN"
[ $ST = postgres ] && for p in $(pgrep -x postgres); do taskset -a -p -c 1 $p > /dev/null 2>&1; done
GOMAXPROCS=1 taskset -c 0 $BIN/spine serve --data /work/scale/$ST-1000000 $EXTRA --https-addr 127.0.0.1:18443 \
  --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test > $O.node.log 2>&1 &
P=$!
until grep -q "first sync applied" $O.node.log 2>/dev/null; do sleep 0.2; done
taskset -c 1 $BIN/handshakes -n 10000 -total 1000000 > $O.fill 2>&1
sleep 90


taskset -c 1 $BIN/handshakes -n 3000 -total 1000000 -offset ${OFF:-1} -parallel 1 -latency > $O.cold 2>&1

kill -TERM $P; wait $P
[ $ST = postgres ] && for p in $(pgrep -x postgres); do taskset -a -p -c 0,1 $p > /dev/null 2>&1; done
cat $O.cold
