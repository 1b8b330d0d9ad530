#!/bin/bash
# liveheap.sh BIN DATADIR OUT [DSN]: starts `spine serve` on a seeded store (bench/seed) with
# GOMAXPROCS=1 on core 0, waits for "first sync applied", then 60 s, and writes OUT.rss (VmRSS before
# and after), OUT.heap.pb.gz (a heap profile after a forced collection) and OUT.mem (the runtime's
# MemStats after it: live heap, heap in use, objects) and OUT.smaps (the RSS split into anonymous memory
# and file pages mapped). Nothing else should run meanwhile; it stops
# any `spine serve --data` running first.
# BENCHMARKS.md, "A read's kept strings packed", has its figures. Pass DSN for a PostgreSQL seed.
# SPINE_EXTRA: more flags for spine serve. FILL=n FILL_TOTAL=N: once the first sync is applied, fill
# the certificate cache as traffic would, n handshakes for distinct hostnames spread over the N seeded
# (bench/handshakes, built next to BIN), before the 60 s wait. OUT.sync also has, read at the first sync,
# the bytes allocated so far (TotalAlloc), the collections (NumGC) and the node's processor time
# (CPUSeconds); FIRST_ONLY=1 stops the node there. COLD=n (with FILL): after the fill, n handshakes one at a
# time for names not in memory (bench/handshakes -offset 1 -latency), the cache full: OUT.cold has their
# times, the node's processor time and collections over them and, with DSN, PostgreSQL's transactions
# (each read of the store outside a transaction is one) per handshake. DB_CORE=cores (with DSN): PostgreSQL's
# processes pinned there while the node runs (bench/scale -db-core), every core given back after.
set -u
BIN=$1; DIR=$2; OUT=$3; DSN=${4:-}; SPINE_EXTRA=${SPINE_EXTRA:-}; FILL=${FILL:-}; FILL_TOTAL=${FILL_TOTAL:-}; FIRST_ONLY=${FIRST_ONLY:-}; COLD=${COLD:-}; DB_CORE=${DB_CORE:-}
pkill -f "serve --data" ; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
extra=""; [ -n "$DSN" ] && extra="--store $DSN"
pinpg() { for p in $(pgrep -x postgres); do taskset -a -p -c $1 $p > /dev/null; done; }
if [ -n "$DB_CORE" ] && [ -n "$DSN" ]; then pinpg $DB_CORE; trap 'pinpg 0-$(($(nproc) - 1))' EXIT; fi
GOMAXPROCS=1 taskset -c 0 $BIN serve --data $DIR --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 --api-addr 127.0.0.1:18081 --domain bench.test $extra $SPINE_EXTRA > $OUT.node.log 2>&1 &
PID=$!
for i in $(seq 1 600); do grep -q "first sync applied" $OUT.node.log && break; sleep 0.5; done
grep "first sync applied" $OUT.node.log | head -1 > $OUT.sync
TOK=$(cat $DIR/admin.token)
# At the first sync (polled every 0.5 s): what the start allocated, its
# collections, and the node's processor time (user + system).
curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:18081/debug/pprof/heap?debug=1" | grep -E "^# (TotalAlloc|Mallocs|NumGC|PauseTotalNs) " >> $OUT.sync
awk -v hz=$(getconf CLK_TCK) '{printf "# CPUSeconds = %.2f\n", ($14+$15)/hz}' /proc/$PID/stat >> $OUT.sync
grep VmHWM /proc/$PID/status >> $OUT.sync # the peak RSS so far
[ -n "$FIRST_ONLY" ] && { kill $PID; wait $PID 2>/dev/null; cat $OUT.sync; exit 0; }
if [ -n "$FILL" ]; then
  # Fill the certificate cache as traffic would: FILL distinct hostnames
  # spread over the seeded ones (bench/handshakes), from core 1.
  taskset -c 1 $(dirname $BIN)/handshakes -n $FILL -total $FILL_TOTAL > $OUT.fill 2>&1
  cat $OUT.fill
fi
if [ -n "$COLD" ]; then
  sleep 10
  cpu() { awk -v hz=$(getconf CLK_TCK) '{printf "%.2f", ($14+$15)/hz}' /proc/$PID/stat; }
  gcs() { curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:18081/debug/pprof/heap?debug=1" | awk '/^# NumGC /{print $4}'; }
  xacts() { [ -n "$DSN" ] && psql "${DSN%%&search_path*}" -Atc "select xact_commit from pg_stat_database where datname = current_database()" || echo 0; }
  c0=$(cpu); g0=$(gcs); x0=$(xacts)
  taskset -c 1 $(dirname $BIN)/handshakes -n $COLD -total $FILL_TOTAL -offset 1 -parallel 1 -latency > $OUT.cold 2>&1
  c1=$(cpu); g1=$(gcs); x1=$(xacts)
  awk -v c0=$c0 -v c1=$c1 -v g=$((g1 - g0)) -v x=$((x1 - x0)) -v n=$COLD 'BEGIN { printf "node: %.2f s of processor, %d collections, %.2f PostgreSQL transactions a handshake (0: SQLite)\n", c1 - c0, g, x / n }' >> $OUT.cold
  cat $OUT.cold
fi
sleep 60
grep VmRSS /proc/$PID/status > $OUT.rss
grep -E "^(Rss|Anonymous|Private_Dirty|Shared_Clean|Private_Clean):" /proc/$PID/smaps_rollup > $OUT.smaps
curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:18081/debug/pprof/heap?gc=1" -o $OUT.heap.pb.gz
curl -s -H "Authorization: Bearer $TOK" "http://127.0.0.1:18081/debug/pprof/heap?debug=1" | grep -E "^# (HeapAlloc|HeapInuse|HeapIdle|HeapReleased|HeapObjects|Sys|Stack|MSpan|GCSys|OtherSys|NumGC) " > $OUT.mem
sleep 2; grep VmRSS /proc/$PID/status >> $OUT.rss
kill $PID; wait $PID 2>/dev/null
cat $OUT.sync $OUT.rss $OUT.smaps $OUT.mem
