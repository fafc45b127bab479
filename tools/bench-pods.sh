#!/usr/bin/env bash
# Pod-to-pod benchmark on one node: the same unmodified binaries with and
# without libpodwire.so, side by side in one run (docs/BENCHMARKS.md).
# Usage: tools/bench-pods.sh [--sockperf-only | --quick] [--sweep] [-r ROUNDS] [SECONDS]
#   SECONDS          per measurement (default 5)
#   -r N             rounds, kernel and podwire alternating (default 5): sockperf,
#                    the connection-per-request rows and the sweep; the table
#                    shows the medians, the lines below it every round
#   --sockperf-only  only sockperf 64 B and the pw_chan floor
#   --quick          those and the connection-per-request rows (make demo);
#                    those rows run a third time with PODWIRE_ADAPT=0 and
#                    PODWIRE_REUSE=0 ("a channel each": every connection
#                    makes its own channel over shared memory)
#   --sweep          also sockperf ping-pong p50 at every size, 14 B to 1 MiB
# Needs root, sockperf, iperf3, nginx, wrk, curl, redis-server, redis-benchmark;
# h2load (nghttp2-client) for the HTTP/2 row.
set -u
ONLY_SOCKPERF=
QUICK=
SWEEP=
ROUNDS=5
while [ $# -gt 0 ]; do
	case $1 in
	--sockperf-only) ONLY_SOCKPERF=1 ;;
	--quick) ONLY_SOCKPERF=1 QUICK=1 ;;
	--sweep) SWEEP=1 ;;
	-r) ROUNDS=${2:?-r needs a number}; shift ;;
	-h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "bench-pods: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
case $ROUNDS in ''|*[!0-9]*|0) echo "bench-pods: -r wants a positive number" >&2; exit 2 ;; esac
T=${1:-5}
PW_BUILD=${PW_BUILD:-$(cd "$(dirname "$0")/../build" && pwd)}
. "$(dirname "$0")/../tests/e2e/lib.sh"
pw_need sockperf python3
[ -n "$ONLY_SOCKPERF" ] || pw_need iperf3 curl redis-server redis-benchmark
[ -n "$ONLY_SOCKPERF" ] && [ -z "$QUICK" ] || pw_need nginx wrk
pw_e2e_init bench
pw_pod a 11
pw_pod b 12
pw_router_metrics

declare -A R
# mode: kernel (no preload), podwire (the preload as shipped: it reuses the
# channels of closed connections and chooses the path per destination), shm
# (the preload with PODWIRE_ADAPT=0 PODWIRE_REUSE=0: a new channel for every
# connection, to show what setting one up costs).
in_mode() { # mode pw_in|pw_bg pod cmd...
	local mode=$1 fn=$2 pod=$3
	shift 3
	case $mode in
	kernel) PW_NOPRELOAD=1 $fn "$pod" "$@" ;;
	shm) $fn "$pod" PODWIRE_ADAPT=0 PODWIRE_REUSE=0 "$@" ;;
	*) $fn "$pod" "$@" ;;
	esac
}
run() { in_mode "$1" pw_in "${@:2}"; } # mode pod cmd...: in the foreground
bg() { in_mode "$1" pw_bg "${@:2}"; }  # the same, in the background
# Stop the server just started: the pod's processes, not only the shell.
stop() {
	ip netns pids "$PW_TAG-b" | xargs -r kill 2>/dev/null
	wait "$PW_LAST" 2>/dev/null
}

. "$(dirname "$0")/bench-lib.sh"

# sockperf ping-pong p50 at every size of make demo's plot (sockperf's
# smallest message is 14 bytes, its largest 1 MiB - 1).
SIZES="14 64 1024 16384 65536 262144 1048575"
sweep() { # mode
	local mode=$1 s
	port=$((port + 1))
	bg $mode b sockperf server --tcp -i "$PW_IP_b" -p $port -m 1048575
	pw_wait_listen b $port
	for s in $SIZES; do
		out=$(run $mode a sockperf ping-pong --tcp -i "$PW_IP_b" -p $port -t "$T" -m "$s" --mps 1000000 2>&1)
		ALL[$mode,sw$s]+=" $(echo "$out" | awk '/percentile 50.000/ { print $NF }')"
	done
	stop
}

