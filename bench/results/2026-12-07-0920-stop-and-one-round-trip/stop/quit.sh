#!/bin/bash
# quit.sh BIN DELAY: as stop.sh, then SIGQUIT (goroutine dump) DELAY s after SIGTERM
BIN=$1; D=$2; LOG=/work/res/stop/quit.log
GOMAXPROCS=1 taskset -c 0 $BIN/spine serve --data /work/scale/sqlite-1000000 --https-addr 127.0.0.1:18443 \
  --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test > $LOG 2>&1 &
P=$!
until [ "$(grep -c 'certificate obtained' $LOG)" -ge 50 ]; do sleep 0.2; done
kill -TERM $P; sleep $D; kill -QUIT $P; wait $P
