#!/bin/sh
# Install the Debian packages a make target needs, or say how to.
# Usage: tools/deps.sh build|test|demo
# As root it installs what is missing; otherwise it prints the exact
# apt-get line and fails.
set -eu

build_pkgs="meson ninja-build pkg-config gcc libc6-dev libcjson-dev libcurl4-openssl-dev libssl-dev
	libyaml-dev libmnl-dev libmicrohttpd-dev musl-tools libibverbs-dev librdmacm-dev"
test_pkgs="$build_pkgs python3 util-linux procps iproute2 clang libfuzzer-14-dev
	sockperf iperf3 nginx-light redis-server redis-tools wrk curl strace openssl
	iputils-ping podman runc containernetworking-plugins musl-tools openssh-server
	openssh-sftp-server busybox-static prometheus-node-exporter bubblewrap tor debootstrap
	ibverbs-utils perftest rdmacm-utils dpdk-dev librte-net-memif23 librte-net-vhost23
	librte-net-virtio23 librte-net-af-packet23 openvswitch-switch-dpdk gnuplot-nox"
demo_pkgs="$build_pkgs iproute2 sockperf python3 curl iperf3 gnuplot-nox nginx-light wrk redis-server redis-tools nghttp2-client
	perftest ibverbs-utils"

case "${1:-}" in
build) want=$build_pkgs ;;
test) want=$test_pkgs ;;
demo) want=$demo_pkgs ;;
*) echo "usage: $0 build|test|demo" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "podwire: missing Debian packages:$missing" >&2
	echo "Run as root:  apt-get update && apt-get install -y$missing" >&2
	exit 1
fi
echo "podwire: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Servers we only run inside test namespaces (nginx, redis) must not start as
# host services on install.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
# A fresh machine may have no package lists yet; refresh only if needed.
if ! apt-get install -y -q --no-install-recommends $missing >/dev/null 2>&1; then
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends $missing
fi
