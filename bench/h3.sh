#!/usr/bin/env bash
# h3.sh measures HTTP/3: Spine against Caddy (the peer here that has it),
# each pinned to one core with GOMAXPROCS=1, the load (bench/h3load) and the
# upstream on the other core. For each server: full QUIC handshakes (a new
# connection and one proxied GET each), keep-alive requests (proxied GETs on
# 4 connections), and the resident memory each idle HTTP/3 connection adds.
# CPU is the server process's user + system time (/proc), per handshake or
# request. Called by run.sh --h3; alone:
#
#   bench/h3.sh [--handshakes N] [--requests N] [--hold N] [--reps N] [--out FILE]
#
# Needs caddy (bench/install.sh) and Go; prints a markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
hs=2000 reqs=20000 hold=2000 reps=3 out=""
while (($#)); do
	case $1 in
	--handshakes) hs=$2; shift ;;
	--requests) reqs=$2; shift ;;
	--hold) hold=$2; shift ;;
	--reps) reps=$2; shift ;;
	--out) out=$2; shift ;;
	-h | --help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "h3.sh: unknown flag $1" >&2; exit 2 ;;
	esac
	shift
done
command -v caddy >/dev/null || { echo "h3.sh: caddy is not installed (bench/install.sh)" >&2; exit 1; }

work=$(mktemp -d /tmp/spine-h3bench.XXXXXX)
pids=()
cleanup() {
	local rc=$?
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/bin/" ./cmd/spine ./bench/upstream ./bench/certgen ./bench/h3load
"$work/bin/certgen" -out "$work" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up_port=$(free_port)
taskset -c 1 "$work/bin/upstream" -addr "127.0.0.1:$up_port" >"$work/upstream.log" 2>&1 &
pids+=($!)

# Spine: spine up with a service on the upstream (bench.localhost).
sp_https=$(free_port) sp_api=$(free_port) sp_http=$(free_port)
GOMAXPROCS=1 taskset -c 0 "$work/bin/spine" up --data "$work/spine" --https-addr "127.0.0.1:$sp_https" \
	--http-addr "127.0.0.1:$sp_http" --api-addr "127.0.0.1:$sp_api" --log-level warn >"$work/spine.log" 2>&1 &
spine_pid=$!
pids+=($spine_pid)
for _ in $(seq 100); do [[ -f $work/spine/admin.token ]] && break; sleep 0.2; done
"$work/bin/spine" --api "http://127.0.0.1:$sp_api" --data "$work/spine" service create bench \
	--upstream "http://127.0.0.1:$up_port" --wait --timeout 60s >/dev/null

# Caddy with HTTP/3 on the same upstream.
cd_port=$(free_port)
mkdir -p "$work/caddy-home"
sed -e "s|@PORT@|$cd_port|" -e "s|@CERT@|$work/cert.pem|" -e "s|@KEY@|$work/key.pem|" \
	-e "s|@UPSTREAM@|127.0.0.1:$up_port|" bench/conf/Caddyfile.h3 >"$work/Caddyfile"
GOMAXPROCS=1 HOME="$work/caddy-home" XDG_DATA_HOME="$work/caddy-home" XDG_CONFIG_HOME="$work/caddy-home" \
	taskset -c 0 caddy run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
caddy_pid=$!
pids+=($caddy_pid)
sleep 2

load() { taskset -c 1 "$work/bin/h3load" "$@"; }
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

rows=()
for srv in spine caddy; do
	if [[ $srv == spine ]]; then addr=127.0.0.1:$sp_https host=bench.localhost pid=$spine_pid; else addr=127.0.0.1:$cd_port host=bench.test pid=$caddy_pid; fi
	load -addr "$addr" -host "$host" -pid "$pid" -mode requests -n 2000 -c 4 >/dev/null # warm-up
	h=() r=() hr=() m=()
	for _ in $(seq "$reps"); do
		o=$(load -addr "$addr" -host "$host" -pid "$pid" -mode handshakes -n "$hs" -c 8)
		h+=("$(field server_cpu_us_each <<<"$o")") hr+=("$(field per_second <<<"$o")")
		[[ $(field failed <<<"$o") == 0 ]] || echo "h3.sh: $srv handshakes: $o" >&2
		o=$(load -addr "$addr" -host "$host" -pid "$pid" -mode requests -n "$reqs" -c 4)
		r+=("$(field server_cpu_us_each <<<"$o")")
		[[ $(field failed <<<"$o") == 0 ]] || echo "h3.sh: $srv requests: $o" >&2
		o=$(load -addr "$addr" -host "$host" -pid "$pid" -mode hold -n "$hold" -c 64)
		m+=("$(field kib_per_conn <<<"$o")")
	done
	rows+=("| $srv | $(printf '%s\n' "${h[@]}" | median) | $(printf '%s\n' "${hr[@]}" | median) | $(printf '%s\n' "${r[@]}" | median) | $(printf '%s\n' "${m[@]}" | median) |")
done

report=$(
	echo "HTTP/3, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, server on core 0 (GOMAXPROCS=1), load on core 1; medians of $reps;"
	echo "$hs handshakes (8 at once, one proxied GET each), $reqs keep-alive proxied GETs on 4 connections, $hold idle connections held."
	echo "$("$work/bin/spine" version 2>/dev/null | head -1); caddy $(caddy version | cut -d' ' -f1)"
	echo
	echo "| server | CPU µs / handshake | handshakes/s | CPU µs / keep-alive request | KiB RSS / idle connection |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
)
echo "$report"
[[ -z $out ]] || echo "$report" >"$out"
