#!/bin/bash
# reseal.sh LABEL BIN R OFFSET: a PostgreSQL 1M node (GOMAXPROCS=1 on core 0; PostgreSQL's processes on core 1
# at nice 10 with the kernel's autogroups off, as bench/scale -db-core 1 -db-nice 10) and, 1 s after its
# first sync is applied (when the start's check of every private key begins), 6,000 cold handshakes one
# at a time (bench/handshakes -parallel 1 -latency, on core 1), while that check runs.
L=$1; BIN=$2; R=$3; OFF=$4; O=/work/res/warm/reseal-$L-$R
DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_1000000"
pkill -f "serve --data"; sleep 1
AG=$(cat /proc/sys/kernel/sched_autogroup_enabled); echo 0 > /proc/sys/kernel/sched_autogroup_enabled
for p in $(pgrep -x postgres); do taskset -a -p -c 1 $p > /dev/null 2>&1; renice -n 10 -p $p > /dev/null 2>&1; done
GOMAXPROCS=1 taskset -c 0 $BIN/spine serve --data /work/scale/postgres-1000000 --store "$DSN" --https-addr 127.0.0.1:18443 \
  --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test > $O.node.log 2>&1 &
P=$!
until grep -q "first sync applied" $O.node.log 2>/dev/null; do sleep 0.2; done
sleep 1
taskset -c 1 /tmp/b/handshakes -addr 127.0.0.1:18443 -n 6000 -offset $OFF -total 1000000 -parallel 1 -latency > $O.txt 2>&1
kill -TERM $P; wait $P
for p in $(pgrep -x postgres); do taskset -a -p -c 0,1 $p > /dev/null 2>&1; renice -n 0 -p $p > /dev/null 2>&1; done
echo $AG > /proc/sys/kernel/sched_autogroup_enabled
echo "$L-$R: $(cat $O.txt | tr '\n' ' ')"
