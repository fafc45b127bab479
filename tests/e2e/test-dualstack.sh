#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Dual-stack sockets, pod to pod, with the runtimes that make them: Java opens
# every socket as AF_INET6 (an IPv4 peer is ::ffff:a.b.c.d), Node's
# server.listen(port) binds [::]. Their IPv4 traffic must be accelerated
# (podwired's claims move, nothing falls back), the bytes must come back
# intact, and every address the programs print must be what the kernel shows
# them: each pair runs once on the kernel and once under the preload, and the
# two outputs must match (ports aside).
set -u
. "$(dirname "$0")/lib.sh"
DIR=$(cd "$(dirname "$0")/dualstack" && pwd)
pw_need curl java node
pw_e2e_init dualstack
pw_pod a 11
pw_pod b 12
pw_router_metrics
PORT=7100
N=8000000
rc=0

# ds_pair LABEL SERVER-CMD... -- CLIENT-CMD...  (HOST and PORT substituted)
# Runs the pair on the kernel, then under the preload; compares.
ds_pair() {
	local label=$1 srv=() cli=() out k p c0 c1 f0 f1 pid i
	shift
	while [ "$1" != -- ]; do srv+=("$1"); shift; done
	shift
	cli=("$@")
	for mode in kernel preload; do
		PORT=$((PORT + 1))
		local s=("${srv[@]/PORT/$PORT}") cl=("${cli[@]/PORT/$PORT}")
		cl=("${cl[@]/HOST/$PW_IP_b}")
		: >"$PW_DIR/b.log"
		c0=$(pw_metric podwire_claims_total)
		f0=$(pw_metric podwire_connections_fallback_total)
		if [ $mode = kernel ]; then
			PW_NOPRELOAD=1 pw_bg b "${s[@]}"
		else
			pw_bg b "${s[@]}"
		fi
		pid=$PW_LAST
		for i in $(seq 300); do
			grep -q READY "$PW_DIR/b.log" && break
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		grep -q READY "$PW_DIR/b.log" || { cat "$PW_DIR/b.log" >&2; pw_fail "$label: the server did not start"; }
		if [ $mode = kernel ]; then
			out=$(PW_NOPRELOAD=1 pw_in a timeout 60 "${cl[@]}" 2>&1)
		else
			out=$(pw_in a timeout 60 "${cl[@]}" 2>&1)
		fi
		local r=$?
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		c1=$(pw_metric podwire_claims_total)
		f1=$(pw_metric podwire_connections_fallback_total)
		echo "$out" | sed "s/^/#   $mode: /"
		if [ "$r" != 0 ]; then
			echo "FAIL $label ($mode): client exit $r"
			cat "$PW_DIR/b.log"
			rc=1
			return
		fi
		if [ $mode = kernel ]; then
			k=$(echo "$out" | sed -E 's/:[0-9]+/:PORT/g')
			continue
		fi
		p=$(echo "$out" | sed -E 's/:[0-9]+/:PORT/g')
		if [ "$p" != "$k" ]; then
			echo "FAIL $label: what the program saw differs from the kernel run"
			diff <(echo "$k") <(echo "$p")
			rc=1
		elif [ $(( ${c1:-0} - ${c0:-0} )) -lt 1 ] || [ "${f1:-0}" != "${f0:-0}" ]; then
			echo "FAIL $label: not accelerated (claims ${c0:-0} -> ${c1:-0}, fallbacks ${f0:-0} -> ${f1:-0})"
			rc=1
		else
			echo "ok   $label (claims +$(( ${c1:-0} - ${c0:-0} )))"
		fi
	done
}

JAVA=(java -Xmx64m -XX:TieredStopAtLevel=1 "$DIR/Echo.java")
ds_pair "Java client (AF_INET6, ::ffff:) to a Java server ([::])" \
	"${JAVA[@]}" server PORT -- "${JAVA[@]}" client HOST PORT $N
ds_pair "Node client (AF_INET) to a Node server ([::])" \
	node "$DIR/echo.js" server PORT -- node "$DIR/echo.js" client HOST PORT $N
ds_pair "Node client (AF_INET6, ::ffff:) to a Node server ([::])" \
	node "$DIR/echo.js" server PORT -- node "$DIR/echo.js" client ::ffff:HOST PORT $N
ds_pair "Java client (AF_INET6) to a Node server ([::])" \
	node "$DIR/echo.js" server PORT -- "${JAVA[@]}" client HOST PORT $N
exit $rc
