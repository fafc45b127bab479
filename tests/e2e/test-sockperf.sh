#!/usr/bin/env bash
# sockperf 3.7, pod to pod across two network namespaces, under the preload:
# the server in epoll, poll and select modes; ping-pong, throughput and
# under-load. Proof of acceleration: podwired's counters.
set -u
. "$(dirname "$0")/lib.sh"
pw_need sockperf curl
pw_e2e_init sockperf
pw_pod a 11
pw_pod b 12
pw_router_metrics

port=11111
for mode in epoll poll select; do
	echo "T:$PW_IP_b:$port" >"$PW_DIR/feed-$mode"
	pw_bg b sockperf server -f "$PW_DIR/feed-$mode" -F $mode
	srv=$PW_LAST
	pw_wait_listen b $port
	# Uncapped, sockperf's sequence table overflows at shared-memory speed
	# (_seqN > m_maxSequenceNo): cap the rate far above the kernel's.
	out=$(pw_in a sockperf ping-pong --tcp -i "$PW_IP_b" -p $port -t 1 -m 64 --mps 1000000 2>&1) ||
		pw_fail "ping-pong ($mode): $out"
	echo "$out" | grep -q "Summary: Latency is" || pw_fail "ping-pong ($mode) printed no summary: $out"
	echo "$out" | grep -q "# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0" ||
		pw_fail "ping-pong ($mode) lost or reordered messages: $out"
	pw_log "$mode ping-pong: $(echo "$out" | grep -o 'percentile 50.000 = *[0-9.]*')"
	out=$(pw_in a sockperf throughput --tcp -i "$PW_IP_b" -p $port -t 1 -m 64 2>&1) ||
		pw_fail "throughput ($mode): $out"
	echo "$out" | grep -q "Summary: Message Rate is" || pw_fail "throughput ($mode): $out"
	pw_log "$mode throughput: $(echo "$out" | grep -o 'Message Rate is [0-9]* \[msg/sec\]')"
	# Under a loaded VM the under-load client has exited non-zero after a
	# complete, lossless run (its own SIGINT at the end of the test); the
	# run counts if it measured and lost nothing.
	out=$(pw_in a sockperf under-load --tcp -i "$PW_IP_b" -p $port -t 1 -m 64 --mps 10000 2>&1)
	rc=$?
	echo "$out" | grep -q "Summary: Latency is" || pw_fail "under-load ($mode): exit $rc: $out"
	echo "$out" | grep -q "# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0" ||
		pw_fail "under-load ($mode) lost or reordered messages: $out"
	[ "$rc" = 0 ] || pw_log "under-load ($mode): sockperf exited $rc after a complete run"
	pw_log "$mode under-load: $(echo "$out" | grep -o 'percentile 50.000 = *[0-9.]*')"
	kill "$srv" 2>/dev/null
	wait "$srv" 2>/dev/null
	port=$((port + 1))
done

claims=$(pw_metric podwire_claims_total)
bytes=$(pw_metric podwire_bytes_total)
fallback=$(pw_metric podwire_connections_fallback_total)
pw_log "claims=$claims bytes=$bytes fallback=$fallback"
[ "${claims:-0}" -ge 9 ] || pw_fail "only ${claims:-0} connections went over podwire (want 9)"
[ "${bytes:-0}" -gt 100000 ] || pw_fail "only ${bytes:-0} bytes went over podwire"
exit 0
