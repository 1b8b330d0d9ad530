#!/bin/bash
# stop.sh LABEL BIN: start the node on the 1M SQLite folder (a seed cut short: ~40 % of its names
# without a certificate), wait for its first sync to manage them (50 "certificate obtained" lines),
# send SIGTERM and time its exit (SIGKILL after 120 s).
L=$1; BIN=$2; LOG=/work/res/stop/stop-$L.log
GOMAXPROCS=1 taskset -c 0 $BIN/spine serve --data /work/scale/sqlite-1000000 --https-addr 127.0.0.1:18443 \
  --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test > $LOG 2>&1 &
P=$!
t0=$(date +%s.%N)
until [ "$(grep -c 'certificate obtained' $LOG)" -ge 50 ]; do sleep 0.2; done
t1=$(date +%s.%N)
kill -TERM $P
for i in $(seq 1 1200); do kill -0 $P 2>/dev/null || break; sleep 0.1; done
t2=$(date +%s.%N)
if kill -0 $P 2>/dev/null; then kill -KILL $P; echo "$L: still running 120 s after SIGTERM: killed"; fi
wait $P; rc=$?
echo "$L: managing after $(echo "$t1-$t0" | bc) s; exit $rc $(echo "$t2-$t1" | bc) s after SIGTERM; $(grep -c 'certificate obtained' $LOG) certificates obtained in all"
