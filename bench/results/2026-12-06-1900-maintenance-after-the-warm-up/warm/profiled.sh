#!/bin/bash
# profiled.sh LABEL BIN STORE R AT SECONDS: run.sh with a CPU profile and two allocation profiles of the node, from AT s after its start for SECONDS
L=$1; BIN=$2; ST=$3; R=$4; AT=${5:-6}; S=${6:-10}
cd /work/res/warm
(./run.sh $L $BIN $ST $R &)
sleep 0.5
for i in $(seq 1 400); do P=$(pgrep -f "spine serve --data" | head -1); [ -n "$P" ] && break; sleep 0.05; done
API=$(ps -o args= -p $P | tr ' ' '\n' | grep -A1 -- --api-addr | tail -1)
for i in $(seq 1 400); do curl -s -o /dev/null "http://$API/healthz" && break; sleep 0.05; done
sleep $AT
H="Authorization: Bearer $(cat /work/scale/$ST-1000000/admin.token)"
curl -s -o prof-$L-$ST-$R.allocs0 -H "$H" "http://$API/debug/pprof/allocs"
curl -s -o prof-$L-$ST-$R.cpu -H "$H" "http://$API/debug/pprof/profile?seconds=$S"
curl -s -o prof-$L-$ST-$R.allocs1 -H "$H" "http://$API/debug/pprof/allocs"
echo "profiles done" >&2
while pgrep -f "scale -bin" > /dev/null; do sleep 2; done
