# SPDX-License-Identifier: MIT
# Shared setup for the podwire-switch tests: a private directory, network
# namespaces named after a claimed number, the switch and the DPDK programs
# the test starts (killed by pid), and cleanup of all of it on any exit.
# Source it, then call sw_init.
. "$(dirname "$0")/../lib.sh"

PW_SWITCH=$PW_BUILD/src/switch/podwire-switch

sw_init() {
	[ "$(id -u)" = 0 ] || pw_skip "needs root (network namespaces, DPDK)"
	pw_need ip python3 timeout
	command -v dpdk-testpmd >/dev/null 2>&1 || pw_skip "dpdk-testpmd is not installed (apt-get install dpdk-dev librte-net-memif23)"
	ls /usr/lib/*/dpdk/pmds-*/librte_net_memif.so* >/dev/null 2>&1 ||
		pw_skip "DPDK's memif driver is not installed (apt-get install librte-net-memif23)"
	[ -x "$PW_SWITCH" ] || pw_fail "build first: $PW_SWITCH missing"
	pw_claim switch 1 99 sw_name_free
	SW_TAG=pwsw$PW_CLAIM
	SW_DIR=$(mktemp -d /tmp/podwire-switch.XXXXXX)
	SW_PIDS=""
	SW_NS=""
	SW_PID=""
	trap sw_cleanup EXIT
	trap 'exit 1' INT TERM
}
sw_name_free() { ! ip netns list | grep -q "^pwsw$1-"; }

sw_cleanup() {
	local rc=$? p
	for p in $SW_PIDS $SW_PID; do kill -INT "$p" 2>/dev/null; done
	for p in $SW_PIDS $SW_PID; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	for n in $SW_NS; do ip netns del "$n" 2>/dev/null; done
	pw_logs_tail "$rc" "$SW_DIR" 40 "$SW_DIR"/*.log
	rm -rf "$SW_DIR"
	exit "$rc"
}

# A network namespace $SW_TAG-NAME (a pod).
sw_ns() { ip netns add "$SW_TAG-$1" || pw_fail "netns $SW_TAG-$1"; SW_NS="$SW_NS $SW_TAG-$1"; }

# Start the switch with ARGS (its run directory is $SW_DIR/run).
sw_start() {
	"$PW_SWITCH" -d "$SW_DIR/run" "$@" >"$SW_DIR/switch.log" 2>&1 &
	SW_PID=$!
	for _ in $(seq 100); do
		[ -S "$SW_DIR/run/control" ] && return 0
		kill -0 "$SW_PID" 2>/dev/null || pw_fail "podwire-switch $*: $(cat "$SW_DIR/switch.log")"
		sleep 0.05
	done
	pw_fail "podwire-switch did not start"
}
sw_stop() {
	kill -TERM "$SW_PID" && wait "$SW_PID" || pw_fail "podwire-switch exited badly: $(tail "$SW_DIR/switch.log")"
	SW_PID=""
}
swctl() { "$PW_CLI" switch --dir "$SW_DIR/run" "$@"; }

# sw_field PORT FIELD: a port's field in the switch's status.
sw_field() {
	swctl status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print([p for p in s["ports"] if p["name"] == sys.argv[1]][0].get(sys.argv[2], ""))' "$1" "$2"
}
sw_global() { swctl status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# testpmd as a pod: no hugepages (nothing global to reserve), its EAL files
# private to the run. tp LOG NS SECONDS ARGS... runs it in netns NS (or "" for
# this one) for SECONDS, stopped with SIGINT as at a terminal; its final
# statistics are in LOG.
SW_TP_EAL="-l 0,1 --no-pci --no-huge -m 512 --no-shconf"
tp() {
	local log=$1 ns=$2 secs=$3
	shift 3
	${ns:+ip netns exec "$SW_TAG-$ns"} timeout -s INT -k 10 "$secs" dpdk-testpmd $SW_TP_EAL \
		--file-prefix "$SW_TAG-$$" "$@" >"$SW_DIR/$log" 2>&1
}
# tp_bg LOG NS ARGS...: testpmd in the background until stopped with
# tp_stop (SIGINT, as at a terminal); its pid in TP_PID (and SW_PIDS).
tp_bg() {
	local log=$1 ns=$2
	shift 2
	${ns:+ip netns exec "$SW_TAG-$ns"} dpdk-testpmd $SW_TP_EAL --file-prefix "$SW_TAG-$log" \
		"$@" >"$SW_DIR/$log" 2>&1 &
	TP_PID=$!
	SW_PIDS="$SW_PIDS $TP_PID"
}
tp_stop() { # pids...
	local p
	for p in "$@"; do kill -INT "$p" 2>/dev/null; done
	for p in "$@"; do wait "$p" 2>/dev/null; done
}
# tp_stat LOG PORT RX|TX: a port's final packet count (its last forward
# statistics: testpmd prints some after --tx-first too).
tp_stat() {
	awk -v port="$2" -v dir="$3-packets:" '
		/Forward statistics for port/ { p = $(NF - 1); next }
		/Accumulated/ { p = "" }
		p == port && $1 == dir { n = $2 }
		END { print n }' "$SW_DIR/$1"
}
