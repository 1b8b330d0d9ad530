#!/bin/bash
# tracedidle.sh LABEL BIN STORE R SECONDS: run.sh with a runtime trace of the node from its first sync's end (over its idle cold handshakes)
L=$1; BIN=$2; ST=$3; R=$4; S=${5:-40}
cd /work/res/warm
(EXTRA="$EXTRA" ./run.sh $L $BIN $ST $R &)
sleep 0.5
for i in $(seq 1 400); do P=$(pgrep -f "spine serve --data" | head -1); [ -n "$P" ] && break; sleep 0.05; done
API=$(ps -o args= -p $P | tr ' ' '\n' | grep -A1 -- --api-addr | tail -1)
echo "pid $P api $API" >&2
for i in $(seq 1 2400); do grep -q "first sync applied" /work/scale/$ST-1000000-spine.log 2>/dev/null && break; sleep 0.25; done
echo "first sync applied at $(date +%T.%N)" >&2
curl -s -o trace-$L-$ST-$R.out -H "Authorization: Bearer $(cat /work/scale/$ST-1000000/admin.token)" "http://$API/debug/pprof/trace?seconds=$S"
echo "trace done at $(date +%T.%N)" >&2
