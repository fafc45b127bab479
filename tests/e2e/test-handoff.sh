#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Connections handed to another process, pod to pod, by a real program:
# Python's multiprocessing.reduction.send_handle (SCM_RIGHTS), as pools and
# supervisors do. The parent accepts, hands each connection to a worker and
# closes its copy.
#   - fork workers (they run the library): podwired must see each connection
#     taken over by the worker (podwire_relays_taken_total);
#   - workers spawned without LD_PRELOAD: each connection is relayed by the
#     router (podwire_relays_started_total) and still works.
# Every byte is checked, and a worker with the library must see the client's
# address (one without it holds a plain Unix stream).
set -u
. "$(dirname "$0")/lib.sh"
PY=$(dirname "$0")/handoff.py
pw_need curl python3
pw_e2e_init handoff
pw_pod a 11
pw_pod b 12
pw_router_metrics
N=10
rc=0

run() { # port how metric [client-args]
	local port=$1 how=$2 metric=$3 extra=${4:-} c0 m0 c1 m1 out
	c0=$(pw_metric podwire_claims_total)
	m0=$(pw_metric "$metric")
	: >"$PW_DIR/b.log"
	pw_bg b python3 "$PY" server "$PW_IP_b" "$port" $N "$how"
	local pid=$PW_LAST
	for _ in $(seq 200); do
		grep -q READY "$PW_DIR/b.log" && break
		sleep 0.05
	done
	out=$(pw_in a timeout 20 python3 "$PY" client "$PW_IP_b" "$port" $N 300000 $extra 2>&1)
	local r=$?
	echo "# $how: $out"
	# The workers end when the parent closes the pool's pipe, after N.
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$pid" 2>/dev/null
	wait "$pid"
	local sr=$?
	c1=$(pw_metric podwire_claims_total)
	m1=$(pw_metric "$metric")
	if [ "$r" != 0 ] || [ "$sr" != 0 ]; then
		echo "FAIL $how workers: client exit $r, server exit $sr"
		cat "$PW_DIR/b.log"
		rc=1
	elif [ $(( ${c1:-0} - ${c0:-0} )) -lt $N ] || [ $(( ${m1:-0} - ${m0:-0} )) -lt $N ]; then
		echo "FAIL $how workers: claims +$(( ${c1:-0} - ${c0:-0} )), $metric +$(( ${m1:-0} - ${m0:-0} )) (want +$N each)"
		rc=1
	else
		echo "ok   $how workers: claims +$(( c1 - c0 )), $metric +$(( m1 - m0 ))"
	fi
}
run 7201 fork podwire_relays_taken_total
run 7202 spawn-without-preload podwire_relays_started_total any-peer
exit $rc