# Short-lived connections, one per request: nginx (1 worker, keepalive off)
# and wrk with "Connection: close"; then podwire-bench's connect cycle
# (connect, 1-byte echo, the server's close), timed per cycle.
short_lived() { # mode
	local mode=$1
	port=$((port + 1))
	mkdir -p "$PW_DIR/www" "$PW_DIR/tmp"
	echo "hello from podwire" >"$PW_DIR/www/index.html"
	pw_nginx_conf nginx-close-$mode 1 <<CONF
keepalive_timeout 0;
server { listen $PW_IP_b:$port; root $PW_DIR/www; }
CONF
	bg $mode b nginx -c "$PW_DIR/nginx-close-$mode.conf" -e "$PW_DIR/nginx-close-$mode-error.log"
	pw_wait_listen b $port
	ALL[$mode,close]+=" $(run $mode a wrk -t 1 -c 8 -d "$T" -H 'Connection: close' \
		"http://$PW_IP_b:$port/index.html" 2>&1 | awk '/Requests\/sec/ { print $2 }')"
	stop

	port=$((port + 1))
	bg $mode b "$PW_BUILD/src/bench/podwire-bench" connect --serve "$PW_IP_b:$port" -d $((T + 10)) -w 0
	pw_wait_listen b $port
	out=$(run $mode a "$PW_BUILD/src/bench/podwire-bench" connect --to "$PW_IP_b:$port" -d "$T" -w 0.5 -j)
	ALL[$mode,cyc50]+=" $(echo "$out" | python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["rtt_ns"]["p50"]/1e3))' 2>/dev/null)"
	ALL[$mode,cyc99]+=" $(echo "$out" | python3 -c 'import json,sys; print("%.1f" % (json.load(sys.stdin)["rtt_ns"]["p99"]/1e3))' 2>/dev/null)"
	stop
}

# sockperf: ping-pong and throughput at 64 B, the modes alternating by round
# (this machine's speed drifts between phases: see docs/BENCHMARKS.md). The
# shared-memory floor, podwire-bench over pw_chan directly, runs in each
# round too, so a slow round shows whether the machine or podwire was slow.
port=20000
declare -A ALL
for round in $(seq "$ROUNDS"); do
	for mode in kernel podwire; do
		port=$((port + 1))
		bg $mode b sockperf server --tcp -i "$PW_IP_b" -p $port
		pw_wait_listen b $port
		# sockperf sizes its sequence table for its rate cap; unbounded,
		# a shared-memory run overflows it (_seqN > m_maxSequenceNo): cap
		# the rate at 1M messages/s, far above the kernel path's.
		out=$(run $mode a sockperf ping-pong --tcp -i "$PW_IP_b" -p $port -t "$T" -m 64 --mps 1000000 2>&1)
		echo "$out" | grep -q "percentile 50.000" || echo "sockperf ping-pong ($mode): $out" >&2
		ALL[$mode,pp50]+=" $(echo "$out" | awk '/percentile 50.000/ { print $NF }')"
		ALL[$mode,pp99]+=" $(echo "$out" | awk '/percentile 99.000/ { print $NF }')"
		out=$(run $mode a sockperf throughput --tcp -i "$PW_IP_b" -p $port -t "$T" -m 64 2>&1)
		ALL[$mode,tp]+=" $(echo "$out" | sed -n 's/.*Message Rate is \([0-9]*\) .*/\1/p' | tail -1)"
		stop
		if [ -z "$ONLY_SOCKPERF" ] || [ -n "$QUICK" ]; then
			short_lived $mode
			[ $mode = kernel ] || short_lived shm
		fi
		[ -z "$SWEEP" ] || sweep $mode
	done
	ALL[floor]+=" $("$PW_BUILD/src/bench/podwire-bench" throughput -t shm -s 64 -d "$T" -w 0.5 -j |
		python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["msgs_per_sec"])')"
done
for k in {kernel,podwire},{pp50,pp99,tp} {kernel,podwire,shm},{close,cyc50,cyc99}; do
	R[$k]=$(pw_median ${ALL[$k]:-}) # --sockperf-only runs no short-lived rows
done
R[floor]=$(pw_median ${ALL[floor]})

for mode in kernel podwire; do
	[ -z "$ONLY_SOCKPERF" ] || continue

	# iperf3: one stream
	port=$((port + 1))
	bg $mode b iperf3 -s -B "$PW_IP_b" -p $port
	pw_wait_listen b $port
	R[$mode,iperf]=$(run $mode a iperf3 -c "$PW_IP_b" -p $port -t "$T" --json 2>/dev/null |
		python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))')
	stop

	# nginx (2 workers, sendfile) + wrk
	port=$((port + 1))
	www=$PW_DIR/www
	mkdir -p "$www" "$PW_DIR/tmp"
	echo "hello from podwire" >"$www/index.html"
	[ -e "$www/big.bin" ] || head -c 100M /dev/urandom >"$www/big.bin"
	h2port=$((port + 1000))
	pw_nginx_conf nginx-$mode 2 <<CONF
