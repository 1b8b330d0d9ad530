#!/usr/bin/env bash
# run.sh runs the side-by-side benchmark of Spine against nginx, HAProxy, Caddy
# and a bare-Go server (see BENCHMARKS.md).
#
#   bench/run.sh [--quick | --full] [--servers spine,nginx,haproxy,caddy,go]
#                [--reps N] [--out FILE] [--no-install] [--keep] [--h3 | --h3-only]
#                [-- RUNNER FLAGS...]
#
# --h3 adds the HTTP/3 figures (bench/h3.sh: Spine against Caddy) after the
# suite; --h3-only measures them alone.
#
# It installs the servers and tools (bench/install.sh), builds the helpers
# and Spine, raises the open-file limit, and runs bench/runner, which pins
# each server to core 0 and the load to core 1. The report goes to
# bench/results/<date>.md and to standard output. Every server it started is
# stopped on exit, however the script ends.
set -euo pipefail

cd "$(dirname "$0")/.."
mode=quick servers=spine,nginx,haproxy,caddy,go reps="" out="" install=1 keep=0 h3=0
extra=()
while (($#)); do
	case $1 in
	--quick) mode=quick ;;
	--full) mode=full ;;
	--servers) servers=$2; shift ;;
	--reps) reps=$2; shift ;;
	--out) out=$2; shift ;;
	--no-install) install=0 ;;
	--keep) keep=1 ;;
	--h3) h3=1 ;;
	--h3-only) h3=2 ;;
	--) shift; extra=("$@"); break ;;
	-h | --help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown flag $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

if [[ $(id -u) -ne 0 ]]; then
	echo "run.sh: run as root (apt-get, raising the open-file limit)" >&2
	exit 1
fi
if [[ $(nproc) -lt 2 ]]; then
	echo "run.sh: needs two cores (server on one, load on the other)" >&2
	exit 1
fi
((install)) && bash bench/install.sh
if ((h3 == 2)); then
	h3out=${out:-bench/results/$(date +%Y-%m-%d-%H%M)-h3.md}
	mkdir -p bench/results
	exec bash bench/h3.sh --out "$h3out"
fi

# 20,000 held connections need that many descriptors on each side.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/spine-bench.XXXXXX)
runner_pid=""
cleanup() {
	local rc=$?
	[[ -n $runner_pid ]] && kill "$runner_pid" 2>/dev/null && wait "$runner_pid" 2>/dev/null
	# Process groups the runner started (servers, upstream), by their ids.
	if [[ -f $work/pgids ]]; then
		while read -r pg; do
			kill -TERM -- "-$pg" 2>/dev/null || true
		done <"$work/pgids"
		sleep 0.5
		while read -r pg; do
			kill -KILL -- "-$pg" 2>/dev/null || true
		done <"$work/pgids"
	fi
	if ((keep)); then
		echo "run.sh: scratch files kept in $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "run.sh: building the helpers into $work/bin" >&2
go build -o "$work/bin/" ./bench/baseline ./bench/upstream ./bench/loadgen ./bench/certgen ./bench/runner

spine_flags=()
if go build -o "$work/bin/spine" ./cmd/spine 2>"$work/spine-build.log"; then
	spine_flags=(-spine "$work/bin/spine")
	if ! go build -o "$work/bin/" ./bench/seed 2>"$work/seed-build.log"; then
		echo "run.sh: bench/seed does not build; Spine's startup figures are skipped" >&2
		spine_flags+=(-spine-hostnames 0)
	fi
else
	why="go build ./cmd/spine failed: $(grep -m1 -v '^#' "$work/spine-build.log" || true)"
	echo "run.sh: Spine skipped: $why" >&2
	spine_flags=(-spine-skip "$why")
fi

mkdir -p bench/results
[[ -n $out ]] || out="bench/results/$(date +%Y-%m-%d-%H%M)-$mode.md"
args=(-mode "$mode" -servers "$servers" -bin "$work/bin" -work "$work" -conf bench/conf -out "$out" "${spine_flags[@]}")
[[ -n $reps ]] && args+=(-reps "$reps")
"$work/bin/runner" "${args[@]}" "${extra[@]}" &
runner_pid=$!
wait "$runner_pid"
runner_pid=""
if ((h3)); then
	bash bench/h3.sh --out "${out%.md}-h3.md"
fi
