#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Debian's unmodified dpdk-testpmd as a pod's DPDK, a memif client of
# podwire-switch (issue 13): one testpmd in a network namespace with two
# memif ports, each connected to a port of the switch, forwarding whatever
# it receives on one port out of the other; --tx-first starts a burst each
# way, which then circles through the switch in both directions.
#  1. io forwarding over a static rule (A to B and back);
#  2. macswap forwarding over the same rule;
#  3. io forwarding by MAC learning, each port pinned to its pod's address;
# each checked by the counters on both sides: what testpmd sent on a port
# the switch received on it, what the switch sent testpmd received (less
# at most one ring in flight at the stop), traffic both ways, nothing
# dropped, malformed or unroutable.
#  4. the switch sleeps when traffic stops though testpmd stays connected;
#  5. ports as abstract sockets inside each pod's network namespace (DPDK's
#     default, socket-abstract=yes): a pod reaches its own port by the name
#     and no other pod's, added and removed while the switch runs.
set -u
. "$(dirname "$0")/lib.sh"
sw_init
sw_ns pod

SECS=${PW_SWITCH_SECS:-4}
RING=1024
memif() { # index socket [mac]
	echo "--vdev=net_memif$1,role=client,id=0,socket=$SW_DIR/$2.sock,socket-abstract=no${3:+,mac=$3}"
}

# check LOG: testpmd's counters against the switch's, both ways.
check() {
	local log=$1 port tp_tx tp_rx sw_rx sw_tx f
	for port in 0 1; do
		tp_tx=$(tp_stat "$log" $port TX)
		tp_rx=$(tp_stat "$log" $port RX)
		[ -n "$tp_tx" ] && [ -n "$tp_rx" ] || pw_fail "$log: no statistics for port $port"
		sw_rx=$(sw_field p$port rx_packets)
		sw_tx=$(sw_field p$port tx_packets)
		pw_log "$log port $port: testpmd sent $tp_tx, received $tp_rx; switch received $sw_rx, sent $sw_tx"
		[ "$tp_tx" -ge 100000 ] && [ "$tp_rx" -ge 100000 ] ||
			pw_fail "$log port $port: too little traffic (sent $tp_tx, received $tp_rx)"
		[ "$sw_rx" -le "$tp_tx" ] && [ "$tp_tx" -le $((sw_rx + RING)) ] ||
			pw_fail "$log port $port: testpmd sent $tp_tx, the switch received $sw_rx"
		[ "$tp_rx" -le "$sw_tx" ] && [ "$sw_tx" -le $((tp_rx + RING)) ] ||
			pw_fail "$log port $port: the switch sent $sw_tx, testpmd received $tp_rx"
		for f in rx_bad tx_bad no_dest spoofed; do
			[ "$(sw_field p$port $f)" = 0 ] || pw_fail "$log port $port: $f $(sw_field p$port $f)"
		done
	done
}

# 1, 2: a static rule.
sw_start -p "p0,socket=$SW_DIR/p0.sock" -p "p1,socket=$SW_DIR/p1.sock" -c p0,p1
for mode in io macswap; do
	tp "$mode.log" pod "$SECS" "$(memif 0 p0)" "$(memif 1 p1)" -- --forward-mode=$mode \
		--tx-first --stats-period 1 --total-num-mbufs=16384
	grep -q "Forward statistics for port 1" "$SW_DIR/$mode.log" ||
		pw_fail "testpmd $mode: $(tail -20 "$SW_DIR/$mode.log")"
	check "$mode.log"
	sw_stop
	sw_start -p "p0,socket=$SW_DIR/p0.sock" -p "p1,socket=$SW_DIR/p1.sock" -c p0,p1
done
sw_stop

# 3: MAC learning, each port pinned to its address. Each port's first burst
# goes to the other port's address, so both are learned.
A=02:00:00:00:5e:0a B=02:00:00:00:5e:0b
sw_start -p "p0,socket=$SW_DIR/p0.sock,mac=$A" -p "p1,socket=$SW_DIR/p1.sock,mac=$B"
tp learn.log pod "$SECS" "$(memif 0 p0 $A)" "$(memif 1 p1 $B)" -- --forward-mode=io \
	--eth-peer=0,$B --eth-peer=1,$A --tx-first --stats-period 1 --total-num-mbufs=16384
check learn.log

# 4: connected, idle: the switch sleeps. testpmd forwards (polls) but sends
# nothing; the switch's CPU time over 2 s stays within 3 ticks.
tp_bg idle.log pod "$(memif 0 p0 $A)" "$(memif 1 p1 $B)" -- --forward-mode=io \
	--stats-period 1 --total-num-mbufs=16384
for _ in $(seq 100); do [ "$(sw_field p1 state)" = connected ] && break; sleep 0.1; done
[ "$(sw_field p0 state)" = connected ] && [ "$(sw_field p1 state)" = connected ] ||
	pw_fail "testpmd did not connect: $(tail "$SW_DIR/idle.log")"
sleep 1
ticks() { awk '{ print $14 + $15 }' "/proc/$SW_PID/stat"; }
t0=$(ticks) s0=$(sw_global sleeps)
sleep 2
t1=$(ticks) s1=$(sw_global sleeps)
pw_log "idle, two clients connected: $((t1 - t0)) ticks of CPU in 2 s, slept $((s1 - s0)) times"
[ $((t1 - t0)) -le 3 ] || pw_fail "idle switch used $((t1 - t0)) ticks in 2 s"
tp_stop $TP_PID
sw_stop

# 5: a port per pod, each an abstract socket of one name inside the pod's
# own namespace. Pod a's testpmd connects to the name and gets port pa; pod
# c (no port) fails to connect by the same name.
sw_ns a
sw_ns c
sw_start
swctl port add pa --abstract /run/podwire/memif.sock --netns "/run/netns/$SW_TAG-a" ||
	pw_fail "port add pa"
swctl port add pa --abstract /x --netns "/run/netns/$SW_TAG-a" 2>/dev/null &&
	pw_fail "a second port pa was added"
swctl connect pa pa || pw_fail "connect pa pa"
abstract="--vdev=net_memif0,role=client,id=0,socket=/run/podwire/memif.sock"
tp abs.log a "$SECS" "$abstract" -- --forward-mode=io --tx-first --stats-period 1 \
	--total-num-mbufs=16384
n=$(tp_stat abs.log 0 RX)
pw_log "pod a, over its own abstract socket: testpmd received $n, the switch sent $(sw_field pa tx_packets)"
[ "${n:-0}" -ge 100000 ] || pw_fail "pod a: $(tail -20 "$SW_DIR/abs.log")"
tp other.log c 3 "$abstract" -- --forward-mode=io --stats-period 1 --total-num-mbufs=16384
grep -q "Failed to connect socket" "$SW_DIR/other.log" ||
	pw_fail "pod c reached pod a's port: $(tail -20 "$SW_DIR/other.log")"
[ "$(sw_field pa connects)" = 1 ] || pw_fail "port pa: $(sw_field pa connects) connects"
swctl port del pa || pw_fail "port del pa"
[ -z "$(ip netns exec "$SW_TAG-a" ss -Hxl | grep memif.sock)" ] || pw_fail "pa's socket is still there"
sw_stop
echo "test-switch-testpmd: ok"
