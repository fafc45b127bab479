#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An accelerated operation on a forked (or inherited) socket makes no system
# call that the same operation makes neither on the unforked socket nor on
# a kernel socket. pw-sem's fork_syscalls client runs under strace: 2000
# ping-pongs by the connecting process, then 2000 by a forked child on the
# inherited socket, each between getppid() markers. Under the preload, every
# system call the child makes in its window must also appear in the
# parent's window, in the kernel run's child window, or be one of the
# channel's waits and wake-ups (which of those a window holds depends on
# timing); fcntl must appear in none (it was one per call). The counts of
# both runs are printed.
set -u
. "$(dirname "$0")/lib.sh"
SEM=$PW_BUILD/tests/pw-sem
pw_need strace awk
pw_e2e_init syscalls
pw_pod a 11
pw_pod b 12
pw_router_metrics
rc=0

# window TRACE PID: the names of the calls between PID's two getppid().
window() {
	awk -v pid="$2" '$1 == pid {
		call = $2; sub(/\(.*/, "", call)
		if (call == "getppid") { inside = !inside; next }
		if (inside && call !~ /^(\+\+\+|---|<\.\.\.)/) n[call]++
	} END { for (c in n) print c, n[c] }' "$1" | sort
}

run() { # mode: preload or kernel
	local port=$1 mode=$2 np=""
	[ "$mode" = kernel ] && np=1
	PW_NOPRELOAD=$np pw_in b "$SEM" server fork_syscalls "$PW_IP_b" "$port" >"$PW_DIR/srv-$mode.log" 2>&1 &
	local srv=$!
	PW_PIDS="$PW_PIDS $srv"
	for _ in $(seq 200); do grep -q READY "$PW_DIR/srv-$mode.log" && break; sleep 0.05; done
	PW_NOPRELOAD=$np pw_in a strace -f -qq -o "$PW_DIR/trace-$mode" \
		"$SEM" client fork_syscalls "$PW_IP_b" "$port" >"$PW_DIR/cli-$mode.log" 2>&1 ||
		{ cat "$PW_DIR/cli-$mode.log"; pw_fail "$mode: the client failed"; }
	wait "$srv" || pw_fail "$mode: the server failed"
	# The client is the first pid in the trace; the child, the other one
	# with markers.
	local parent child
	parent=$(awk 'NR == 1 { print $1 }' "$PW_DIR/trace-$mode")
	child=$(awk -v p="$parent" '$2 ~ /^getppid/ && $1 != p { print $1; exit }' "$PW_DIR/trace-$mode")
	[ -n "$child" ] || pw_fail "$mode: no child window in the trace"
	window "$PW_DIR/trace-$mode" "$parent" >"$PW_DIR/w-$mode-parent"
	window "$PW_DIR/trace-$mode" "$child" >"$PW_DIR/w-$mode-child"
	echo "# $mode, connecting process (2000 ping-pongs): $(tr '\n' ' ' <"$PW_DIR/w-$mode-parent")"
	echo "# $mode, forked child (2000 ping-pongs):     $(tr '\n' ' ' <"$PW_DIR/w-$mode-child")"
}
run 7301 kernel
run 7302 preload
# The channel's waits and wake-ups (docs/CHANNEL.md).
CHAN="recvfrom sendto sendmmsg ppoll ioctl sched_yield sched_getaffinity sched_setaffinity"
extra=$(cut -d' ' -f1 "$PW_DIR/w-preload-child" | while read -r c; do
	case " $CHAN " in *" $c "*) continue ;; esac
	grep -q "^$c " "$PW_DIR/w-preload-parent" "$PW_DIR/w-kernel-child" || echo "$c"
done)
[ -z "$extra" ] || { echo "FAIL: calls only the forked socket makes: $extra"; rc=1; }
if grep -q "^fcntl" "$PW_DIR/w-preload-child" "$PW_DIR/w-preload-parent"; then
	echo "FAIL: fcntl in an accelerated ping-pong window"
	rc=1
fi
[ $rc = 0 ] && echo ok
exit $rc
