#!/usr/bin/env bash
# A listener that takes no connections does not stall the router. Pod b has
# an accelerated listener with a backlog of 1 that never accepts, its queue
# filled by kernel connections from pod a, and a healthy one (podwire-bench
# connect --serve). Four threads in pod a connect to the full one over and
# over, each through the router. Meanwhile the connection setup of the
# healthy pair stays fast: its p99 cycle time is at most twice its unloaded
# value (or 5 ms, whichever is more), and its connections stay accelerated.
# A router that waits for the full listener in its loop (200 ms a try)
# makes every other setup wait as long.
set -u
. "$(dirname "$0")/lib.sh"
# Every connection through the router, however short (the library would
# leave repeated short ones to the kernel: PRELOAD.md).
export PODWIRE_ADAPT=0
# And a new channel for each: the router must see every connection.
export PODWIRE_REUSE=0
pw_need python3
pw_e2e_init stall
pw_pod a 11
pw_pod b 12
pw_router_metrics
pw_need_bench
FULL=7100
GOOD=7101

# The full listener: accelerated (under the preload), backlog 1, never accepts.
pw_bg_never_accepting b "$PW_IP_b" $FULL 1
# Fill its queue from the kernel side, and keep those connections open.
PW_NOPRELOAD=1 pw_bg_hold_connections a "$PW_IP_b" $FULL 8 0.3

pw_bg b "$BENCH" connect --serve "$PW_IP_b:$GOOD" -d 40 -w 0
pw_wait_listen b $GOOD
p99() { python3 -c 'import json,sys; print(int(json.load(sys.stdin)["rtt_ns"]["p99"]))'; }
quiet=$(pw_in a "$BENCH" connect --to "$PW_IP_b:$GOOD" -d 1 -w 0.2 -j | p99) ||
	pw_fail "unloaded connect cycles failed"

# Four threads connecting to the full listener through the router.
pw_bg a python3 -c "
import socket, threading, time
n = [0]
def hammer():
    end = time.time() + 30
    while time.time() < end:
        c = socket.socket()
        c.settimeout(0.5)
        try:
            c.connect(('$PW_IP_b', $FULL))
        except OSError:
            pass
        c.close()
        n[0] += 1
for _ in range(4):
    threading.Thread(target=hammer, daemon=True).start()
time.sleep(30)"
sleep 0.5
c0=$(pw_metric podwire_claims_total)
q0=$(pw_metric podwire_connect_requests_total)
loaded=$(pw_in a "$BENCH" connect --to "$PW_IP_b:$GOOD" -d 2 -w 0 -j | p99) ||
	pw_fail "connect cycles under the stall failed"
c1=$(pw_metric podwire_claims_total)
q1=$(pw_metric podwire_connect_requests_total)
pw_log "connect cycle p99: ${quiet} ns alone, ${loaded} ns beside a full listener" \
	"(connect requests +$((q1 - q0)), claims +$((c1 - c0)))"
[ $((q1 - q0)) -gt $((c1 - c0)) ] || pw_fail "the full listener was not tried through the router"
[ $((c1 - c0)) -ge 100 ] || pw_fail "the healthy pair was not accelerated (claims +$((c1 - c0)))"
limit=$((2 * quiet))
[ $limit -ge 5000000 ] || limit=5000000
[ "$loaded" -le "$limit" ] || pw_fail "setup p99 ${loaded} ns beside a full listener (limit $limit)"
exit 0