sendfile on; keepalive_requests 1000000;
server { listen $PW_IP_b:$port; root $www; }
server { listen $PW_IP_b:$h2port http2; root $www; http2_max_concurrent_streams 128; }
CONF
	bg $mode b nginx -c "$PW_DIR/nginx-$mode.conf" -e "$PW_DIR/nginx-$mode-error.log"
	pw_wait_listen b $port
	R[$mode,nginx]=$(run $mode a wrk -t 2 -c 32 -d "$T" "http://$PW_IP_b:$port/index.html" 2>&1 |
		awk '/Requests\/sec/ { print $2 }')
	# One connection: a 100 MB file by sendfile to curl (median of 3), and
	# HTTP/2 with 100 streams multiplexed over it.
	v=""
	for _ in 1 2 3; do
		v="$v $(run $mode a curl -s -o /dev/null -w '%{speed_download}' \
			"http://$PW_IP_b:$port/big.bin" | awk '{ printf "%.0f", $1 / 1e6 }')"
	done
	R[$mode,file]=$(pw_median $v)
	pw_wait_listen b $h2port
	if command -v h2load >/dev/null; then
		R[$mode,h2]=$(run $mode a h2load -n 200000 -c 1 -m 100 \
			"http://$PW_IP_b:$h2port/index.html" 2>&1 | awk '/^finished in/ { print $4 }')
	fi
	stop

	# redis
	port=$((port + 1))
	bg $mode b redis-server --bind "$PW_IP_b" --port $port --save "" --appendonly no \
		--protected-mode no --dir "$PW_DIR"
	pw_wait_listen b $port
	out=$(run $mode a redis-benchmark -h "$PW_IP_b" -p $port -P 16 -t set,get -n 2000000 -q 2>&1 | tr '\r' '\n')
	R[$mode,set]=$(echo "$out" | awk '/^SET: [0-9.]+ requests per second/ { print $2 }')
	R[$mode,get]=$(echo "$out" | awk '/^GET: [0-9.]+ requests per second/ { print $2 }')
	# One pipelined connection, and small transactions over 4 connections.
	R[$mode,pipe1]=$(run $mode a redis-benchmark -h "$PW_IP_b" -p $port -c 1 -P 64 -t get \
		-n 2000000 -q 2>&1 | tr '\r' '\n' | awk '/^GET: [0-9.]+ requests per second/ { print $2 }')
	R[$mode,rr4]=$(run $mode a redis-benchmark -h "$PW_IP_b" -p $port -c 4 -t get -n 200000 \
		-q 2>&1 | tr '\r' '\n' | awk '/^GET: [0-9.]+ requests per second/ { print $2 }')
	stop
done

ratio() { python3 -c "import sys; a,b=float(sys.argv[1] or 0),float(sys.argv[2] or 0); print('%.1fx' % (a/b) if b else '-')" "$1" "$2"; }
# row LABEL KEY lower|higher: kernel, podwire and how many times better podwire is
row() { # ... [MODE]: MODE's figure in podwire's column (default podwire)
	local k=${R[kernel,$2]:-} p=${R[${4:-podwire},$2]:-}
	if [ "$3" = lower ]; then r=$(ratio "$k" "$p"); else r=$(ratio "$p" "$k"); fi
	printf '%-34s %14s %14s %8s\n' "$1" "$k" "$p" "$r"
}
printf '\n%-34s %14s %14s %8s\n' "pod to pod, one node" kernel podwire better
row "sockperf ping-pong 64 B p50 (us)" pp50 lower
row "sockperf ping-pong 64 B p99 (us)" pp99 lower
row "sockperf throughput 64 B (msg/s)" tp higher
printf '%-34s %14s %14s %8s\n' "pw_chan floor, podwire-bench (msg/s)" "" "${R[floor]}" ""
if [ -z "$ONLY_SOCKPERF" ]; then
	row "iperf3 1 stream (Gbit/s)" iperf higher
	row "nginx + wrk -c 32 (req/s)" nginx higher
	row "redis-benchmark -P 16 SET (req/s)" set higher
	row "redis-benchmark -P 16 GET (req/s)" get higher
	row "1 conn: 100 MB sendfile (MB/s)" file higher
	row "1 conn: h2load 100 streams (req/s)" h2 higher
	row "1 conn: redis -c 1 -P 64 (req/s)" pipe1 higher
	row "4 conns: redis GET, no pipe (req/s)" rr4 higher
fi
if [ -z "$ONLY_SOCKPERF" ] || [ -n "$QUICK" ]; then
	row "nginx conn per request (req/s)" close higher
	row "connect cycle p50 (us)" cyc50 lower
	row "connect cycle p99 (us)" cyc99 lower
	row "  a channel each: conn per request" close higher shm
	row "  a channel each: cycle p50 (us)" cyc50 lower shm
	row "  a channel each: cycle p99 (us)" cyc99 lower shm
fi
if [ -n "$SWEEP" ]; then
	for s in $SIZES; do
		R[kernel,sw$s]=$(pw_median ${ALL[kernel,sw$s]})
		R[podwire,sw$s]=$(pw_median ${ALL[podwire,sw$s]})
		row "sockperf ping-pong $s B p50 (us)" sw$s lower
	done
fi
echo "(sockperf, conn/request and connect cycle: medians of $ROUNDS rounds; latency is one-way, half the round trip; ping-pong capped at 1M msg/s; $T s each)"
echo "rounds, podwire throughput (msg/s):${ALL[podwire,tp]}"
echo "rounds, pw_chan floor (msg/s):     ${ALL[floor]}"
echo "rounds, podwire ping-pong p50 (us):${ALL[podwire,pp50]}"
echo "podwire carried $(pw_metric podwire_claims_total) connections, $(pw_metric podwire_bytes_total) bytes"
