#!/bin/bash
# outage.sh BIN DATADIR OUT SCHEMA: fail static at scale, on a PostgreSQL seed (bench/seed with
# -store ...search_path=SCHEMA, N hostnames). The node reaches PostgreSQL through a gate (socat on
# 127.0.0.1:15432, so the store can go away and come back under the same DSN):
#   1. `spine serve` (GOMAXPROCS=1, core 0) with the store up; once the first sync is applied, FILL
#      handshakes for distinct names spread over the N (bench/handshakes: the hot set), then a wait
#      until the snapshot holds FILL certificates (its writer looks the cached ones up again at most
#      every minute); the node is stopped.
#   2. The gate closed (the store unreachable), the node started again: the time to its first HTTPS
#      answer (a hot name), its RSS, the hot set shaken hands with again (every name served from
#      the snapshot's certificates) and COLD names none of the hot set names (routed, but their
#      certificates are only in the store: refused until it returns), /readyz.
#   3. The gate opened again: the time until a cold name is served, /readyz, the cold set again,
#      and the RSS once the node has read the store.
# COLD_OFFSET (default 1) picks the cold set: with REUSE=1, one no earlier run served (a run's
# snapshot after the store came back holds its cold set). Needs socat. Writes OUT.txt (the figures) and OUT.node1.log / OUT.node2.log. REUSE=1 skips step 1
# (the snapshot of an earlier run is in DATADIR).
set -u
BIN=$1; DIR=$2; OUT=$3; SCHEMA=$4
N=${N:-1000000}; FILL=${FILL:-10000}; COLD=${COLD:-1000}; OFF=${COLD_OFFSET:-1}
DSN="postgres://postgres@127.0.0.1:15432/test?sslmode=disable&search_path=$SCHEMA"
HS="$(dirname $BIN)/handshakes"
pkill -f "serve --data"; while pgrep -f "serve --data" >/dev/null; do sleep 0.5; done
pkill -f "TCP-LISTEN:15432"
gate_open() { socat TCP-LISTEN:15432,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:5432 & sleep 0.3; }
gate_close() { pkill -f "TCP-LISTEN:15432"; while pgrep -f "TCP-LISTEN:15432" >/dev/null; do sleep 0.1; done; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l | xargs printf "%.2f"; }
rss() { awk '/VmRSS/ {printf "%.0f MiB", $2/1024}' /proc/$1/status; }
serve() { # serve LOG: starts the node, sets PID
	GOMAXPROCS=1 taskset -c 0 $BIN serve --data $DIR --https-addr 127.0.0.1:18443 --http-addr 127.0.0.1:18080 \
		--api-addr 127.0.0.1:18081 --domain bench.test --store "$DSN" > $1 2>&1 &
	PID=$!
}
served() { # served NAME: a TLS handshake for NAME succeeds
	echo | timeout 5 openssl s_client -connect 127.0.0.1:18443 -servername $1 >/dev/null 2>&1 </dev/null
}
readyz() { curl -s -o /dev/null -w "%{http_code}" --max-time 5 http://127.0.0.1:18081/readyz; }
: > $OUT.txt
say() { echo "$*" | tee -a $OUT.txt; }

say "outage at N=$N, hot set $FILL, cold set $COLD, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
gate_open
if [ -z "${REUSE:-}" ]; then
serve $OUT.node1.log
# A store below the warm-up's size (20,000 names) is read whole before the node serves.
synced="first sync applied"; [ $N -lt 20000 ] && synced="spine is serving"
for i in $(seq 1 1200); do grep -q "$synced" $OUT.node1.log && break; sleep 0.5; done
say "1. store up: $(grep -c "$synced" $OUT.node1.log)x $synced; $(taskset -c 1 $HS -n $FILL -total $N)"
# The cache holds at most its capacity (10,000) less what the manager evicts to make room, so wait
# for 99 % of FILL.
t=$(now)
for i in $(seq 1 360); do
	c=$(ls $DIR/snapshot/certs 2>/dev/null | wc -l)
	[ "$c" -ge $((FILL * 99 / 100)) ] && break; sleep 1
done
say "   snapshot: $c certificate files after $(since $t) s, $(du -sm $DIR/snapshot | cut -f1) MB; node RSS $(rss $PID)"
kill $PID; wait $PID 2>/dev/null
fi

gate_close
t=$(now)
serve $OUT.node2.log
until served s000000.bench.test; do sleep 0.05; done
say "2. store away: first HTTPS answer $(since $t) s after exec; RSS $(rss $PID); /readyz $(readyz)"
say "   hot:  $(taskset -c 1 $HS -n $FILL -total $N 2>/dev/null)"
say "   cold: $(taskset -c 1 $HS -n $COLD -total $N -offset $OFF 2>/dev/null)"
# The API's reads from what the node last applied (its snapshot): a page, a service, a page at the end.
TOK=$(cat $DIR/admin.token)
api() { curl -s -o /dev/null -D - -w "%{http_code} in %{time_total} s" --max-time 60 -H "Authorization: Bearer $TOK" "http://127.0.0.1:18081$1" | tr -d '\r' | awk '/^Warning:/ {w=$0} END {print $0 ", " (w ? w : "no Warning")}'; }
say "   API: GET /v1/services?limit=1000 $(api '/v1/services?limit=1000')"
say "        GET /v1/services/s$(printf %06d $((N/2))) $(api /v1/services/s$(printf %06d $((N/2))))"
say "        GET /v1/services?offset=$((N-1000)) $(api "/v1/services?offset=$((N-1000))"); RSS $(rss $PID)"
sleep 10
say "   10 s later: RSS $(rss $PID); /readyz $(readyz)"

gate_open
t=$(now)
until served s$(printf %06d $OFF).bench.test; do sleep 0.05; done
say "3. store back: a cold name served $(since $t) s after; /readyz $(readyz) at $(since $t) s"
for i in $(seq 1 600); do [ "$(readyz)" = 200 ] && break; sleep 0.5; done
say "   /readyz 200 $(since $t) s after; cold: $(taskset -c 1 $HS -n $COLD -total $N -offset $OFF 2>/dev/null)"
sleep 60
say "   60 s later: RSS $(rss $PID)"
kill $PID; wait $PID 2>/dev/null
gate_close
