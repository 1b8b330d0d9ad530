#!/usr/bin/env bash
# install.sh puts the servers and load tools of the side-by-side benchmark on a
# Debian 12 machine, then stops any instance the packages started so that the
# benchmark owns every port and every core it measures.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
	echo "install.sh: must run as root (apt-get)" >&2
	exit 1
fi

pkgs=(nginx haproxy caddy wrk nghttp2-client procps util-linux openssl)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	apt-get update -q
	# policy-rc.d 101 keeps the maintainer scripts from starting the daemons.
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

# Stop and disable system instances, whether systemd runs or not.
for svc in nginx haproxy caddy; do
	if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
		systemctl stop "$svc" 2>/dev/null || true
		systemctl disable "$svc" 2>/dev/null || true
	else
		service "$svc" stop >/dev/null 2>&1 || true
	fi
done

for bin in nginx haproxy caddy h2load wrk taskset; do
	command -v "$bin" >/dev/null || { echo "install.sh: $bin missing after install" >&2; exit 1; }
done
echo "install.sh: nginx haproxy caddy wrk h2load ready"
