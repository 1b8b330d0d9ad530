#!/bin/bash
# burst.sh LABEL BIN R: a PostgreSQL 1M node (GOMAXPROCS=1 on core 0; PostgreSQL's processes on core 1
# at nice 10, as bench/scale -db-core 1 -db-nice 10) and, as soon as it serves, 3,000 cold handshakes
# 8 at a time (bench/handshakes -parallel 8 -latency, on core 1) during its warm-up.
L=$1; BIN=$2; R=$3; O=/work/res/warm/burst-$L-$R
DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_1000000"
pkill -f "serve --data"; sleep 1
for p in $(pgrep -x postgres); do taskset -a -p -c 1 $p > /dev/null 2>&1; renice -n 10 -p $p > /dev/null 2>&1; done
GOMAXPROCS=1 taskset -c 0 $BIN/spine serve --data /work/scale/postgres-1000000 --store "$DSN" --https-addr 127.0.0.1:18443 \
  --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test > $O.node.log 2>&1 &
P=$!
until curl -s -o /dev/null http://127.0.0.1:18081/healthz; do sleep 0.05; done
date +%s.%N > $O.t0
taskset -c 1 /tmp/b/handshakes -addr 127.0.0.1:18443 -n 3000 -total 1000000 -parallel 8 -latency > $O.txt 2>&1
date +%s.%N > $O.t1
until grep -q "first sync applied" $O.node.log; do sleep 0.5; done
kill -TERM $P; wait $P
for p in $(pgrep -x postgres); do taskset -a -p -c 0,1 $p > /dev/null 2>&1; renice -n 0 -p $p > /dev/null 2>&1; done
echo "$L-$R: $(cat $O.txt | tr '\n' ' ') burst $(echo "$(cat $O.t1)-$(cat $O.t0)" | bc) s; $(grep -o 'first sync applied.*duration=[0-9.]*s' $O.node.log | grep -o 'duration=.*')"
