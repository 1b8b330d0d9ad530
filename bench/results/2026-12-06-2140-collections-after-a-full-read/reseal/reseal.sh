#!/bin/bash
# reseal.sh BIN LABEL OFFSET: a SQLite 1M start; 6.5 s after its first sync, 6,000 cold handshakes one at a time from core 1, with a 12 s CPU profile of the node
BIN=$1; L=$2; OFF=$3
pkill -f "serve --data"; sleep 1
(GOMAXPROCS=1 GODEBUG=gctrace=1 nohup taskset -c 0 $BIN/spine serve --data /work/scale/sqlite-1000000 --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test > $L.node.log 2>&1 &)
for i in $(seq 1 120); do grep -q "first sync applied" $L.node.log && break; sleep 1; done
sleep 6.5
H="Authorization: Bearer $(cat /work/scale/sqlite-1000000/admin.token)"
(curl -s -o $L.cpu -H "$H" "http://127.0.0.1:18081/debug/pprof/profile?seconds=12" &)
taskset -c 1 /tmp/b/handshakes -n 6000 -offset $OFF -parallel 1 -latency > $L.hs.txt 2>&1
sleep 3
pkill -f "serve --data"
echo "$L: $(tail -1 $L.hs.txt); reseal in the profile: $(go tool pprof -top -cum $BIN/spine $L.cpu 2>/dev/null | grep 'resealPlaintextKV' | awk '{print $4}')"
