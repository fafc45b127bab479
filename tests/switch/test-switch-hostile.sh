#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A hostile pod against a running podwire-switch (issue 13): malformed
# messages, regions and rings over the real socket, a broken ring after a
# good handshake, a second client on a busy port (test-switch-hostile.c).
# The switch must refuse each, count it (in its status and its Prometheus
# metrics), and go on serving: afterwards real dpdk-testpmd on the same port
# forwards through it.
set -u
. "$(dirname "$0")/lib.sh"
sw_init
HOSTILE=$PW_BUILD/tests/switch/test-switch-hostile
[ -x "$HOSTILE" ] || pw_fail "build first: $HOSTILE missing"

pw_need curl
pw_claim port 20000 39999 pw_port_free
MPORT=$PW_CLAIM
sw_start -p "h,socket=$SW_DIR/h.sock" -c h,h --metrics "127.0.0.1:$MPORT"
"$HOSTILE" "$SW_DIR/h.sock" || pw_fail "the hostile client's checks failed"
kill -0 "$SW_PID" || pw_fail "the switch died: $(tail "$SW_DIR/switch.log")"
refused=$(sw_field h refused) bad=$(sw_field h rx_bad) back=$(sw_field h tx_packets)
pw_log "switch: $refused handshakes refused, $bad descriptors dropped, $back frames returned"
# 14 malformed handshakes and the second client (and any retry of ours
# that came while the switch had not yet seen the last close).
[ "$refused" -ge 15 ] || pw_fail "refused $refused, want at least 15"
[ "$bad" = 10 ] || pw_fail "rx_bad $bad, want 10"
[ "$back" = 2 ] || pw_fail "tx_packets $back, want 2"
[ "$(sw_field h state)" = listening ] || pw_fail "port h: $(sw_field h state)"
# The same counters as Prometheus metrics.
curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics" >"$SW_DIR/metrics.txt" ||
	pw_fail "no metrics on 127.0.0.1:$MPORT"
grep -qx 'podwire_switch_port_rx_bad_total{port="h"} 10' "$SW_DIR/metrics.txt" &&
	grep -qx 'podwire_switch_ports 1' "$SW_DIR/metrics.txt" ||
	pw_fail "metrics: $(cat "$SW_DIR/metrics.txt")"

sw_ns pod
tp after.log pod 3 "--vdev=net_memif0,role=client,id=0,socket=$SW_DIR/h.sock,socket-abstract=no" \
	-- --forward-mode=io --tx-first --stats-period 1 --total-num-mbufs=16384
n=$(tp_stat after.log 0 RX)
pw_log "testpmd afterwards: received $n"
[ "${n:-0}" -ge 100000 ] || pw_fail "testpmd after the hostile client: $(tail -20 "$SW_DIR/after.log")"
sw_stop
echo "test-switch-hostile: ok"
