#!/usr/bin/env bash
# A storm of short-lived connections leaves the router as it found it:
# 100,000 accelerated connect cycles (connect, 1-byte echo, close) pod to
# pod, then the router's open fds are back to their number before the storm
# and its RSS within 1 MiB of it. PW_STORM overrides the count.
set -u
. "$(dirname "$0")/lib.sh"
# Every connection through the router, however short (the library would
# leave repeated short ones to the kernel: PRELOAD.md).
export PODWIRE_ADAPT=0
# And a new channel for each: the router must see every connection.
export PODWIRE_REUSE=0
pw_need python3
pw_e2e_init storm
pw_pod a 11
pw_pod b 12
pw_router_metrics
pw_need_bench
N=${PW_STORM:-100000}
PORT=7200

pw_bg b "$BENCH" connect --serve "$PW_IP_b:$PORT" -d 600 -w 0
pw_wait_listen b $PORT
rpid=$(pgrep -f "podwired .*$PW_DIR/podwired.sock" | head -1)
[ -n "$rpid" ] || pw_fail "podwired not found"
fds() { ls "/proc/$rpid/fd" | wc -l; }
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$rpid/status"; }
settle() { # the router reaps what closed once a second
	local want=$1 i
	for i in $(seq 50); do
		[ "$(fds)" -le "$want" ] && return
		sleep 0.1
	done
}

# Warm up: the allocator's arenas and the listener's socket pool exist.
pw_in a "$BENCH" connect --to "$PW_IP_b:$PORT" -n 2000 -d 60 -w 0 >/dev/null ||
	pw_fail "warm-up cycles failed"
sleep 1.5
fd0=$(fds)
rss0=$(rss)
c0=$(pw_metric podwire_claims_total)
out=$(pw_in a "$BENCH" connect --to "$PW_IP_b:$PORT" -n "$N" -d 600 -w 0 -j) ||
	pw_fail "storm cycles failed: $out"
settle "$fd0"
sleep 1.5
fd1=$(fds)
rss1=$(rss)
c1=$(pw_metric podwire_claims_total)
rate=$(echo "$out" | python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["msgs_per_sec"])')
pw_log "$N connections at $rate/s, claims +$((c1 - c0)); router fds $fd0 -> $fd1," \
	"RSS $rss0 -> $rss1 KiB"
[ $((c1 - c0)) -ge "$N" ] || pw_fail "only $((c1 - c0)) of $N connections accelerated"
[ "$fd1" -le "$fd0" ] || pw_fail "router fds $fd0 -> $fd1 after $N connections"
[ "$rss1" -le $((rss0 + 1024)) ] || pw_fail "router RSS $rss0 -> $rss1 KiB after $N connections"
exit 0
