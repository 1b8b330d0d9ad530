#!/bin/bash
# allocs.sh BIN OUT: the node on the PostgreSQL 1M seed, cache filled, then the allocations of 3000 cold handshakes
BIN=$1; OUT=$2; DIR=/work/scale/postgres-1000000
DSN="postgres://postgres@127.0.0.1:5432/test?sslmode=disable&search_path=spine_scale_1000000"
pkill -f "serve --data" ; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
GOMAXPROCS=1 taskset -c 0 $BIN serve --data $DIR --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test --store $DSN > $OUT.node.log 2>&1 &
PID=$!
for i in $(seq 1 600); do grep -q "first sync applied" $OUT.node.log && break; sleep 0.5; done
TOK=$(cat $DIR/admin.token)
taskset -c 1 /tmp/b/handshakes -n 10000 -total 1000000 > /dev/null
sleep 10
curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:18081/debug/pprof/heap?gc=1" -o $OUT.h0.pb.gz
a0=$(curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:18081/debug/pprof/heap?debug=1" | awk '/^# TotalAlloc /{print $4}')
taskset -c 1 /tmp/b/handshakes -n 3000 -total 1000000 -offset 1 -parallel 1 -latency > $OUT.cold
a1=$(curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:18081/debug/pprof/heap?debug=1" | awk '/^# TotalAlloc /{print $4}')
curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:18081/debug/pprof/heap?gc=1" -o $OUT.h1.pb.gz
echo "allocated during the 3000 handshakes: $(( (a1 - a0) / 3000 )) B a handshake" >> $OUT.cold
kill $PID; wait $PID 2>/dev/null
cat $OUT.cold
