#!/usr/bin/env bash
# Per-pod limits. podwired --pod-max-pending 32. Pod a opens 100 connections
# to a listener of pod b that never accepts: 32 are accelerated and wait for
# accept, the rest go to the kernel (they still connect), and the router
# counts the refusals. Meanwhile pod c's connections to a healthy server in
# pod b stay accelerated and fast. Then --pod-max-memory: pod c's channels
# get full rings up to half of it and small ones after, and connections past
# it go to the kernel too, and still work.
set -u
. "$(dirname "$0")/lib.sh"
# Every connection through the router, however short (the library would
# leave repeated short ones to the kernel: PRELOAD.md).
export PODWIRE_ADAPT=0
# And a new channel for each: the router must see every connection.
export PODWIRE_REUSE=0
pw_need python3
pw_e2e_init limits
pw_pod a 11
pw_pod b 12
pw_pod c 13
# A channel of the default 1 MiB rings holds 2 x 1 MiB + 4 KiB, one of the
# small rings a pod gets past half its limit 2 x 64 KiB + 4 KiB.
FULL=2052 SMALL=132
pw_router_metrics --pod-max-pending 32 --pod-max-memory $((20 * FULL))K
pw_need_bench
SLOW=7300
GOOD=7301

pw_bg_never_accepting b "$PW_IP_b" $SLOW 1024
pw_bg b "$BENCH" connect --serve "$PW_IP_b:$GOOD" -d 60 -w 0
pw_wait_listen b $GOOD

q0=$(pw_metric podwire_limit_refusals_total '{limit="pending"}')
pw_bg_hold_connections a "$PW_IP_b" $SLOW 100 2
grep -q "connected 100 failed 0" "$PW_DIR/a.log" ||
	pw_fail "the flooding pod's connects did not all succeed: $(cat "$PW_DIR/a.log")"
pending=$(pw_metric podwire_connections '{state="pending"}')
q1=$(pw_metric podwire_limit_refusals_total '{limit="pending"}')
pw_log "100 connects to a listener that never accepts: $pending pending accelerated," \
	"$((q1 - q0)) left to the kernel"
[ "$pending" = 32 ] || pw_fail "$pending connections pending, not 32"
[ $((q1 - q0)) -eq 68 ] || pw_fail "$((q1 - q0)) refusals counted, not 68"

c0=$(pw_metric podwire_claims_total)
out=$(pw_in c "$BENCH" connect --to "$PW_IP_b:$GOOD" -n 500 -d 30 -w 0 -j) ||
	pw_fail "pod c's connect cycles failed"
c1=$(pw_metric podwire_claims_total)
p50=$(echo "$out" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["rtt_ns"]["p50"]))')
pw_log "pod c beside the flood: 500 cycles, claims +$((c1 - c0)), p50 $p50 ns"
[ $((c1 - c0)) -ge 500 ] || pw_fail "pod c's connections were not accelerated (+$((c1 - c0)))"
[ "$p50" -le 5000000 ] || pw_fail "pod c's setup p50 $p50 ns"

# The memory limit: 20 full channels' worth for each pod. Of the 200
# connections pod c keeps open to the healthy server, 10 get full rings (half
# the limit), 155 small ones (the other half: 20 * 2052 / 2 / 132), and 35 go
# to the kernel, all of them working (its 500 closed ones no longer count).
m0=$(pw_metric podwire_limit_refusals_total '{limit="memory"}')
a0=$(pw_metric podwire_connections_accelerated_total)
out=$(pw_in c python3 -c "
import socket
held, ok = [], 0
for i in range(200):
    c = socket.create_connection(('$PW_IP_b', $GOOD), timeout=5)
    c.sendall(b'x')
    ok += c.recv(1) == b'x'
    held.append(c)
print('echoed', ok)") || pw_fail "connections under the memory limit failed: $out"
m1=$(pw_metric podwire_limit_refusals_total '{limit="memory"}')
a1=$(pw_metric podwire_connections_accelerated_total)
pw_log "memory limit: $out; accelerated +$((a1 - a0)), refused +$((m1 - m0))"
[ "$out" = "echoed 200" ] || pw_fail "not every connection worked: $out"
want=$((10 + (20 * FULL - 10 * FULL) / SMALL))
[ $((a1 - a0)) -eq $want ] && [ $((m1 - m0)) -eq $((200 - want)) ] ||
	pw_fail "accelerated +$((a1 - a0)), refused +$((m1 - m0)); want $want and $((200 - want))"
exit 0
